"""Reading JSON bodies with orjson on every route that takes one."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class _OrjsonRequest(Request):
    """A request whose JSON body orjson parses: several times faster than the standard library on a
    large prefetch. orjson.JSONDecodeError subclasses json.JSONDecodeError, so FastAPI still turns a
    malformed body into its `json_invalid` validation error (answered 400 malformed-json)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class CdsRoute(APIRoute):
    """Every route of the app reads JSON bodies with orjson (FastAPI's documented way to change how
    a request body is read); validation, errors and OpenAPI stay FastAPI's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def orjson_handler(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return orjson_handler
