"""The one place where errors become HTTP responses (the hierarchy: cds_service/errors.py). Every
answer has the body `{"error": <code>, "message": <text>, "details": [...]}`; never a trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service.errors import CdsError, DataUnavailable, ServiceError, validation_details

log = logging.getLogger("cds_service")


def error_response(error: ServiceError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=dict(headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        if isinstance(exc, DataUnavailable):
            log.warning("prefetch_unavailable", extra={"missing": exc.missing})
        elif exc.status >= 500:
            log.error("service_error", extra={"error_class": type(exc).__name__})
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        details = [
            {
                "location": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                "problem": str(e.get("msg", "invalid")),
            }
            for e in errors[:20]
        ]
        malformed = any(
            e.get("type") == "json_invalid"
            or (e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",))
            for e in errors
        )
        error = CdsError(
            400,
            "malformed-json" if malformed else "invalid-request",
            "The request body is empty or not valid JSON."
            if malformed
            else "The request body is invalid.",
            details,
        )
        return error_response(error)

    @app.exception_handler(ValidationError)
    async def invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        error = CdsError(400, "invalid-request", "The request is invalid.", validation_details(exc))
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "error", "http-error")  # a routing error that names itself
        error = CdsError(exc.status_code, code, str(exc.detail))
        return error_response(error, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected_error", extra={"error_class": type(exc).__name__})
        error = CdsError(500, "internal-error", "The service failed to evaluate this request.")
        return error_response(error)
