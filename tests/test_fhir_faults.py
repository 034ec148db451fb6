"""FHIR server faults on the fetch path: the service answers within CDS_FHIR_TIMEOUT_S plus a small
margin, with cards when the data arrived and 412 when data needed to decide is missing, and counts
each fault. Faults are injected with respx, then by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import respx

from cds_service.pipeline.fhir_client import fetch_faults
from cds_service.wire import CdsResponse
from tests.security_helpers import (
    SELECT,
    bundle,
    hook_request,
    lumbar_puncture,
    open_settings,
    patient,
    pdph_condition,
)
from tests.support.client import app_client

TIMEOUT_S = 1.0
MARGIN_S = 0.5
TIMINGS: dict[str, float] = {}


def outcome(code: str = "processing") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": "query failed"}],
    }


def resource_for(path: str) -> dict[str, Any]:
    """What a healthy FHIR server answers for each prefetch query."""
    if "/Patient/" in path:
        return patient()
    if path.endswith("/Procedure"):
        return bundle(lumbar_puncture())
    if path.endswith("/Condition"):
        return bundle(pdph_condition())
    return bundle()


async def evaluate_without_prefetch(
    tmp_path: Path, fhir_base: str, case: str, keep: tuple[str, ...] = ()
) -> httpx.Response:
    """A hook call whose prefetch lacks every key but `keep`, so the rest is read from `fhir_base`."""
    request = hook_request(fhirServer=fhir_base)
    request["prefetch"] = {k: v for k, v in request["prefetch"].items() if k in keep}
    async with app_client(open_settings(tmp_path, fhir_timeout_s=TIMEOUT_S)) as client:
        started = time.perf_counter()
        response = await client.post(SELECT, json=request)
        elapsed = time.perf_counter() - started
    TIMINGS[case] = elapsed
    print(f"\n[fhir-fault] {case}: {response.status_code} in {elapsed * 1000:.0f} ms")
    assert elapsed < TIMEOUT_S + MARGIN_S, f"{case} answered in {elapsed:.2f} s"
    assert response.status_code in (200, 412), response.text
    if response.status_code == 200:
        CdsResponse.model_validate(response.json())
    else:
        assert response.json()["error"] == "prefetch-unavailable"
    return response


# --- respx ------------------------------------------------------------------------------------

FHIR = "https://fhir.example.org/r4"


async def slow(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(TIMEOUT_S * 3)
    return httpx.Response(200, json=resource_for(request.url.path))


def paging_forever(request: httpx.Request) -> httpx.Response:
    page = int(request.url.params.get("_page", "0"))
    next_url = request.url.copy_set_param("_page", str(page + 1))
    return httpx.Response(
        200,
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": str(next_url)}],
            "entry": [],
        },
    )


FAULTS: dict[str, Any] = {
    "read-timeout": httpx.ReadTimeout("read timed out"),
    "connect-timeout": httpx.ConnectTimeout("connect timed out"),
    "slow-beyond-budget": slow,
    "connection-refused": httpx.ConnectError("connection refused"),
    "http-500": httpx.Response(500, text="Internal Server Error"),
    "http-503": httpx.Response(503, headers={"Retry-After": "30"}),
    "http-401": httpx.Response(401, json=outcome("login")),
    "html-instead-of-json": httpx.Response(
        200, text="<html><body>Login</body></html>", headers={"Content-Type": "text/html"}
    ),
    "truncated-json": httpx.Response(200, content=b'{"resourceType": "Bundle", "entry": [{"reso'),
    "json-not-fhir": httpx.Response(200, json=["not", "a", "resource"]),
    "operation-outcome": httpx.Response(200, json=outcome()),
    "pages-forever": paging_forever,
}

CAUSES = {
    "read-timeout": "timeout",
    "connect-timeout": "timeout",
    "slow-beyond-budget": "timeout",
    "connection-refused": "connection-error",
    "http-500": "http-500",
    "http-503": "http-503",
    "http-401": "http-401",
    "html-instead-of-json": "wrong-content-type",
    "truncated-json": "invalid-json",
    "json-not-fhir": "not-fhir",
    "operation-outcome": "operation-outcome",
    "pages-forever": "too-many-pages",
}


@pytest.mark.slow  # each fault waits out its time budget
@pytest.mark.anyio
@pytest.mark.parametrize("case", list(FAULTS))
async def test_fault_answers_412_in_time_and_is_counted(tmp_path: Path, case: str) -> None:
    fault = FAULTS[case]
    before = fetch_faults.counts[CAUSES[case]]
    # A request cancelled by the time budget is not recorded as a call.
    with respx.mock(assert_all_called=False) as router:
        route = router.get(url__startswith=FHIR)
        if isinstance(fault, httpx.Response):
            route.mock(return_value=fault)
        else:
            route.mock(side_effect=fault)
        response = await evaluate_without_prefetch(tmp_path, FHIR, f"respx {case}")
    assert response.status_code == 412
    causes = {d["cause"] for d in response.json()["details"]}
    assert causes == {CAUSES[case]}
    # One per prefetch query: 4 required, 2 optional (imaging history, omitted rather than a 412).
    assert fetch_faults.counts[CAUSES[case]] == before + 6
    assert {d["prefetch"] for d in response.json()["details"]} == {
        "patient",
        "procedures",
        "conditions",
        "observations",
    }


@pytest.mark.anyio
async def test_one_failing_query_among_several(tmp_path: Path) -> None:
    with respx.mock() as router:
        router.get(path="/r4/Observation").mock(return_value=httpx.Response(503))
        router.get(url__startswith=FHIR).mock(
            side_effect=lambda request: httpx.Response(200, json=resource_for(request.url.path))
        )
        response = await evaluate_without_prefetch(tmp_path, FHIR, "respx one-of-four-503")
    assert response.status_code == 412
    assert response.json()["details"] == [{"prefetch": "observations", "cause": "http-503"}]


@pytest.mark.anyio
async def test_healthy_server_gives_cards(tmp_path: Path) -> None:
    with respx.mock() as router:
        route = router.get(url__startswith=FHIR).mock(
            side_effect=lambda request: httpx.Response(200, json=resource_for(request.url.path))
        )
        response = await evaluate_without_prefetch(tmp_path, FHIR, "respx healthy")
        sent = route.calls[0].request.headers
    assert response.status_code == 200
    assert len(response.json()["cards"]) == 1
    assert "authorization" not in sent  # no fhirAuthorization: no token


@pytest.mark.anyio
async def test_partial_prefetch_fetches_only_what_is_missing(tmp_path: Path) -> None:
    with respx.mock() as router:
        route = router.get(url__startswith=FHIR).mock(
            side_effect=lambda request: httpx.Response(200, json=resource_for(request.url.path))
        )
        response = await evaluate_without_prefetch(
            tmp_path, FHIR, "respx partial", keep=("patient", "procedures", "conditions")
        )
    assert response.status_code == 200
    # Only the missing keys are fetched: observations, and the two imaging-history keys this
    # request does not prefetch.
    assert sorted(c.request.url.path for c in route.calls) == [
        "/r4/DiagnosticReport",
        "/r4/ImagingStudy",
        "/r4/Observation",
    ]


@pytest.mark.anyio
async def test_no_imaging_order_never_touches_the_server(tmp_path: Path) -> None:
    request = hook_request(fhirServer=FHIR, prefetch={})
    request["context"]["draftOrders"]["entry"][0]["resource"]["code"] = {"text": "Paracetamol"}
    with respx.mock(assert_all_called=False) as router:
        route = router.get(url__startswith=FHIR).mock(return_value=httpx.Response(500))
        async with app_client(open_settings(tmp_path)) as client:
            response = await client.post(SELECT, json=request)
    assert response.json() == {"cards": []}
    assert not route.called


# --- a real HTTP server on 127.0.0.1 ------------------------------------------------------------


class FaultyFhirHandler(BaseHTTPRequestHandler):
    """The first path segment picks the behaviour: /ok, /slow, /500, /503, /401, /html, /truncated,
    /forever, /outcome, /reset."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        mode = parts.path.split("/")[1]
        if mode == "slow":
            time.sleep(TIMEOUT_S * 2.5)
            return self._json(200, resource_for(parts.path))
        if mode in ("500", "503", "401"):
            return self._send(int(mode), b"error", "text/plain")
        if mode == "html":
            return self._send(200, b"<!doctype html><title>Sign in</title>", "text/html")
        if mode == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b'{"resourceType": "Bundle", "entry": [')
            self.wfile.flush()
            self.close_connection = True
            return None
        if mode == "reset":
            self.close_connection = True
            return None
        if mode == "outcome":
            return self._json(404, outcome("not-found"))
        if mode == "forever":
            link = f"http://127.0.0.1:{self.server.server_address[1]}{parts.path}?page=next"
            page = {"resourceType": "Bundle", "link": [{"relation": "next", "url": link}]}
            if "/Patient/" in parts.path:
                return self._json(200, patient())
            return self._json(200, page)
        return self._json(200, resource_for(parts.path))

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/fhir+json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the service hanging up mid-answer (budget spent, too many pages) is expected


@pytest.fixture(scope="module")
def local_fhir() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), FaultyFhirHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


REAL_FAULTS = {
    "slow": "timeout",
    "500": "http-500",
    "503": "http-503",
    "401": "http-401",
    "html": "wrong-content-type",
    "truncated": "connection-error",
    "reset": "connection-error",
    "forever": "next-link-loop",
    "outcome": "http-404",
}


@pytest.mark.slow  # a real socket server that stalls or hangs
@pytest.mark.anyio
@pytest.mark.parametrize("mode", list(REAL_FAULTS))
async def test_real_local_server_fault(tmp_path: Path, local_fhir: str, mode: str) -> None:
    response = await evaluate_without_prefetch(tmp_path, f"{local_fhir}/{mode}", f"local {mode}")
    assert response.status_code == 412
    assert REAL_FAULTS[mode] in {d["cause"] for d in response.json()["details"]}


@pytest.mark.slow  # a real socket server
@pytest.mark.anyio
async def test_real_local_server_healthy(tmp_path: Path, local_fhir: str) -> None:
    response = await evaluate_without_prefetch(tmp_path, f"{local_fhir}/ok", "local healthy")
    assert response.status_code == 200
    assert len(response.json()["cards"]) == 1


@pytest.mark.anyio
async def test_closed_port_on_loopback(tmp_path: Path) -> None:
    response = await evaluate_without_prefetch(tmp_path, "http://127.0.0.1:9/fhir", "local closed")
    assert response.status_code == 412
