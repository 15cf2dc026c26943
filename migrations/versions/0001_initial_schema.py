"""Initial schema: owners, tickets, triage jobs, batches, prompts, attempt logs; default owner.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_OWNER_ID = "00000000-0000-0000-0000-000000000000"


def timestamps() -> list[sa.Column[sa.DateTime]]:
    """created_at / updated_at, timestamptz, defaulting to now()."""
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_owners"),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("priority", sa.String(16), nullable=True),
        sa.Column("triage_result", postgresql.JSONB(), nullable=True),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_tickets_owner_id_owners", ondelete="RESTRICT"),
        sa.UniqueConstraint("owner_id", "external_id", name="uq_tickets_owner_external_id"),
        sa.CheckConstraint("status IN ('PENDING','ON_TRIAGE','COMPLETED','FAILED')", name="ck_tickets_status"),
    )
    op.create_index("ix_tickets_owner_created", "tickets", ["owner_id", "created_at", "id"])
    op.create_index("ix_tickets_status_created", "tickets", ["status", "created_at", "id"])
    op.create_index("ix_tickets_created", "tickets", ["created_at", "id"])

    op.create_table(
        "triage_job_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_items", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_triage_job_batches"),
        sa.CheckConstraint("status IN ('RUNNING','DONE')", name="ck_triage_job_batches_status"),
    )
    op.create_index(
        "ix_triage_job_batches_running",
        "triage_job_batches",
        ["created_at"],
        postgresql_where=sa.text("status = 'RUNNING'"),
    )

    op.create_table(
        "triage_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_triage_jobs"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_triage_jobs_ticket_id_tickets", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["triage_job_batches.id"], name="fk_triage_jobs_batch_id_triage_job_batches",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("status IN ('PENDING','RUNNING','DONE','FAILED')", name="ck_triage_jobs_status"),
        sa.CheckConstraint("attempts >= 0 AND attempts <= 3", name="ck_triage_jobs_attempts"),
    )
    op.create_index(
        "ix_triage_jobs_eligible",
        "triage_jobs",
        ["created_at"],
        postgresql_where=sa.text("batch_id IS NULL AND (status = 'PENDING' OR (status = 'FAILED' AND attempts < 3))"),
    )
    op.create_index(
        "ix_triage_jobs_running", "triage_jobs", ["started_at"], postgresql_where=sa.text("status = 'RUNNING'")
    )
    op.create_index("ix_triage_jobs_ticket", "triage_jobs", ["ticket_id"])
    op.create_index("ix_triage_jobs_batch", "triage_jobs", ["batch_id"])

    op.create_table(
        "triage_job_batch_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_triage_job_batch_items"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["triage_job_batches.id"],
            name="fk_triage_job_batch_items_batch_id_triage_job_batches", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["triage_jobs.id"], name="fk_triage_job_batch_items_job_id_triage_jobs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("batch_id", "job_id", name="uq_triage_job_batch_items_batch_job"),
        sa.CheckConstraint(
            "status IN ('PENDING','RUNNING','DONE','FAILED')", name="ck_triage_job_batch_items_status"
        ),
    )
    op.create_index("ix_triage_job_batch_items_job", "triage_job_batch_items", ["job_id"])

    op.create_table(
        "prompts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("system_text", sa.Text(), nullable=False),
        sa.Column("user_template", sa.Text(), nullable=False),
        sa.Column("output_schema", postgresql.JSONB(), nullable=False),
        sa.Column("model_options", postgresql.JSONB(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_prompts"),
        sa.UniqueConstraint("name", "version", name="uq_prompts_name_version"),
        sa.CheckConstraint("version >= 1", name="ck_prompts_version"),
    )
    op.create_index("uq_prompts_one_active", "prompts", ["name"], unique=True, postgresql_where=sa.text("is_active"))

    op.create_table(
        "triage_job_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("prompt_id", sa.Uuid(), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("raw_output", sa.Text(), nullable=True),
        sa.Column("answer", postgresql.JSONB(), nullable=True),
        sa.Column("error_class", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_triage_job_logs"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["triage_jobs.id"], name="fk_triage_job_logs_job_id_triage_jobs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_triage_job_logs_ticket_id_tickets", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["triage_job_batches.id"],
            name="fk_triage_job_logs_batch_id_triage_job_batches", ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name="fk_triage_job_logs_prompt_id_prompts", ondelete="RESTRICT"
        ),
        sa.CheckConstraint("outcome IN ('SUCCEEDED','FAILED')", name="ck_triage_job_logs_outcome"),
    )
    op.create_index("ix_triage_job_logs_ticket", "triage_job_logs", ["ticket_id", "started_at"])
    op.create_index("ix_triage_job_logs_batch", "triage_job_logs", ["batch_id"])
    op.create_index("ix_triage_job_logs_job", "triage_job_logs", ["job_id"])

    op.execute(
        sa.text("INSERT INTO owners (id, name) VALUES (CAST(:id AS uuid), 'default')").bindparams(id=DEFAULT_OWNER_ID)
    )


def downgrade() -> None:
    for table in (
        "triage_job_logs",
        "prompts",
        "triage_job_batch_items",
        "triage_jobs",
        "triage_job_batches",
        "tickets",
        "owners",
    ):
        op.drop_table(table)
