"""Operations endpoints (`/readyz`, `/metrics`, `/analytics/overrides`) and their wiring into the app:
`install_operations(app)` adds the router and the access-log middleware.
These are ordinary app routes, so app-wide dependencies and middleware (authentication) apply."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from cds_service.api.deps import RuntimeDep, runtime_of
from cds_service.errors import CdsError
from cds_service.observability.access import AccessLogMiddleware
from cds_service.observability.metrics import STORE_ERRORS, STORE_UP, exposition
from cds_service.persistence.analytics import OverrideSummary, override_summary, window

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 3.0

router = APIRouter()


@router.get("/readyz", summary="Readiness: can this replica serve hook calls")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when this replica can evaluate hook calls (knowledge loaded). The store is a shared
    dependency: if its state decided readiness, a database restart would take every replica out of
    the load balancer at once, although each can still evaluate hooks (feedback answers 503 with
    Retry-After meanwhile). Its state goes in the body, in `cds_store_up` and in alerts."""
    store = runtime.store
    checks = {"knowledge": "ok" if runtime.services else "not-loaded", "store": "timeout"}
    with anyio.move_on_after(READY_TIMEOUT_S):
        try:
            current = await anyio.to_thread.run_sync(
                store.schema_is_current, abandon_on_cancel=True
            )
            checks["store"] = "ok" if current else "schema-not-current"
        except SQLAlchemyError as exc:
            STORE_ERRORS.labels("readiness").inc()
            checks["store"] = "unreachable"
            log.warning("store_unreachable", extra={"error_class": type(exc).__name__})
    STORE_UP.set(1 if checks["store"] == "ok" else 0)
    ready = checks["knowledge"] == "ok"
    knowledge = {sid: service.knowledge.fingerprint for sid, service in runtime.services.items()}
    body = {"status": "ready" if ready else "not-ready", "checks": checks, "knowledge": knowledge}
    # Go-live: which scenarios' cards are withheld, and whether system actions are (docs/go-live.md).
    body["silentMode"] = runtime.silent.describe()
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(content=body, media_type=content_type)


@router.get(
    "/analytics/overrides",
    summary="Cards shown, accepted and overridden per scenario and override reason",
    response_model=OverrideSummary,
    response_model_exclude_none=True,
)
async def analytics_overrides(
    runtime: RuntimeDep,
    since: Annotated[datetime | None, Query(description="Start, ISO instant (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="End, ISO instant; default now")] = None,
) -> OverrideSummary:
    try:
        start, end = window(since, until, runtime.clock())
    except ValueError as exc:
        raise CdsError(400, "invalid-window", str(exc)) from None
    await anyio.to_thread.run_sync(runtime.audit.flush)  # this process's latest cards count too
    return await anyio.to_thread.run_sync(override_summary, runtime.store.engine, start, end)


def install_operations(app: FastAPI) -> None:
    """Call last in create_app, so the access log wraps every other middleware and logs its answers
    (401s included)."""
    app.include_router(router)
    app.add_middleware(AccessLogMiddleware, services=list(runtime_of(app).services))
