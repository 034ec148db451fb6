"""After a hook call: the audit rows of its decisions, its card metrics and its access-log facts (and
the same bookkeeping for feedback). The rows go to the process's batched `AuditWriter`: the hook call
never waits for the database, and a store failure is logged and counted, never turned into an error
for the EHR."""

from __future__ import annotations

import time
from datetime import datetime

from cds_service.observability.access import request_facts
from cds_service.observability.metrics import record_cards, record_feedback
from cds_service.persistence.audit_writer import AuditWriter
from cds_service.persistence.store import AuditRecord
from cds_service.pipeline.evaluate import Evaluation
from cds_service.wire import FeedbackItem

# cards.py names the decision's draft order here, which is how a card is mapped back to its decision.
DRAFT_ORDER_EXTENSION = "pdph-imaging.draft-order"
SILENT = "none"


def audit_records(
    service_id: str,
    hook_instance: str,
    evaluation: Evaluation,
    latency_ms: float,
    evaluated_at: datetime,
) -> list[AuditRecord]:
    """One record per evaluated draft order, with the uuids and indicators of the cards shown for it.
    Orders the service stayed silent on are recorded too, with scenario and rating `none`."""
    cards: dict[str, list[tuple[str, str]]] = {}
    for card in evaluation.response.cards:
        order = (card.extension or {}).get(DRAFT_ORDER_EXTENSION)
        if isinstance(order, str):
            cards.setdefault(order, []).append((card.uuid, card.indicator))
    decided = {d.order.reference: d for d in evaluation.decisions}
    records = []
    for order in evaluation.orders:
        decision = decided.get(order.reference)
        records.append(
            AuditRecord(
                hook_instance=hook_instance,
                service_id=service_id,
                scenario=decision.scenario.value if decision else SILENT,
                rating=decision.rating.value.value if decision else SILENT,
                study_type=order.study_type,
                hours_since_puncture=decision.hours_since_puncture if decision else None,
                latency_ms=latency_ms,
                evaluated_at=evaluated_at,
                cards=tuple(cards.get(order.reference, ())),
                knowledge=evaluation.knowledge,
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
) -> None:
    """Metrics and access-log facts now; the audit rows to the batched writer (`started` is the
    `time.perf_counter()` at the start of the evaluation)."""
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    records = audit_records(service_id, hook_instance, evaluation, latency_ms, now)
    scenario_of = {uuid: r.scenario for r in records for uuid, _ in r.cards}
    record_cards(service_id, evaluation.response.cards, scenario_of)
    facts = request_facts()
    facts.hook_instance = hook_instance
    facts.scenarios = sorted({r.scenario for r in records if r.scenario != SILENT})
    facts.cards = len(evaluation.response.cards)
    writer.submit(records)


def record_feedback_call(
    service_id: str, items: list[FeedbackItem], stored: int, flags: list[str | None]
) -> None:
    record_feedback(service_id, items, stored, flags)
    request_facts().feedback_items = len(items)
