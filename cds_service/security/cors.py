"""CORS: Starlette's `CORSMiddleware`, with a short way through for the calls that carry no `Origin`
header (every EHR's server-to-server call). Starlette answers those as simple responses whose one
change is `Vary: Origin` added to the response headers; this layer makes exactly that change without
building two header objects and a partial per call. A call with an `Origin` header (a browser's, a
preflight) goes through Starlette's own code unchanged (tests/test_cors_fast_path.py compares the
two on every kind of call)."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send


def add_vary_origin(message: Message) -> None:
    """What `MutableHeaders(scope=message)["Vary"] = ", ".join([*getlist("Vary"), "Origin"])` does
    to a response start (Starlette's CORSMiddleware.send for a call without Origin): the headers
    copied into a new list, every Vary value joined with ", " and "Origin" appended, written at the
    first Vary's place (later ones removed), or at the end when there was none."""
    headers = list(message.setdefault("headers", []))
    found = [index for index, (key, _) in enumerate(headers) if key == b"vary"]
    values = [headers[index][1].decode("latin-1") for index in found]
    vary = (b"vary", ", ".join([*values, "Origin"]).encode("latin-1"))
    for index in reversed(found[1:]):
        del headers[index]
    if found:
        headers[found[0]] = vary
    else:
        headers.append(vary)
    message["headers"] = headers


class CorsMiddleware(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Starlette's Headers.get("origin") compares the raw (lower-case) names the same way.
            for key, _ in scope["headers"]:
                if key == b"origin":
                    break
            else:

                async def vary_origin(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        add_vary_origin(message)
                    await send(message)

                await self.app(scope, receive, vary_origin)
                return
        await super().__call__(scope, receive, send)
