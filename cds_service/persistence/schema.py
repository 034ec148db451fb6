"""The tables of the store, on one `MetaData`: feedback, the audit of each evaluated draft order and
the cards shown for it, and the token ids of the shared replay cache. Alembic owns how a database
comes to have them (`cds_service/persistence/migrations`); no patient identifier is stored."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
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
    # Go-live (SPEC §6): the cards returned for the order and those silent mode withheld, the silent
    # mode in force (`all`, `none` or scenario codes; whether system actions were withheld), and the
    # mark of a replay-harness or demo call (NULL: a real one), kept out of every report.
    Column("cards_shown", Integer, nullable=False, server_default="0"),
    Column("cards_withheld", Integer, nullable=False, server_default="0"),
    Column("silent_scenarios", String(1024), nullable=True),
    Column("silent_system_actions", Boolean, nullable=True),
    Column("traffic", String(16), nullable=True),
    # The firing report's covering index: a window of evaluated_at, read without the table.
    Index(
        "ix_audit_report",
        "evaluated_at",
        "traffic",
        "scenario",
        "knowledge",
        "hook_instance",
        "cards_shown",
        "cards_withheld",
    ),
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

# Vocabulary gaps (SPEC §6, cds_service/persistence/gaps.py): what the service met and could not read
# (an imaging-looking order name or code, a word), one row each per knowledge folder, and the hook
# calls it was met in, with a salted hash of the patient id (never the id), kept for a retention
# period. Shown only once met for enough distinct patients.
vocabulary_gap = Table(
    "vocabulary_gap",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("knowledge", String(128), nullable=False),  # the folder, hooks/<knowledge>/
    Column("kind", String(16), nullable=False),  # order-name, order-code, word, reason-code
    Column("system", String(256), nullable=False),  # a code's system; "" for names and words
    Column("term", String(300), nullable=False),
    Column("text", String(300), nullable=False),
    UniqueConstraint("knowledge", "kind", "system", "term", name="uq_vocabulary_gap"),
)

gap_sighting = Table(
    "vocabulary_gap_sighting",
    metadata,
    Column(
        "gap_id",
        Integer,
        ForeignKey("vocabulary_gap.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("hook_instance", String(256), primary_key=True),
    Column("patient_hash", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("scenario", String(64), nullable=True),
    Index("ix_vocabulary_gap_sighting_seen_at", "seen_at"),
)

# The salt of the patient hash when CDS_GAP_SALT is not set: made at random on first use.
gap_salt = Table(
    "vocabulary_gap_salt",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("salt", String(128), nullable=False),
)
