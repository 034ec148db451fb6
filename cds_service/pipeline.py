"""The hook pipeline: request → draft imaging orders → data (prefetch, else FHIR server) → patient
facts → decision per order → cards and system actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from cds_service.cards import render_cards, system_action
from cds_service.config import Settings
from cds_service.decide import Decision, decide
from cds_service.errors import CdsError
from cds_service.facts import Thresholds, patient_facts
from cds_service.knowledge import Knowledge
from cds_service.orders import ImagingOrder, draft_imaging_orders, order_reason
from cds_service.registry import HookService
from cds_service.resolve import resolve
from cds_service.wire import CdsResponse, HookRequest


@dataclass
class Evaluation:
    response: CdsResponse
    decisions: list[Decision]
    orders: list[ImagingOrder]  # every draft imaging order evaluated, silent ones included


def thresholds(k: Knowledge, settings: Settings) -> Thresholds:
    """The knowledge file's thresholds, with any site override from the environment."""
    base = k.rules.thresholds
    return Thresholds(
        acute_window_hours=settings.acute_window_hours or base.acute_window_hours,
        lookback_days=settings.lookback_days or base.lookback_days,
        fever_celsius=settings.fever_celsius or base.fever_celsius,
        observation_window_hours=settings.observation_window_hours or base.observation_window_hours,
        adult_age_years=base.adult_age_years,
    )


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
    settings: Settings,
    now: datetime,
) -> Evaluation:
    orders = imaging_orders(request, service)
    if not orders:
        return Evaluation(
            CdsResponse(cards=[]), [], []
        )  # nothing to say: no need to read the record
    data = await resolve(
        request,
        service.declaration.prefetch,
        client,
        timeout_s=settings.fhir_timeout_s,
        max_pages=settings.fhir_max_pages,
    )
    return evaluate_resolved(request, service, orders, data.resources, settings, now)


def evaluate_resolved(
    request: HookRequest,
    service: HookService,
    orders: list[ImagingOrder],
    resources: dict[str, list[dict[str, Any]]],
    settings: Settings,
    now: datetime,
) -> Evaluation:
    """The pure part of the pipeline: from resolved resources to the response."""
    k = service.knowledge
    limits = thresholds(k, settings)
    patient_id = request.context.patientId
    facts = patient_facts(resources, patient_id, k, now, limits)
    # Only a reasonReference reads this index: build it (one key per resource) only when needed.
    index = (
        {
            f"{r.get('resourceType')}/{r.get('id')}": r
            for rs in resources.values()
            for r in rs
            if isinstance(r.get("id"), str)
        }
        if any(order.raw.get("reasonReference") for order in orders)
        else {}
    )
    decisions = [
        decision
        for order in orders
        if (decision := decide(order, order_reason(order, index, k), facts, k, limits, now))
    ]
    response = CdsResponse(
        cards=render_cards(decisions, k, patient_id, settings.confirm_appropriate_orders)
    )
    if settings.system_actions and orders:
        # Every evaluated order gets its rating recorded; a silent one `no-criteria-apply` (SPEC §4).
        rated = {d.order.reference: d.rating.value for d in decisions}
        actions = [system_action(o, rated.get(o.reference), k) for o in orders]
        response.systemActions = actions
        if settings.system_actions_in_extension:
            response.extension = {
                "systemActions": [a.model_dump(exclude_none=True) for a in actions]
            }
    return Evaluation(response, decisions, orders)
