"""Durable feedback store (SQLAlchemy 2): embedded SQLite by default, any SQLAlchemy URL otherwise.

Each feedback item is one row. Re-sending the same item (same card, outcome and outcome timestamp) is
stored once, so an EHR that retries after a lost response never duplicates a clinician's answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from cds_service.wire import FeedbackItem

metadata = MetaData()

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(128), nullable=False),
    Column("card_uuid", String(256), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", Text, nullable=True),  # JSON list of suggestion uuids
    Column("override_reason_system", String(256), nullable=True),
    Column("override_reason_code", String(256), nullable=True),
    Column("override_reason_display", Text, nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("outcome_timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_item"),
)


class FeedbackStore:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def save(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Store every item in one transaction; returns how many were new."""
        now = datetime.now(UTC)
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
                "received_at": now,
            }
            for item in items
        ]
        dialect = self.engine.dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(feedback)
        statement = insert.on_conflict_do_nothing(
            index_elements=["card_uuid", "outcome", "outcome_timestamp"]
        )
        with self.engine.begin() as connection:
            result = connection.execute(statement, rows)
        return max(result.rowcount, 0) if result.rowcount is not None else len(rows)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(feedback)).scalar_one())

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            connection.execute(select(1))
        return True


def _reason(item: FeedbackItem, attribute: str) -> str | None:
    if item.overrideReason is None or item.overrideReason.reason is None:
        return None
    value = getattr(item.overrideReason.reason, attribute)
    return str(value) if value is not None else None


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
