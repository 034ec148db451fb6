"""Durable store of feedback and audit records (SQLAlchemy 2): embedded SQLite by default, PostgreSQL
(`postgresql+psycopg://...`) when several workers or replicas share it. The schema belongs to Alembic
(`cds_service/persistence/migrations`); `FeedbackStore.migrate()` brings a database to head.

Each feedback item is one row. Re-sending the same item (same card, outcome and outcome timestamp) is
stored once, so an EHR that retries after a lost response never duplicates a clinician's answer.
Each evaluated draft order that produced a decision is one audit row, and each card shown for it one
`audit_card` row: feedback (which carries no hookInstance in CDS Hooks) is tied back to its hook call
and scenario through the card uuid. No patient identifier is stored anywhere."""

from __future__ import annotations

import fcntl
import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from cds_service.wire import FeedbackItem

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Serialises migrations of concurrently starting workers and replicas (any constant key will do).
PG_MIGRATION_LOCK = 0x0CD5_0005

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
    Column("hook_instance", String(256), nullable=True),  # from the audit row of the card, if known
    # Why the item is kept out of the analytics: unknown-card, other-service, reason-not-offered.
    Column("flag", String(32), nullable=True),
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_item"),
    Index("ix_feedback_outcome_timestamp", "outcome_timestamp"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hook_instance", String(256), nullable=False),
    Column("service_id", String(128), nullable=False),
    Column("scenario", String(64), nullable=False),
    Column("rating", String(32), nullable=False),
    Column("study_type", String(64), nullable=False),
    Column("hours_since_puncture", Float, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("evaluated_at", DateTime(timezone=True), nullable=False),
    Column("knowledge", String(64), nullable=True),  # version+hash of the rules that decided
    Index("ix_audit_evaluated_at", "evaluated_at"),
    Index("ix_audit_hook_instance", "hook_instance"),
)

audit_card = Table(
    "audit_card",
    metadata,
    Column("card_uuid", String(256), primary_key=True),
    Column("audit_id", Integer, ForeignKey("audit.id", ondelete="CASCADE"), nullable=False),
    Column("indicator", String(16), nullable=False),
    Index("ix_audit_card_audit_id", "audit_id"),
)


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


class SavedFeedback(NamedTuple):
    stored: int  # items stored as new rows (a resubmitted item is stored once)
    flags: list[str | None]  # per item, why it is kept out of the analytics; None when sound


class FeedbackStore:
    def __init__(self, url: str) -> None:
        self.url = url
        if url == "sqlite://" or (url.startswith("sqlite://") and ":memory:" in url):
            # One shared connection, or every pooled thread would see its own empty database.
            self.engine: Engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        # Audit rows are written after every hook call: they do not wait for the disk. On SQLite a
        # connection of their own commits without fsync (WAL, synchronous=NORMAL); the next
        # feedback commit (synchronous=FULL) makes them durable too. On PostgreSQL each audit
        # transaction is an asynchronous commit (synchronous_commit off). Feedback, which must
        # never be lost once acknowledged, keeps full durability.
        self.audit_engine = self.engine
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if self.engine.pool.__class__ is not StaticPool:
                self.audit_engine = create_engine(url)
                event.listen(self.audit_engine, "connect", _sqlite_audit_pragmas)

    # -- schema -------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the folder of a SQLite file (at start-up, not when the store object is built)."""
        if self.url.startswith("sqlite:///") and ":memory:" not in self.url:
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def migrate(self) -> tuple[str | None, str]:
        """`alembic upgrade head`, safe to run from every worker at once: PostgreSQL serialises it with
        an advisory lock, SQLite with a lock file beside the database. Returns the revision before
        (None for an empty database) and after."""
        self.prepare()
        with self._migration_lock(), self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
            config = alembic_config(connection)
            tables = set(inspect(connection).get_table_names())
            before = None
            if "alembic_version" in tables:
                before = connection.execute(
                    text("SELECT version_num FROM alembic_version")
                ).scalar()
            elif "feedback" in tables:
                command.stamp(config, "0001")  # created by create_all before Alembic came in
                before = "0001"
            command.upgrade(config, "head")
        return (str(before) if before is not None else None), str(_head_revision())

    def create_schema(self) -> None:
        """Kept for callers written before Alembic: the same as `migrate()`."""
        self.migrate()

    def schema_is_current(self) -> bool:
        """True when the database is at the latest revision (false too when it was never migrated)."""
        head = _head_revision()
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return False
            versions = connection.execute(text("SELECT version_num FROM alembic_version"))
            return [row[0] for row in versions] == [head]

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:":
            yield
            return
        with Path(f"{database}.migrate-lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- writes -------------------------------------------------------------------------------------

    def save(
        self, service_id: str, items: list[FeedbackItem], offered: OfferedReasons | None = None
    ) -> SavedFeedback:
        """Store every item in one transaction, flagged ones too (nothing a clinician sends is lost).

        An item is flagged (SPEC §4) when it names a card this service never issued
        (`unknown-card`), another service's card (`other-service`), or an override reason the card
        did not offer (`reason-not-offered`; `offered` gives the reasons a scenario's cards offer,
        None accepts any)."""
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
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
                    "user_comment": item.overrideReason.userComment
                    if item.overrideReason
                    else None,
                    "outcome_timestamp": item.outcomeTimestamp.astimezone(UTC),
                    "received_at": now,
                    "hook_instance": origins[item.card][2] if item.card in origins else None,
                    "flag": flag,
                }
                for item, flag in zip(items, flags, strict=True)
            ]
            insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(
                feedback
            )
            statement = insert.on_conflict_do_nothing(
                index_elements=["card_uuid", "outcome", "outcome_timestamp"]
            ).returning(feedback.c.id)
            # RETURNING names only the rows inserted; rowcount of a multi-row insert is unreliable
            # across drivers (psycopg reports 0 for executemany).
            inserted = len(connection.execute(statement, rows).all())
            # The audit row of a card not found above may have committed after `origins` looked for
            # it and before this insert, so its own UPDATE found nothing: link those here.
            unknown = [
                item.card for item, flag in zip(items, flags, strict=True) if flag == "unknown-card"
            ]
            if unknown:
                _link_to_audit(connection, unknown)
            return SavedFeedback(inserted, flags)

    def save_audit(self, records: list[AuditRecord]) -> None:
        """Store a batch of audit rows (one or many hook calls) in one transaction, and fill in the
        hookInstance, and clear the `unknown-card` flag, of feedback that arrived before them."""
        if not records:
            return
        with self.audit_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
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
            _link_to_audit(connection, [card["card_uuid"] for card in cards])

    # -- reads --------------------------------------------------------------------------------------

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(feedback)).scalar_one())

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            connection.execute(select(1))
        return True

    @property
    def _dialect(self) -> str:
        return self.engine.dialect.name


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations; with `connection`, migrations
    run on it (inside the caller's transaction) instead of opening their own."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


OfferedReasons = Callable[[str], frozenset[tuple[str | None, str | None]]]


def _card_origins(connection: Connection, card_uuids: set[str]) -> dict[str, tuple[str, str, str]]:
    """(service id, scenario, hookInstance) of each card this service issued, from the audit rows."""
    rows = connection.execute(
        select(audit_card.c.card_uuid, audit.c.service_id, audit.c.scenario, audit.c.hook_instance)
        .join(audit, audit.c.id == audit_card.c.audit_id)
        .where(audit_card.c.card_uuid.in_(card_uuids))
    )
    return {row.card_uuid: (row.service_id, row.scenario, row.hook_instance) for row in rows}


def _link_to_audit(connection: Connection, card_uuids: list[str]) -> None:
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


def _sqlite_audit_pragmas(dbapi_connection: object, record: object) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
