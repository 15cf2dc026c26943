"""Quality: evaluation runs per prompt version, human corrections, prompt activation audit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamps() -> list[sa.Column[sa.DateTime]]:
    """created_at / updated_at, timestamptz, defaulting to now()."""
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "evaluation_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prompt_id", sa.Uuid(), nullable=False),
        sa.Column("prompt_name", sa.String(100), nullable=False),
        sa.Column("prompt_version", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(500), nullable=False),
        sa.Column("dataset_sha256", sa.String(64), nullable=False),
        sa.Column("report", postgresql.JSONB(), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_evaluation_runs"),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name="fk_evaluation_runs_prompt_id_prompts", ondelete="RESTRICT"
        ),
    )
    op.create_index("ix_evaluation_runs_prompt", "evaluation_runs", ["prompt_name", "prompt_version", "created_at"])

    op.create_table(
        "triage_corrections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("model_category", sa.String(64), nullable=True),
        sa.Column("model_priority", sa.String(16), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("corrected_by", sa.String(200), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_triage_corrections"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_triage_corrections_ticket_id_tickets", ondelete="CASCADE"
        ),
        sa.CheckConstraint("priority IN ('low','normal','high','urgent')", name="ck_triage_corrections_priority"),
    )
    op.create_index("ix_triage_corrections_ticket", "triage_corrections", ["ticket_id", "created_at"])

    op.create_table(
        "prompt_activations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prompt_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("activated_by", sa.String(200), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_activations"),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name="fk_prompt_activations_prompt_id_prompts", ondelete="RESTRICT"
        ),
    )


def downgrade() -> None:
    op.drop_table("prompt_activations")
    op.drop_table("triage_corrections")
    op.drop_table("evaluation_runs")
