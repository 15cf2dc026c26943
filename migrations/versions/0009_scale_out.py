"""Scale-out: the LLM host of each attempt, and the heartbeat of the worker running a job.

`triage_job_logs.llm_host` records which LLM host a call went to (several hosts share the load).
`triage_jobs.heartbeat_at` is renewed by the worker running the attempt, so the recovery finds the
jobs of a dead worker within the heartbeat timeout instead of the whole JOB_LEASE_S.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("triage_job_logs", sa.Column("llm_host", sa.String(300), nullable=True))
    op.add_column("triage_jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("triage_jobs", "heartbeat_at")
    op.drop_column("triage_job_logs", "llm_host")
