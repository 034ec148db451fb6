"""Reading JSON bodies with orjson on every route that takes one, and the direct route of the hook
endpoint, which reads and validates its body itself instead of through FastAPI's dependency solver."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_type_hints

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import Scope

# The fixtures' relative time tokens ({{now-48h}}, {{date:now-3d}}): a request that still holds one
# was copied from fixtures/ without rendering and would be read with nonsense dates. One pass over
# the body finds either ("{{now" or "{{date:" anywhere): a search per token read a large patient's
# 1.4 MB twice (1.4 ms, against 0.5 ms).
_TEMPLATE_TOKENS = (b"{{now", b"{{date:")
_TEMPLATE_TOKEN = re.compile(b"|".join(re.escape(token) for token in _TEMPLATE_TOKENS))
RAW_BODY = "cds.raw_body"


class UnrenderedTemplate(HTTPException):
    """Raised while reading the body, where FastAPI lets only HTTPExceptions through as they are."""

    error = "unrendered-template"

    def __init__(self) -> None:
        super().__init__(
            400,
            "The request still contains fixture time tokens such as {{now-48h}}: render it first "
            "(cds-service render FILE) so that every date is a real one.",
        )


def header(scope: Scope, name: bytes) -> str | None:
    """`Headers(scope=scope).get(name)` for a lower-case `name`, without building the object: the
    first value of that name (ASGI servers give header names in lower case)."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def base_url(scope: Scope) -> str:
    """`str(Request(scope).base_url)`: Starlette builds it from the scheme, the server, the root path
    and the Host header alone, so it is built once per such combination (a worker answers under one
    or a few names; the bound keeps a client inventing Host headers from growing it)."""
    root = scope.get("app_root_path", scope.get("root_path", ""))
    key = (scope.get("scheme", "http"), scope.get("server"), root, header(scope, b"host"))
    try:
        return _base_url(*key)
    except TypeError:  # an unhashable server value: build it as Starlette does, every time
        return str(Request(scope).base_url)


@functools.lru_cache(maxsize=16)
def _base_url(scheme: str, server: Any, root: str, host: str | None) -> str:
    scope: Scope = {"type": "http", "scheme": scheme, "root_path": root, "path": "/"}
    scope["headers"] = [] if host is None else [(b"host", host.encode("latin-1"))]
    if server is not None:
        scope["server"] = server
    return str(Request(scope).base_url)


class _OrjsonRequest(Request):
    """A request whose JSON body orjson parses: several times faster than the standard library on a
    large prefetch. orjson.JSONDecodeError subclasses json.JSONDecodeError, so FastAPI still turns a
    malformed body into its `json_invalid` validation error (answered 400 malformed-json)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self.scope[RAW_BODY] = body  # for an error handler, whose Request cannot re-read it
            if _TEMPLATE_TOKEN.search(body) is not None:
                raise UnrenderedTemplate()
            self._json = orjson.loads(body)
        return self._json


class CdsRoute(APIRoute):
    """Every route of the app reads JSON bodies with orjson (FastAPI's documented way to change how
    a request body is read); validation, errors and OpenAPI stay FastAPI's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def orjson_handler(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return orjson_handler


def _is_json_media(content_type: str) -> bool:
    """FastAPI's rule for a JSON body: application/json or application/<anything>+json."""
    media = content_type.split(";", 1)[0].strip().lower()
    maintype, _, subtype = media.partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


async def _json_body(request: _OrjsonRequest) -> Any:
    """The body as FastAPI reads it for a JSON model (strict Content-Type): parsed JSON, the raw
    bytes when the Content-Type is not JSON (the model then refuses them, answered 415), and the
    same RequestValidationError for an empty or malformed body."""
    raw = await request.body()
    if not raw:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    if not _is_json_media(header(request.scope, b"content-type") or ""):
        request.scope[RAW_BODY] = raw
        return raw
    try:
        return await request.json()
    except orjson.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from exc


class DirectRoute(CdsRoute):
    """A route for the hot path (the hook call): the endpoint is called with its path parameters (as
    strings), `body` (validated against the model its annotation names) and `request`, without
    FastAPI's per-call dependency solving (about 0.1 ms of a typical call's 1.1 ms in process).
    Errors are those FastAPI raises (415, malformed JSON, invalid fields, all through the app's
    handlers; tests/test_direct_route.py compares them case by case), and OpenAPI still documents
    the endpoint from its signature."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[..., Awaitable[Response]] = self.endpoint
        model = get_type_hints(endpoint)["body"]
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{endpoint.__name__}: `body` must be annotated with a pydantic model")

        async def direct_handler(request: Request) -> Response:
            request = _OrjsonRequest(request.scope, request.receive)
            data = await _json_body(request)
            try:
                body = model.model_validate(data, from_attributes=True)  # as FastAPI does
            except ValidationError as exc:
                errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
                raise RequestValidationError(errors, body=data) from None
            return await endpoint(**request.path_params, body=body, request=request)

        return direct_handler
