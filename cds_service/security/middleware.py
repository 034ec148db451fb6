"""Pure ASGI middleware: bearer-token authentication and the request body size limit. Both answer in
the service's error shape `{"error": <code>, "message": <text>}` before the application runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.errors import AuthFailure, CdsError, error_response
from cds_service.security.auth import Authenticator

log = logging.getLogger(__name__)


class AuthMiddleware:
    """Every HTTP request outside `exempt_paths` must carry a valid EHR token. CORS preflights never
    reach this middleware: CORSMiddleware, outside it, answers them."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        public_base_url: str | None,
        exempt_paths: Iterable[str],
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        paths = list(exempt_paths)
        self.exempt_paths = frozenset(p for p in paths if not p.endswith("/"))
        # An entry ending in "/" exempts everything under it (the knowledge-only /explain/ pages).
        self.exempt_prefixes = tuple(p for p in paths if p.endswith("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in self.exempt_paths
            or (self.exempt_prefixes and path.startswith(self.exempt_prefixes))
        ):
            await self.app(scope, receive, send)
            return
        failure = await self._refusal(scope)
        if failure is None:
            await self.app(scope, receive, send)
            return
        log.warning("auth_refused", extra={"auth_check": failure.code, "path": scope["path"]})
        challenge = (
            "Bearer" if failure.code == "missing-authorization" else 'Bearer error="invalid_token"'
        )
        response = error_response(failure, {"WWW-Authenticate": challenge})
        await response(scope, receive, send)

    async def _refusal(self, scope: Scope) -> AuthFailure | None:
        authorization = Headers(scope=scope).get("authorization")
        try:
            claims = await self.authenticator.authenticate(authorization, self.audience(scope))
        except AuthFailure as failure:
            return failure
        except Exception as exc:  # a bug or a broken key set: fail closed, and loudly
            log.error("auth_unexpected_error", extra={"error_class": type(exc).__name__})
            return AuthFailure("invalid-token", "The token could not be verified.")
        # The verified issuer, for the registered-FHIR-server check (request.state.cds_issuer).
        scope.setdefault("state", {})["cds_issuer"] = claims.get("iss")
        return None

    def audience(self, scope: Scope) -> str:
        """The URL being called, which the token's `aud` must name. Without CDS_PUBLIC_BASE_URL it is
        rebuilt from the request (scheme and Host header), which is only right without a proxy."""
        path: str = scope["path"]
        if self.public_base_url is not None:
            return self.public_base_url + path
        host = Headers(scope=scope).get("host", "")
        return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{path}"


class BodyTooLarge(HTTPException):
    """Raised from `receive` so that FastAPI stops reading; the middleware answers 413 itself."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_MAX_SECONDS = 10.0


async def _drain(receive: Receive) -> None:
    """Read and discard the rest of a refused body, within a bound, before answering: a server that
    closes a socket with unread data makes the kernel send a reset, and an ordinary client (curl,
    http.client, httpx) still sending its body then sees "connection reset" instead of the 413."""
    drained = 0
    with anyio.move_on_after(DRAIN_MAX_SECONDS):
        while drained <= DRAIN_MAX_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: at once from Content-Length, else (chunked bodies)
    as soon as the bytes received pass the limit, replacing whatever response the app started."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None  # Headers(scope=scope).get("content-length"), without building the object
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value.decode("latin-1")
                break
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                invalid = CdsError(
                    400, "invalid-content-length", "Content-Length must be a number."
                )
                await error_response(invalid)(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await _drain(receive)
                await self._too_large(scope, receive, send)
                return

        received = 0
        exceeded = False
        responded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if exceeded:
                if not responded and message["type"] == "http.response.start":
                    responded = True
                    await _drain(receive)
                    await self._too_large(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not responded:
                responded = True
                await _drain(receive)
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("request_too_large", extra={"max_bytes": self.max_bytes})
        too_large = CdsError(
            413, "body-too-large", f"The request body exceeds the limit of {self.max_bytes} bytes."
        )
        response = error_response(too_large, {"Connection": "close"})
        await response(scope, receive, send)
