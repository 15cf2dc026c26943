"""The Dagster steps' outputs of the triage job, when its steps run on several machines.

With the Celery and Kubernetes executors a step may run on another machine than the step it reads from, so
outputs cannot stay on one machine's disk (Dagster's default `fs_io_manager`). They are small JSON values
(a batch summary, a chunk's job ids, a chunk's counts), kept here by `defs.io_manager`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_step_outputs",
        sa.Column("key", sa.String(1000), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("value", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_pipeline_step_outputs_created", "pipeline_step_outputs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_step_outputs_created", table_name="pipeline_step_outputs")
    op.drop_table("pipeline_step_outputs")
