"""The app factory: wires knowledge, store, security, routes and operations together. Building an
app has no side effect beyond reading and validating the knowledge files (a bad rule file fails
fast): the store's folder, its migrations and the FHIR client wait for the lifespan. The import-time
ASGI entry point is `cds_service.asgi:app`."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from importlib.metadata import entry_points

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from cds_service import __version__
from cds_service.api.analytics_page import router as analytics_page_router
from cds_service.api.collector import tuned_collector
from cds_service.api.deps import Clock, Runtime, utc_now
from cds_service.api.errors import install_error_handlers
from cds_service.api.explain import router as explain_router
from cds_service.api.golive import router as go_live_router
from cds_service.api.hooks import install_hook_routes
from cds_service.api.hooks import router as hooks_router
from cds_service.api.ops import install_operations
from cds_service.config import Settings, get_settings
from cds_service.golive.metrics import publish_settings
from cds_service.golive.silent import SilentMode
from cds_service.golive.traffic import TRAFFIC_HEADER
from cds_service.knowledge.registry import load_services
from cds_service.observability.logs import configure_logging
from cds_service.persistence.audit_writer import AuditWriter
from cds_service.persistence.store import FeedbackStore
from cds_service.pipeline.config import EvaluationConfig, IdFactory, new_uuid
from cds_service.pipeline.fhir_client import FetchLimits, FhirClient
from cds_service.security import install_security, security_lifespan
from cds_service.tls import client_tls

log = logging.getLogger("cds_service")


@functools.cache
def _tool_routers() -> tuple[APIRouter, ...]:
    """Routers that installed tooling declares under the entry-point group `cds_service.routers`
    (cds_tools declares the /demo page): the runtime never imports the tooling, and an install
    without it simply has no such pages."""
    routers = []
    for entry in entry_points(group="cds_service.routers"):
        try:
            routers.append(entry.load())
        except ImportError:
            log.info("tool_router_unavailable", extra={"entry_point": entry.value})
    return tuple(routers)


def _install_docs(app: FastAPI) -> None:
    """Swagger UI 5 at /docs, which reads the app's OpenAPI 3.1 description, from the assets the
    fastapi-offline package ships: works offline, no CDN. Served at /docs-assets."""
    assets = resources.files("fastapi_offline") / "static"

    app.mount("/docs-assets", StaticFiles(directory=str(assets)), "docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} · API",
            swagger_js_url="docs-assets/swagger-ui-bundle.js",
            swagger_css_url="docs-assets/swagger-ui.css",
            swagger_favicon_url="docs-assets/favicon.png",
        )


def create_app(
    settings: Settings | None = None, clock: Clock = utc_now, new_id: IdFactory = new_uuid
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    salt = settings.gap_salt.get_secret_value() if settings.gap_salt else None
    store = FeedbackStore(
        settings.database_url, gap_salt=salt, gap_retention_days=settings.gap_retention_days
    )
    services = load_services(settings.hooks_dir)
    silent = SilentMode.from_settings(settings, services)  # an unknown scenario stops start-up
    publish_settings(silent, services)
    runtime = Runtime(
        settings=settings,
        services=services,
        store=store,
        audit=AuditWriter(
            store,
            batch_rows=settings.audit_batch_rows,
            interval_s=settings.audit_flush_interval_s,
            max_rows=settings.audit_queue_rows,
        ),
        evaluation=EvaluationConfig.from_settings(settings, new_id=new_id),
        clock=clock,
        silent=silent,
    )

    fetch_limits = FetchLimits(
        response_bytes=settings.fhir_max_response_bytes,
        call_bytes=settings.fhir_max_call_bytes,
        call_resources=settings.fhir_max_call_resources,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.store.prepare()
        if settings.migrate_on_startup:
            await run_in_threadpool(runtime.store.migrate)
        async with (
            FhirClient(
                timeout=settings.fhir_timeout_s, fetch_limits=fetch_limits, verify=client_tls()
            ) as client,
            security_lifespan(app),
        ):
            runtime.fhir_client = client
            runtime.audit.start()
            try:
                with tuned_collector():
                    yield
            finally:
                runtime.fhir_client = None
                await run_in_threadpool(runtime.audit.close)

    app = FastAPI(
        title="PDPH imaging CDS Hooks service",
        version=__version__,
        description="CDS Hooks 2.0 service giving ACR Appropriateness Criteria advice on head and "
        "spine imaging for suspected post-dural-puncture headache.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    install_hook_routes(app)  # first: discovery and the hot path are the first routes tried
    app.include_router(hooks_router)
    app.include_router(explain_router)
    app.include_router(analytics_page_router)
    app.include_router(go_live_router)
    _install_docs(app)
    for router in _tool_routers():
        app.include_router(router)
    # A browser-based test harness (the sandbox, an integrator's own) may mark its calls as tests.
    install_security(app, settings, runtime.store.engine, extra_headers=[TRAFFIC_HEADER])
    install_operations(app)  # last: its access log is the outermost middleware, 401s included
    return app
