"""The tables of the store, on one `MetaData`: feedback, the audit of each evaluated draft order and
the cards shown for it, and the token ids of the shared replay cache. Alembic owns how a database
comes to have them (`cds_service/persistence/migrations`); no patient identifier is stored."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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

# Token ids already used, for the shared replay cache (CDS_REPLAY_CACHE=database).
jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("token_key", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)
