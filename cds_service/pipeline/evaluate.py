"""The hook pipeline: request → draft imaging orders → data (prefetch, else FHIR server) → patient
facts → decision per order → cards and system actions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx

from cds_service.errors import CdsError
from cds_service.fhir.bundle import by_reference
from cds_service.knowledge.registry import HookService
from cds_service.pipeline.config import EvaluationConfig
from cds_service.pipeline.decide import decide
from cds_service.pipeline.domain import Decision, ImagingOrder
from cds_service.pipeline.facts import patient_facts
from cds_service.pipeline.orders import (
    draft_imaging_orders,
    draft_resources,
    order_anomalies,
    order_reason,
    stated_urgent_findings,
)
from cds_service.pipeline.pama import system_action
from cds_service.pipeline.render import render_cards
from cds_service.pipeline.resolve import FhirGuard, resolve
from cds_service.wire import CdsResponse, HookRequest

# Resources above which a record is evaluated in a worker thread: the benchmark's large patient (about
# 1,900 resources, about 2 ms) stays on the loop, where a thread hop would cost more than it saves.
LARGE_RECORD = 5000


@dataclass
class Evaluation:
    response: CdsResponse
    decisions: list[Decision]
    orders: list[ImagingOrder]  # every draft imaging order evaluated, silent ones included
    knowledge: str | None = None  # version+hash of the knowledge set that decided
    # What the pure stages noticed (an EHR sending mismatched ids...): the shell logs and counts it.
    anomalies: list[str] = field(default_factory=list)


def imaging_orders(request: HookRequest, service: HookService) -> list[ImagingOrder]:
    """The draft imaging orders this service evaluates: the selected ones for order-select (whose
    `selections` the hook requires), every draft order for order-sign."""
    context = request.context
    if service.declaration.evaluate == "selections":
        if context.selections is None:
            raise CdsError(
                400, "invalid-request", f"context.selections is required for {request.hook}"
            )
        return draft_imaging_orders(context.draftOrders, context.selections, service.knowledge)
    return draft_imaging_orders(context.draftOrders, None, service.knowledge)


async def evaluate(
    request: HookRequest,
    service: HookService,
    client: httpx.AsyncClient,
    config: EvaluationConfig,
    now: datetime,
    base_url: str | None = None,
    fhir_guard: FhirGuard | None = None,
) -> Evaluation:
    """`fhir_guard` is called with fhirServer before any query is sent there, and raises to refuse
    it (the registered-FHIR-server rule, cds_service/security/fhir_servers.py)."""
    orders = imaging_orders(request, service)
    noticed = order_anomalies(request.context.draftOrders, request.context.selections)
    if not orders:  # nothing to say: no need to read the record
        return Evaluation(CdsResponse(cards=[]), [], [], anomalies=noticed)
    data = await resolve(
        request,
        service.declaration.prefetch,
        client,
        timeout_s=config.fhir_timeout_s,
        max_pages=config.fhir_max_pages,
        optional=frozenset(service.declaration.optional_prefetch),
        fhir_guard=fhir_guard,
    )
    size = sum(len(resources) for resources in data.resources.values())
    if size > LARGE_RECORD:
        # Tens of thousands of resources take tens of milliseconds to read: off the event loop, so
        # other calls on this worker are not delayed (a huge or hostile FHIR answer, issue 23).
        result = await asyncio.to_thread(
            evaluate_resolved, request, service, orders, data.resources, config, now, base_url
        )
    else:
        result = evaluate_resolved(request, service, orders, data.resources, config, now, base_url)
    result.anomalies[:0] = noticed
    return result


def evaluate_resolved(
    request: HookRequest,
    service: HookService,
    orders: list[ImagingOrder],
    resources: dict[str, list[dict[str, Any]]],
    config: EvaluationConfig,
    now: datetime,
    base_url: str | None = None,
) -> Evaluation:
    """The pure part of the pipeline: from resolved resources to the response."""
    k = service.knowledge
    limits = config.thresholds(k)
    patient_id = request.context.patientId
    facts = patient_facts(resources, patient_id, k, now, limits)
    drafts = request.context.draftOrders
    # Only a reasonReference reads this index: build it (one key per resource) only when needed.
    index = (
        by_reference(r for rs in resources.values() for r in rs)
        if any(r.get("reasonReference") for r in draft_resources(drafts))
        else {}
    )
    urgent = stated_urgent_findings(drafts, index, k)
    decisions = []
    for order in orders:
        # Everything urgent another draft order states, and the question this order's own name asks,
        # is the patient's (this order's reasons and notes are read by order_reason).
        extra = [
            finding
            for reference, finding in urgent
            if reference != order.reference or finding.origin == "order name"
        ]
        known = replace(facts, findings=facts.findings + extra) if extra else facts
        decision = decide(order, order_reason(order, index, k), known, k, limits, now)
        if decision is not None:
            decisions.append(decision)
    response = CdsResponse(
        cards=render_cards(
            decisions, k, patient_id, config, now, base_url=base_url, studies=facts.studies
        )
    )
    if config.system_actions and orders:
        # Every evaluated order gets its rating recorded; a silent one `no-criteria-apply` (SPEC §4).
        # An order not understood is not rated (SPEC §2, fail-safe rule).
        rated = {d.order.reference: d.rating.value for d in decisions if d.understood}
        actions = [system_action(o, rated.get(o.reference), k, config.new_id) for o in orders]
        response.systemActions = actions
        if config.system_actions_in_extension:
            response.extension = {
                "systemActions": [a.model_dump(exclude_none=True) for a in actions]
            }
    return Evaluation(response, decisions, orders, k.fingerprint, list(facts.anomalies))
