"""The store of feedback and audit rows (SQLAlchemy 2): embedded SQLite by default, PostgreSQL
(`postgresql+psycopg://...`) when several workers or replicas share it. `FeedbackStore` holds the
engines and their durability; the tables are in `schema`, bringing a database to them in
`migrations`, the writes in `feedback` and `audit_rows`. No patient identifier is stored anywhere."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.pool import StaticPool

from cds_service.persistence import migrations
from cds_service.persistence.audit_rows import AuditRecord, insert_audit
from cds_service.persistence.feedback import OfferedReasons, SavedFeedback, insert_feedback
from cds_service.persistence.gaps import PRUNE_EVERY, GapSighting, prune, save_sightings, store_salt
from cds_service.persistence.schema import audit, audit_card, feedback, metadata
from cds_service.wire import FeedbackItem

# The names callers have always imported from here.
__all__ = [
    "AuditRecord",
    "FeedbackStore",
    "OfferedReasons",
    "SavedFeedback",
    "audit",
    "audit_card",
    "feedback",
    "metadata",
]


class FeedbackStore:
    def __init__(
        self, url: str, *, gap_salt: str | None = None, gap_retention_days: int = 90
    ) -> None:
        self.url = url
        # Vocabulary gaps (persistence/gaps.py): the salt of the patient hash (None: the store's
        # own), how long sightings are kept, and when this process last deleted older ones.
        self.gap_salt = gap_salt
        self.gap_retention = timedelta(days=gap_retention_days)
        self._pruned_at: datetime | None = None
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
        """Bring the database to the latest revision (`migrations.upgrade`): the revision before
        (None for an empty database) and after."""
        self.prepare()
        return migrations.upgrade(self.engine)

    def schema_is_current(self) -> bool:
        return migrations.is_current(self.engine)

    # -- writes -------------------------------------------------------------------------------------

    def save(
        self, service_id: str, items: list[FeedbackItem], offered: OfferedReasons | None = None
    ) -> SavedFeedback:
        """Store every item in one transaction (`feedback.insert_feedback`)."""
        with self.engine.begin() as connection:
            return insert_feedback(connection, service_id, items, offered)

    def save_audit(self, records: Sequence[AuditRecord | GapSighting]) -> None:
        """Store a batch of audit rows (`audit_rows.insert_audit`) and vocabulary gap sightings
        (`gaps.save_sightings`) in one transaction; sightings older than the retention period are
        deleted at most once an hour (of the sightings' own clock)."""
        if not records:
            return
        rows = [r for r in records if isinstance(r, AuditRecord)]
        sightings = [r for r in records if isinstance(r, GapSighting)]
        salt = self._salt() if sightings else ""
        with self.audit_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            if rows:
                insert_audit(connection, rows)
            if sightings:
                save_sightings(connection, sightings, salt)
                latest = max(s.seen_at for s in sightings)
                if self._pruned_at is None or latest - self._pruned_at >= PRUNE_EVERY:
                    prune(connection, latest - self.gap_retention)
                    self._pruned_at = latest

    def _salt(self) -> str:
        """CDS_GAP_SALT, else the store's own (committed before any worker hashes with it)."""
        if self.gap_salt is None:
            with self.engine.begin() as connection:
                self.gap_salt = store_salt(connection)
        return self.gap_salt

    # -- reads --------------------------------------------------------------------------------------

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(feedback)).scalar_one())


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
