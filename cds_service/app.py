"""The FastAPI application: discovery, hook calls and feedback. Routes stay thin; the work happens in
`pipeline` (evaluation) and `store` (feedback)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service import __version__
from cds_service.audit import record_feedback_call, record_hook_call
from cds_service.config import Settings, get_settings
from cds_service.demo import router as demo_router
from cds_service.errors import CdsError, validation_details
from cds_service.logs import configure_logging, hook_instance
from cds_service.ops_routes import install_operations
from cds_service.pipeline import evaluate
from cds_service.registry import HookService, load_services
from cds_service.resolve import DataUnavailable
from cds_service.security import install_security, security_lifespan
from cds_service.store import FeedbackStore
from cds_service.wire import CdsResponse, FeedbackRequest, HookRequest

log = logging.getLogger("cds_service")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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


def create_app(settings: Settings | None = None, clock: Clock = utc_now) -> FastAPI:
    """Build the app. Knowledge files are loaded and validated here, so a bad rule file fails fast."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    services = load_services(settings.hooks_dir)
    store = FeedbackStore(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_startup:
            await run_in_threadpool(store.migrate)
        async with (
            httpx.AsyncClient(timeout=settings.fhir_timeout_s) as client,
            security_lifespan(app),
        ):
            app.state.fhir_client = client
            # Everything loaded so far (models, knowledge, libraries) lives as long as the process:
            # moving it out of the collector's sight keeps full collections, which a large prefetch
            # triggers, from re-scanning it on every request.
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                gc.unfreeze()

    app = FastAPI(
        title="PDPH imaging CDS Hooks service",
        version=__version__,
        description="CDS Hooks 2.0 service giving ACR Appropriateness Criteria advice on head and "
        "spine imaging for suspected post-dural-puncture headache.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.store = store
    app.state.clock = clock
    app.router.route_class = CdsRoute
    _install_error_handlers(app)
    _install_routes(app)
    app.include_router(demo_router)
    install_security(app, settings, store.engine)
    install_operations(app)  # last: its access log is the outermost middleware, 401s included
    return app


def _service(app: FastAPI, service_id: str) -> HookService:
    services: dict[str, HookService] = app.state.services
    if service_id not in services:
        raise CdsError(404, "unknown-service", f"no CDS service with id {service_id!r}")
    return services[service_id]


def _install_routes(app: FastAPI) -> None:
    @app.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery() -> dict[str, Any]:
        services: dict[str, HookService] = app.state.services
        return {"services": [s.declaration.discovery_entry() for s in services.values()]}

    @app.post(
        "/cds-services/{service_id}",
        summary="Call a CDS service (order-select or order-sign)",
        response_model=CdsResponse,
        response_model_exclude_none=True,
        responses={
            400: {"description": "Malformed request"},
            404: {"description": "Unknown service"},
            412: {"description": "Prefetch missing and the FHIR server could not supply it"},
        },
    )
    async def call_service(
        service_id: str, body: HookRequest, background: BackgroundTasks
    ) -> CdsResponse:
        service = _service(app, service_id)
        hook_instance.set(body.hookInstance)
        if body.hook != service.declaration.hook:
            raise CdsError(
                400,
                "hook-mismatch",
                f"service {service_id!r} answers the {service.declaration.hook!r} hook, "
                f"not {body.hook!r}",
            )
        started = time.perf_counter()
        now = app.state.clock()
        result = await evaluate(body, service, app.state.fhir_client, app.state.settings, now)
        record_hook_call(
            background, app.state.store, service_id, body.hookInstance, result, started, now
        )
        return result.response

    @app.post(
        "/cds-services/{service_id}/feedback",
        summary="Feedback on the cards a service returned",
        responses={
            400: {"description": "Malformed feedback"},
            404: {"description": "Unknown service"},
        },
    )
    async def feedback(service_id: str, body: FeedbackRequest) -> dict[str, Any]:
        _service(app, service_id)
        store: FeedbackStore = app.state.store
        stored = await run_in_threadpool(store.save, service_id, body.feedback)
        record_feedback_call(service_id, body.feedback, stored)
        return {"received": len(body.feedback), "stored": stored}

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CdsError)
    async def cds_error(_: Request, exc: CdsError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(DataUnavailable)
    async def data_unavailable(_: Request, exc: DataUnavailable) -> JSONResponse:
        log.warning("prefetch_unavailable", extra={"missing": exc.missing})
        error = CdsError(
            412,
            "prefetch-unavailable",
            "Data needed to decide is missing from the prefetch and could not be read from the "
            "FHIR server.",
            [{"prefetch": key, "cause": cause} for key, cause in exc.missing.items()],
        )
        return JSONResponse(error.body(), status_code=412)

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
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(ValidationError)
    async def invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        error = CdsError(400, "invalid-request", "The request is invalid.", validation_details(exc))
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = CdsError(exc.status_code, "http-error", str(exc.detail))
        return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected_error", extra={"error_class": type(exc).__name__})
        error = CdsError(500, "internal-error", "The service failed to evaluate this request.")
        return JSONResponse(error.body(), status_code=500)


# The ASGI app for `uvicorn cds_service.app:app`; tests build their own with create_app(settings).
app = create_app()
