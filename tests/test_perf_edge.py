"""What a hook call costs around the rules (issue 15, second round), and that each shorter way gives
what the longer one gave: the CORS layer's way through for calls without Origin against Starlette's
CORSMiddleware, the header and base-URL readers against Starlette's Request, the one-pass template
token search against a search per token, and the access log's remembered metric children."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import select
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from cds_service.api.deps import runtime_of
from cds_service.api.routing import _TEMPLATE_TOKEN, _TEMPLATE_TOKENS, base_url, header
from cds_service.persistence.schema import audit
from cds_service.security.cors import CorsMiddleware, add_vary_origin
from tests.ops_helpers import hook_request, settings_for
from tests.support.client import app_client

ORIGIN = "https://sandbox.cds-hooks.org"


def _app_answering(headers: list[Any]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def _answer(middleware: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


def _scope(method: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": "/cds-services/x",
        "headers": headers,
        "query_string": b"",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
    }


REQUEST_HEADERS = [
    [],
    [(b"content-type", b"application/json")],
    [(b"origin", ORIGIN.encode())],
    [(b"origin", b"https://evil.example")],
    [(b"Origin", ORIGIN.encode())],  # not lower case: neither layer sees an Origin
    [
        (b"origin", ORIGIN.encode()),
        (b"access-control-request-method", b"POST"),
        (b"access-control-request-headers", b"authorization, x-cds-traffic"),
    ],
    [(b"origin", ORIGIN.encode()), (b"access-control-request-method", b"PUT")],
    [(b"access-control-request-method", b"POST")],  # a preflight's header without Origin
]
RESPONSE_HEADERS = [
    [],
    [(b"content-type", b"application/json")],
    [(b"vary", b"Accept-Encoding"), (b"content-length", b"2")],
    [(b"vary", b"Accept"), (b"x", b"1"), (b"vary", b"Cookie")],
    [[b"vary", b"Accept"]],  # a list, not a tuple: replaced all the same
]
SETTINGS: list[dict[str, Any]] = [
    {"allow_origins": ["*"]},
    {"allow_origins": [ORIGIN, "https://ehr.example.org"]},
]


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
@pytest.mark.parametrize("request_headers", REQUEST_HEADERS)
@pytest.mark.parametrize("response_headers", RESPONSE_HEADERS)
@pytest.mark.parametrize("settings", SETTINGS)
async def test_the_cors_layer_answers_as_starlettes(
    method: str,
    request_headers: list[tuple[bytes, bytes]],
    response_headers: list[Any],
    settings: dict[str, Any],
) -> None:
    options = {
        **settings,
        "allow_methods": ["GET", "POST", "OPTIONS"],
        "allow_headers": ["Authorization", "Content-Type", "X-CDS-Traffic"],
        "max_age": 600,
    }
    inner = _app_answering(response_headers)
    ours = await _answer(CorsMiddleware(inner, **options), _scope(method, request_headers))
    theirs = await _answer(CORSMiddleware(inner, **options), _scope(method, request_headers))
    assert ours == theirs


def test_vary_origin_leaves_the_apps_header_list_alone() -> None:
    """Starlette copies the response's header list before changing it: a Response's raw_headers
    must not grow a Vary header per call."""
    raw = [(b"vary", b"Accept")]
    message: Message = {"type": "http.response.start", "status": 200, "headers": raw}
    add_vary_origin(message)
    assert raw == [(b"vary", b"Accept")]
    assert message["headers"] == [(b"vary", b"Accept, Origin")]
    bare: Message = {"type": "http.response.start", "status": 200}
    add_vary_origin(bare)
    assert bare["headers"] == [(b"vary", b"Origin")]


SCOPES: list[dict[str, Any]] = [
    {"headers": [(b"host", b"127.0.0.1:8080")], "server": ("127.0.0.1", 8080)},
    {"headers": [], "server": ("127.0.0.1", 8080)},
    {"headers": [], "server": ("127.0.0.1", 80)},
    {"headers": [], "server": ("::1", 8443), "scheme": "https"},
    {"headers": [], "server": None},
    {"headers": []},
    {"headers": [(b"host", b"cds.example.org")], "scheme": "https", "root_path": "/cds"},
    {"headers": [(b"host", b"cds.example.org")], "root_path": "/cds/", "app_root_path": "/a"},
    {"headers": [(b"host", b"bad host:port:x")], "server": ("10.0.0.1", 81)},
    {"headers": [(b"host", b"[::1]:99999")], "server": ("10.0.0.1", 81)},
    {"headers": [(b"host", b"a.example"), (b"host", b"b.example")]},
    {"headers": [(b"host", b"caf\xe9.example")]},
    {"headers": [], "server": ["127.0.0.1", 8080]},  # a list: not hashable, built every time
]


@pytest.mark.parametrize("scope", SCOPES)
def test_base_url_is_starlettes(scope: dict[str, Any]) -> None:
    full: Scope = {"type": "http", "path": "/cds-services/x", "query_string": b"q=1", **scope}
    expected = str(Request(full).base_url)
    assert base_url(full) == expected
    assert base_url(full) == expected  # remembered


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"host", b"origin", b"x-cds-traffic", b"content-type", b"Host"]),
            st.binary(max_size=12),
        ),
        max_size=6,
    ),
    st.sampled_from([b"host", b"origin", b"x-cds-traffic", b"content-type", b"absent"]),
)
def test_header_is_starlettes(headers: list[tuple[bytes, bytes]], name: bytes) -> None:
    scope: Scope = {"type": "http", "headers": headers}
    assert header(scope, name) == Request(scope).headers.get(name.decode())


TOKEN_PIECES = [b"{", b"}", b"{{", b"now", b"date:", b"{{now", b"{{date", b":", b"-48h", b'"', b"x"]


@given(st.lists(st.sampled_from(TOKEN_PIECES) | st.binary(max_size=4), max_size=12))
def test_one_pass_token_search_finds_what_a_search_per_token_finds(pieces: list[bytes]) -> None:
    body = b"".join(pieces)
    expected = any(token in body for token in _TEMPLATE_TOKENS)
    assert (_TEMPLATE_TOKEN.search(body) is not None) == expected


def test_the_token_search_is_the_tokens() -> None:
    assert _TEMPLATE_TOKEN.flags == 0 and _TEMPLATE_TOKEN.pattern == rb"\{\{now|\{\{date:"
    assert re.escape(b"{{now") == rb"\{\{now"


@pytest.mark.anyio
async def test_access_log_counts_with_remembered_children(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The access log keeps the request metrics' children: every call still counts once in its own
    series, and the line is the one log.log wrote (same logger, level, message and fields)."""
    labels = {"service": "pdph-imaging-order-select", "endpoint": "hook", "status": "200"}
    before = REGISTRY.get_sample_value("cds_requests_total", labels) or 0.0
    histogram = REGISTRY.get_sample_value("cds_request_duration_seconds_count", labels) or 0.0
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        logging.getLogger().addHandler(caplog.handler)
        caplog.set_level(logging.INFO)
        for n in range(3):
            response = await client.post(
                "/cds-services/pdph-imaging-order-select", json=hook_request(f"h-{n}")
            )
            assert response.status_code == 200
        missing = await client.post("/cds-services/nope", json=hook_request("h-x"))
        assert missing.status_code == 404
    assert REGISTRY.get_sample_value("cds_requests_total", labels) == before + 3
    assert REGISTRY.get_sample_value("cds_request_duration_seconds_count", labels) == histogram + 3
    lines = [r for r in caplog.records if r.name == "cds_service.observability.access"]
    assert [(r.levelno, r.getMessage(), r.__dict__["status"]) for r in lines] == [
        (logging.INFO, "request", 200),
        (logging.INFO, "request", 200),
        (logging.INFO, "request", 200),
        (logging.INFO, "request", 404),
    ]
    assert [r.__dict__.get("hookInstance") for r in lines] == ["h-0", "h-1", "h-2", None]
    assert all(r.funcName == "(unknown function)" and r.lineno == 0 for r in lines)


def _hook_post(request: dict[str, Any]) -> tuple[Scope, Receive]:
    """The raw ASGI scope and receive of an order-select hook call carrying `request`."""
    body = json.dumps(request).encode()
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/cds-services/pdph-imaging-order-select",
        "raw_path": b"/cds-services/pdph-imaging-order-select",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive


@pytest.mark.anyio
async def test_a_hook_calls_bookkeeping_follows_its_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit rows, metrics and vocabulary gaps of a hook call are recorded once its answer is
    sent (the EHR does not wait for them), within the same call: before the access line, and before
    the app returns. The latency recorded is the evaluation's, taken before the answer is sent."""
    import cds_service.api.hooks as hooks

    events: list[str] = []
    recorded: list[tuple[float, float | None]] = []
    record = hooks.record_hook_call

    def recording(*args: Any) -> None:
        events.append("bookkeeping")
        recorded.append((args[4], args[7]))
        record(*args)

    monkeypatch.setattr(hooks, "record_hook_call", recording)
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        app = client.app  # type: ignore[attr-defined]
        scope, receive = _hook_post(hook_request("h-after"))

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                events.append("answer sent")

        await app(scope, receive, send)
        assert events == ["answer sent", "bookkeeping"]
        started, evaluated = recorded[0]
        assert evaluated is not None and evaluated > started
        store = runtime_of(app).store
    with store.engine.connect() as connection:  # the lifespan's end wrote the queued rows
        rows = connection.execute(select(audit)).mappings().all()
    assert [(r["hook_instance"], r["scenario"]) for r in rows] == [("h-after", "pdph-acute")]
    assert rows[0]["latency_ms"] == round((evaluated - started) * 1000, 3)


@pytest.mark.anyio
async def test_a_hook_call_whose_answer_cannot_be_sent_is_audited(tmp_path: Path) -> None:
    """An EHR that went away while the answer was sent: the call was evaluated, so its bookkeeping
    still runs (as when it ran before the answer)."""
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        app = client.app  # type: ignore[attr-defined]
        scope, receive = _hook_post(hook_request("h-gone"))

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                raise OSError("connection reset")

        with pytest.raises(OSError):
            await app(scope, receive, send)
        store = runtime_of(app).store
    with store.engine.connect() as connection:
        rows = connection.execute(select(audit)).mappings().all()
    assert [(r["hook_instance"], r["scenario"]) for r in rows] == [("h-gone", "pdph-acute")]
