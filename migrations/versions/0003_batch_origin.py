"""Record who created each batch, so exactly one launcher processes it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("triage_job_batches", sa.Column("origin", sa.String(32), server_default="api", nullable=False))
    op.create_check_constraint(
        "ck_triage_job_batches_origin", "triage_job_batches", "origin IN ('api','schedule','backlog_sensor','run')"
    )


def downgrade() -> None:
    op.drop_constraint("ck_triage_job_batches_origin", "triage_job_batches", type_="check")
    op.drop_column("triage_job_batches", "origin")
