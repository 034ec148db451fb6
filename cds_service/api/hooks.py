"""The CDS Hooks routes: discovery, service calls and feedback. Thin: the work is in
`cds_service.pipeline` (evaluation) and `cds_service.persistence` (feedback, audit)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.background import BackgroundTask
from starlette.types import Receive, Scope, Send

from cds_service.api import routing
from cds_service.api.bookkeeping import GoLive, record_feedback_call, record_hook_call
from cds_service.api.deps import Runtime, RuntimeDep, runtime_of
from cds_service.api.routing import CdsRoute, DirectRoute
from cds_service.errors import CdsError
from cds_service.golive.record import vocabulary_gaps
from cds_service.golive.silent import Delivery
from cds_service.golive.traffic import TRAFFIC_HEADER, traffic_mark
from cds_service.knowledge.registry import HookService
from cds_service.observability.logs import hook_instance
from cds_service.observability.metrics import ANOMALIES
from cds_service.persistence.store import SavedFeedback
from cds_service.pipeline.evaluate import Evaluation, evaluate
from cds_service.security.fhir_servers import check_fhir_server
from cds_service.wire import CdsResponse, FeedbackRequest, HookRequest

log = logging.getLogger(__name__)

router = APIRouter(route_class=CdsRoute)
_TRAFFIC = TRAFFIC_HEADER.lower().encode("latin-1")


async def discovery(runtime: RuntimeDep) -> dict[str, Any]:
    return {"services": [s.declaration.discovery_entry() for s in runtime.services.values()]}


async def call_service(service_id: str, body: HookRequest, request: Request) -> Response:
    # The hot path (a DirectRoute, registered below) reads the typed Runtime directly.
    runtime = runtime_of(request.app)
    service = runtime.service(service_id)
    hook_instance.set(body.hookInstance)
    if body.hook != service.declaration.hook:
        raise CdsError(
            400,
            "hook-mismatch",
            f"service {service_id!r} answers the {service.declaration.hook!r} hook, "
            f"not {body.hook!r}",
        )
    started = time.perf_counter()
    now = runtime.clock()
    scope = request.scope
    base_url = runtime.settings.public_base_url or routing.base_url(scope)
    # request.state.cds_issuer, set by the authentication middleware (None without it).
    issuer = (scope.get("state") or {}).get("cds_issuer")
    result = await evaluate(
        body,
        service,
        runtime.client(),
        runtime.evaluation,
        now,
        base_url,
        fhir_guard=partial(check_fhir_server, runtime.settings, issuer),
    )
    # Go-live (SPEC §6), in the shell: silent mode withholds the cards of silenced scenarios after
    # the evaluation.
    delivery = runtime.silent.apply(result)
    evaluated = time.perf_counter()
    traffic = traffic_mark(routing.header(scope, _TRAFFIC))
    # What the call leaves behind is done once the answer is sent, so the EHR does not wait for it:
    # Starlette runs the background task right after the last byte, in this task (an async
    # function: no thread), before the access log writes the call's line.
    after = BackgroundTask(
        _after_answer, runtime, service, body, result, delivery, traffic, started, evaluated, now
    )
    # Serialised once by pydantic-core: FastAPI would validate the model again, then encode it
    # with the standard library (response_model still documents the shape in OpenAPI).
    return _Answer(
        delivery.response.model_dump_json(exclude_none=True),
        media_type="application/json",
        background=after,
    )


class _Answer(Response):
    """The hook call's answer: its background task (the bookkeeping) runs once it is sent, and also
    when sending it failed (an EHR that went away): an evaluated call is always audited."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        after, self.background = self.background, None
        try:
            await super().__call__(scope, receive, send)
        finally:
            if after is not None:
                await after()


async def _after_answer(
    runtime: Runtime,
    service: HookService,
    body: HookRequest,
    result: Evaluation,
    delivery: Delivery,
    traffic: str | None,
    started: float,
    evaluated: float,
    now: datetime,
) -> None:
    """A hook call's bookkeeping: what the pure stages noticed (logged and counted), the vocabulary
    gaps (marked harness and demo calls leave none and are not counted), the audit rows, metrics
    and access-log facts (`record_hook_call`; the latency recorded is the evaluation's)."""
    for anomaly in result.anomalies:
        ANOMALIES.labels(anomaly).inc()
        log.warning(anomaly.replace("-", "_"), extra={"hookInstance": body.hookInstance})
    gaps = vocabulary_gaps(service, body, result, now) if traffic is None else []
    go_live = GoLive(delivery, runtime.silent, traffic, gaps)
    record_hook_call(
        runtime.audit, service.id, body.hookInstance, result, started, now, go_live, evaluated
    )


HOOK_PATH = "/cds-services/{service_id}"


def install_hook_routes(app: FastAPI) -> None:
    """Discovery and the hook call (the hot path) as routes of the app itself, added before any
    router is included: the hook call is the second route tried, after discovery (its path differs
    at once). A route of an included router is matched twice per call (the router, then its route),
    about 10 us. The OpenAPI document keeps its order: discovery, the hook call, then `router`'s
    feedback and liveness routes, included right after."""
    app.router.add_api_route(
        "/cds-services",
        discovery,
        methods=["GET"],
        summary="CDS Hooks discovery",
        route_class_override=CdsRoute,
    )
    app.router.add_api_route(
        HOOK_PATH,
        call_service,
        methods=["POST"],
        summary="Call a CDS service (order-select or order-sign)",
        response_model=CdsResponse,
        response_model_exclude_none=True,
        responses={
            400: {"description": "Malformed request"},
            404: {"description": "Unknown service"},
            412: {"description": "Prefetch missing and the FHIR server could not supply it"},
        },
        route_class_override=DirectRoute,
    )


@router.post(
    "/cds-services/{service_id}/feedback",
    summary="Feedback on the cards a service returned",
    responses={
        400: {"description": "Malformed feedback"},
        404: {"description": "Unknown service"},
    },
)
async def feedback(service_id: str, body: FeedbackRequest, runtime: RuntimeDep) -> dict[str, Any]:
    service = runtime.service(service_id)
    rules = service.knowledge.rules

    def offered(scenario: str) -> frozenset[tuple[str | None, str | None]]:
        cards = rules.scenarios.get(scenario)
        codes = cards.override_reasons if cards else []
        return frozenset((rules.override_reason_system, code) for code in codes)

    def store() -> SavedFeedback:
        # This process's audit rows of these cards first, so the cards are known to the store.
        runtime.audit.flush_cards(item.card for item in body.feedback)
        return runtime.store.save(service_id, body.feedback, offered)

    stored, flags = await run_in_threadpool(store)
    record_feedback_call(service_id, body.feedback, stored, flags)
    flagged = sum(flag is not None for flag in flags)
    return {"received": len(body.feedback), "stored": stored} | (
        {"flagged": flagged} if flagged else {}
    )


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
