"""Go-live (SPEC §6): on every audit row the cards shown and withheld by silent mode, the silent mode in
force and the mark of harness or demo traffic; the firing report's covering index (it replaces the
index on evaluated_at alone, which is its prefix); the vocabulary gaps and their sightings.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

REPORT_COLUMNS = [
    "evaluated_at",
    "traffic",
    "scenario",
    "knowledge",
    "hook_instance",
    "cards_shown",
    "cards_withheld",
]


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("cards_shown", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("cards_withheld", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("silent_scenarios", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("silent_system_actions", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("traffic", sa.String(16), nullable=True))
    # Rows written before: their cards were all shown.
    op.execute(
        "UPDATE audit SET cards_shown = "
        "(SELECT count(*) FROM audit_card WHERE audit_card.audit_id = audit.id)"
    )
    op.drop_index("ix_audit_evaluated_at", table_name="audit")
    op.create_index("ix_audit_report", "audit", REPORT_COLUMNS)

    op.create_table(
        "vocabulary_gap",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("knowledge", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("system", sa.String(256), nullable=False),
        sa.Column("term", sa.String(300), nullable=False),
        sa.Column("text", sa.String(300), nullable=False),
        sa.UniqueConstraint("knowledge", "kind", "system", "term", name="uq_vocabulary_gap"),
    )
    op.create_table(
        "vocabulary_gap_sighting",
        sa.Column(
            "gap_id",
            sa.Integer(),
            sa.ForeignKey("vocabulary_gap.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("hook_instance", sa.String(256), primary_key=True),
        sa.Column("patient_hash", sa.String(64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scenario", sa.String(64), nullable=True),
    )
    op.create_index("ix_vocabulary_gap_sighting_seen_at", "vocabulary_gap_sighting", ["seen_at"])
    op.create_table(
        "vocabulary_gap_salt",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("salt", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vocabulary_gap_salt")
    op.drop_index("ix_vocabulary_gap_sighting_seen_at", table_name="vocabulary_gap_sighting")
    op.drop_table("vocabulary_gap_sighting")
    op.drop_table("vocabulary_gap")
    op.drop_index("ix_audit_report", table_name="audit")
    op.create_index("ix_audit_evaluated_at", "audit", ["evaluated_at"])
    with op.batch_alter_table("audit") as batch:
        for column in (
            "traffic",
            "silent_system_actions",
            "silent_scenarios",
            "cards_withheld",
            "cards_shown",
        ):
            batch.drop_column(column)
