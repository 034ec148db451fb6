"""After a hook call: the audit rows of its decisions, its card metrics and its access-log facts (and
the same bookkeeping for feedback). The rows go to the process's batched `AuditWriter`: the hook call
never waits for the database, and a store failure is logged and counted, never turned into an error
for the EHR."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cds_service.golive.metrics import SCENARIO_FIRED
from cds_service.golive.silent import Delivery, SilentMode
from cds_service.observability.access import request_facts
from cds_service.observability.metrics import record_cards, record_feedback
from cds_service.persistence.audit_writer import AuditWriter, Row
from cds_service.persistence.gaps import GapSighting
from cds_service.persistence.store import AuditRecord
from cds_service.pipeline.evaluate import Evaluation
from cds_service.wire import Card, CardExtension, FeedbackItem

SILENT = "none"


@dataclass(frozen=True)
class GoLive:
    """What the shell adds to an evaluation (SPEC §6): what was returned and withheld, the silent
    mode in force, the mark of harness or demo traffic (None: a real call), the vocabulary gaps."""

    delivery: Delivery | None = None
    silent: SilentMode | None = None
    traffic: str | None = None
    gaps: Sequence[GapSighting] = field(default_factory=tuple)


def _by_order(cards: Sequence[Card]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for card in cards:
        # A card about the patient names every draft order it concerns (SPEC §4).
        extension = card.extension or {}
        orders = extension.get(CardExtension.DRAFT_ORDERS) or [
            extension.get(CardExtension.DRAFT_ORDER)
        ]
        for order in orders:
            if isinstance(order, str):
                found.setdefault(order, []).append((card.uuid, card.indicator))
    return found


def audit_records(
    service_id: str,
    hook_instance: str,
    evaluation: Evaluation,
    latency_ms: float,
    evaluated_at: datetime,
    go_live: GoLive | None = None,
) -> list[AuditRecord]:
    """One record per evaluated draft order, with the uuids and indicators of the cards shown for it
    and the number silent mode withheld. Orders the service stayed silent on are recorded too, with
    scenario and rating `none`."""
    go_live = go_live or GoLive()
    delivery = go_live.delivery or Delivery(evaluation.response)
    cards = _by_order(delivery.response.cards)
    withheld = _by_order(delivery.withheld)
    silent = go_live.silent
    decided = {d.order.reference: d for d in evaluation.decisions}
    records = []
    for order in evaluation.orders:
        decision = decided.get(order.reference)
        records.append(
            AuditRecord(
                hook_instance=hook_instance,
                service_id=service_id,
                scenario=str(decision.scenario) if decision else SILENT,
                rating=decision.rating.value.value if decision else SILENT,
                study_type=order.study_type,
                hours_since_puncture=decision.hours_since_puncture if decision else None,
                latency_ms=latency_ms,
                evaluated_at=evaluated_at,
                cards=tuple(cards.get(order.reference, ())),
                knowledge=evaluation.knowledge,
                cards_withheld=len(withheld.get(order.reference, ())),
                silent_scenarios=silent.setting if silent else None,
                silent_system_actions=silent.system_actions if silent else None,
                traffic=go_live.traffic,
            )
        )
    return records


def record_hook_call(
    writer: AuditWriter,
    service_id: str,
    hook_instance: str,
    evaluation: Evaluation,
    started: float,
    now: datetime,
    go_live: GoLive | None = None,
    ended: float | None = None,
) -> None:
    """Metrics and access-log facts now; the audit rows and gap sightings to the batched writer
    (`started` and `ended` are the `time.perf_counter()` at the start and end of the evaluation;
    without `ended`, now). Marked harness or demo calls are audited with their mark but not counted
    in the go-live metrics."""
    go_live = go_live or GoLive()
    latency_ms = round(((ended or time.perf_counter()) - started) * 1000, 3)
    records = audit_records(service_id, hook_instance, evaluation, latency_ms, now, go_live)
    scenario_of = {uuid: r.scenario for r in records for uuid, _ in r.cards}
    returned = go_live.delivery.response if go_live.delivery else evaluation.response
    record_cards(service_id, returned.cards, scenario_of)
    if go_live.traffic is None:
        for r in records:
            if r.scenario != SILENT:
                delivery = "shown" if r.cards else "withheld" if r.cards_withheld else "no-card"
                SCENARIO_FIRED.labels(service_id, r.scenario, delivery).inc()
    facts = request_facts()
    facts.hook_instance = hook_instance
    facts.scenarios = sorted({r.scenario for r in records if r.scenario != SILENT})
    facts.cards = len(returned.cards)
    rows: list[Row] = [*records, *go_live.gaps]
    writer.submit(rows)


def record_feedback_call(
    service_id: str, items: list[FeedbackItem], stored: int, flags: list[str | None]
) -> None:
    record_feedback(service_id, items, stored, flags)
    request_facts().feedback_items = len(items)
