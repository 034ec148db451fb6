"""The app's error handlers: which exception becomes which error (the hierarchy and its one
`error_response`: cds_service/errors.py). Every answer has the body `{"error": <code>, "message":
<text>, "details": [...]}`; never a trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service.api.routing import RAW_BODY
from cds_service.errors import (
    CdsError,
    DataUnavailable,
    ServiceError,
    error_response,
    validation_details,
)
from cds_service.observability.metrics import STORE_ERRORS

log = logging.getLogger("cds_service")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        if isinstance(exc, DataUnavailable):
            log.warning("prefetch_unavailable", extra={"missing": exc.missing})
        elif exc.status >= 500:
            log.error("service_error", extra={"error_class": type(exc).__name__})
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return error_response(await _request_error(request, errors))

    @app.exception_handler(ValidationError)
    async def invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        error = CdsError(400, "invalid-request", "The request is invalid.", validation_details(exc))
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "error", "http-error")  # a routing error that names itself
        error = CdsError(exc.status_code, code, str(exc.detail))
        return error_response(error, exc.headers)

    @app.exception_handler(SQLAlchemyError)
    async def store_unavailable(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        STORE_ERRORS.labels("request").inc()
        log.error("store_unavailable", extra={"error_class": type(exc).__name__})
        error = CdsError(
            503, "store-unavailable", "The feedback store is unavailable; retry later."
        )
        return error_response(error, {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected_error", extra={"error_class": type(exc).__name__})
        error = CdsError(500, "internal-error", "The service failed to evaluate this request.")
        return error_response(error)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def _request_error(request: Request, errors: Sequence[Any]) -> CdsError:
    """What is wrong with a request, in words a caller can act on: the Content-Type, where the JSON
    breaks (line and column), which query parameter, or which body fields."""
    body_errors = [e for e in errors if tuple(e.get("loc", ()))[:1] == ("body",)]
    content_type = request.headers.get("content-type", "")
    if body_errors and request.method == "POST" and not _is_json(content_type):
        return CdsError(
            415,
            "unsupported-media-type",
            "Send the request body as JSON with the header Content-Type: application/json "
            f"(received {content_type or 'no Content-Type'}).",
            [{"location": "header.content-type", "problem": "must be application/json"}],
        )
    broken = next((e for e in body_errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        body = request.scope.get(RAW_BODY, b"")
        position = next((p for p in broken.get("loc", ())[1:] if isinstance(p, int)), 0)
        line = body.count(b"\n", 0, position) + 1
        column = position - (body.rfind(b"\n", 0, position) + 1) + 1
        reason = str((broken.get("ctx") or {}).get("error", "invalid JSON"))
        return CdsError(
            400,
            "malformed-json",
            f"The request body is not valid JSON: {reason} at line {line}, column {column}.",
            [{"location": f"line {line}, column {column}", "problem": reason}],
        )
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        return CdsError(400, "malformed-json", "The request body is empty.", [])
    details = [
        {
            "location": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
            "problem": str(e.get("msg", "invalid")),
        }
        for e in errors[:20]
    ]
    if errors and all(tuple(e.get("loc", ()))[:1] == ("query",) for e in errors):
        return CdsError(400, "invalid-query", "A query parameter is invalid.", details)
    return CdsError(400, "invalid-request", "The request body is invalid.", details)
