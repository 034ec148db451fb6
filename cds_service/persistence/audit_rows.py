"""The audit rows: one per evaluated draft order that produced a decision (`audit`), and one per card
shown for it (`audit_card`), through which feedback is tied back to its hook call and scenario."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from cds_service.persistence.feedback import link_to_audit
from cds_service.persistence.schema import audit, audit_card


@dataclass(frozen=True)
class AuditRecord:
    """One evaluated draft order: what was decided, and the cards shown for it."""

    hook_instance: str
    service_id: str
    scenario: str
    rating: str
    study_type: str
    hours_since_puncture: float | None
    latency_ms: float
    evaluated_at: datetime
    cards: tuple[tuple[str, str], ...]  # (card uuid, indicator)
    knowledge: str | None = None  # version+hash of the knowledge set
    # Go-live (SPEC §6): cards silent mode withheld for the order, the silent mode in force (`all`,
    # `none` or scenario codes; system actions withheld or not), and the mark of a replay-harness or
    # demo call (None: a real call).
    cards_withheld: int = 0
    silent_scenarios: str | None = None
    silent_system_actions: bool | None = None
    traffic: str | None = None


def insert_audit(connection: Connection, records: list[AuditRecord]) -> None:
    """Insert a batch of audit rows (one or many hook calls), and fill in the hookInstance, and
    clear the `unknown-card` flag, of feedback that arrived before them."""
    ids = connection.execute(
        audit.insert().returning(audit.c.id, sort_by_parameter_order=True),
        [
            {
                "hook_instance": record.hook_instance,
                "service_id": record.service_id,
                "scenario": record.scenario,
                "rating": record.rating,
                "study_type": record.study_type,
                "hours_since_puncture": record.hours_since_puncture,
                "latency_ms": record.latency_ms,
                "evaluated_at": record.evaluated_at.astimezone(UTC),
                "knowledge": record.knowledge,
                "cards_shown": len(record.cards),
                "cards_withheld": record.cards_withheld,
                "silent_scenarios": record.silent_scenarios,
                "silent_system_actions": record.silent_system_actions,
                "traffic": record.traffic,
            }
            for record in records
        ],
    ).scalars()
    cards = [
        {"card_uuid": uuid, "audit_id": audit_id, "indicator": indicator}
        for record, audit_id in zip(records, ids, strict=True)
        for uuid, indicator in record.cards
    ]
    if not cards:
        return
    connection.execute(audit_card.insert(), cards)
    link_to_audit(connection, [card["card_uuid"] for card in cards])
