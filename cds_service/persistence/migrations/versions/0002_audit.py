"""Audit rows per evaluated draft order, their cards, and the hookInstance of feedback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hook_instance", sa.String(256), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("scenario", sa.String(64), nullable=False),
        sa.Column("rating", sa.String(32), nullable=False),
        sa.Column("study_type", sa.String(64), nullable=False),
        sa.Column("hours_since_puncture", sa.Float, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_audit_evaluated_at", "audit", ["evaluated_at"])
    op.create_index("ix_audit_hook_instance", "audit", ["hook_instance"])
    op.create_table(
        "audit_card",
        sa.Column("card_uuid", sa.String(256), primary_key=True),
        sa.Column(
            "audit_id",
            sa.Integer,
            sa.ForeignKey("audit.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("indicator", sa.String(16), nullable=False),
    )
    op.create_index("ix_audit_card_audit_id", "audit_card", ["audit_id"])
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("hook_instance", sa.String(256), nullable=True))
    op.create_index("ix_feedback_outcome_timestamp", "feedback", ["outcome_timestamp"])


def downgrade() -> None:
    op.drop_index("ix_feedback_outcome_timestamp", "feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("hook_instance")
    op.drop_table("audit_card")
    op.drop_table("audit")
