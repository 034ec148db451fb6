"""Storing the feedback items an EHR sends, each one row. Re-sending the same item (same card,
outcome and outcome timestamp) is stored once, so an EHR that retries after a lost response never
duplicates a clinician's answer. Feedback carries no hookInstance in CDS Hooks: it is tied back to
its hook call and scenario through the card uuid of the audit rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cds_service.persistence.schema import audit, audit_card, feedback
from cds_service.wire import FeedbackItem

OfferedReasons = Callable[[str], frozenset[tuple[str | None, str | None]]]


class SavedFeedback(NamedTuple):
    stored: int  # items stored as new rows (a resubmitted item is stored once)
    flags: list[str | None]  # per item, why it is kept out of the analytics; None when sound


def insert_feedback(
    connection: Connection,
    service_id: str,
    items: list[FeedbackItem],
    offered: OfferedReasons | None,
) -> SavedFeedback:
    """Insert every item, flagged ones too (nothing a clinician sends is lost).

    An item is flagged (SPEC §4) when it names a card this service never issued (`unknown-card`),
    another service's card (`other-service`), or an override reason the card did not offer
    (`reason-not-offered`; `offered` gives the reasons a scenario's cards offer, None accepts
    any)."""
    received_at = datetime.now(UTC)
    origins = _card_origins(connection, {item.card for item in items})
    flags = [_flag(item, origins.get(item.card), service_id, offered) for item in items]
    rows = [
        {
            "service_id": service_id,
            "card_uuid": item.card,
            "outcome": item.outcome,
            "accepted_suggestions": json.dumps([s.id for s in item.acceptedSuggestions])
            if item.acceptedSuggestions
            else None,
            "override_reason_system": _reason(item, "system"),
            "override_reason_code": _reason(item, "code"),
            "override_reason_display": _reason(item, "display"),
            "user_comment": item.overrideReason.userComment if item.overrideReason else None,
            "outcome_timestamp": item.outcomeTimestamp.astimezone(UTC),
            "received_at": received_at,
            "hook_instance": origins[item.card][2] if item.card in origins else None,
            "flag": flag,
        }
        for item, flag in zip(items, flags, strict=True)
    ]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(feedback)
        .on_conflict_do_nothing(index_elements=["card_uuid", "outcome", "outcome_timestamp"])
        .returning(feedback.c.id)
    )
    # RETURNING names only the rows inserted; rowcount of a multi-row insert is unreliable across
    # drivers (psycopg reports 0 for executemany).
    inserted = len(connection.execute(statement, rows).all())
    # The audit row of a card not found above may have committed after `origins` looked for it and
    # before this insert, so its own UPDATE found nothing: link those here.
    unknown = [item.card for item, flag in zip(items, flags, strict=True) if flag == "unknown-card"]
    if unknown:
        link_to_audit(connection, unknown)
    return SavedFeedback(inserted, flags)


def link_to_audit(connection: Connection, card_uuids: list[str]) -> None:
    """Fill in the hookInstance of feedback on these cards from their audit rows, and clear the
    `unknown-card` flag of feedback that arrived before its card's audit row."""
    issued_by = (
        select(audit.c.hook_instance)
        .join(audit_card, audit.c.id == audit_card.c.audit_id)
        .where(audit_card.c.card_uuid == feedback.c.card_uuid)
    )
    connection.execute(
        update(feedback)
        .where(feedback.c.card_uuid.in_(card_uuids))
        .where(feedback.c.hook_instance.is_(None))
        .values(hook_instance=issued_by.scalar_subquery())
    )
    connection.execute(
        update(feedback)
        .where(feedback.c.card_uuid.in_(card_uuids))
        .where(feedback.c.flag == "unknown-card")
        .where(issued_by.where(audit.c.service_id == feedback.c.service_id).exists())
        .values(flag=None)
    )


def _card_origins(connection: Connection, card_uuids: set[str]) -> dict[str, tuple[str, str, str]]:
    """(service id, scenario, hookInstance) of each card this service issued, from the audit rows."""
    rows = connection.execute(
        select(audit_card.c.card_uuid, audit.c.service_id, audit.c.scenario, audit.c.hook_instance)
        .join(audit, audit.c.id == audit_card.c.audit_id)
        .where(audit_card.c.card_uuid.in_(card_uuids))
    )
    return {row.card_uuid: (row.service_id, row.scenario, row.hook_instance) for row in rows}


def _flag(
    item: FeedbackItem,
    origin: tuple[str, str, str] | None,
    service_id: str,
    offered: OfferedReasons | None,
) -> str | None:
    if origin is None:
        return "unknown-card"
    if origin[0] != service_id:
        return "other-service"
    reason = (_reason(item, "system"), _reason(item, "code"))
    if offered is not None and reason[1] is not None and reason not in offered(origin[1]):
        return "reason-not-offered"
    return None


def _reason(item: FeedbackItem, attribute: str) -> str | None:
    if item.overrideReason is None or item.overrideReason.reason is None:
        return None
    value = getattr(item.overrideReason.reason, attribute)
    return str(value) if value is not None else None
