"""Labelled examples (pg_trgm similarity search), review status of answers, few-shot and review options of
prompt versions, and what an attempt was shown and how its confidence was computed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # pg_trgm is a trusted extension: a database owner without superuser rights may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "triage_examples",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("sentiment", sa.String(16), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("correction_id", sa.Uuid(), nullable=True),
        sa.Column("reference", sa.String(500), nullable=False, server_default=""),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("text_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_triage_examples"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["owners.id"], name="fk_triage_examples_owner_id_owners", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_triage_examples_ticket_id_tickets", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["correction_id"],
            ["triage_corrections.id"],
            name="fk_triage_examples_correction_id_triage_corrections",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("source IN ('correction','import')", name="ck_triage_examples_source"),
        sa.CheckConstraint("priority IN ('low','normal','high','urgent')", name="ck_triage_examples_priority"),
    )
    # A trigram GiST signature of 512 bytes (the default is 12): the search texts are up to 500 characters,
    # and with short signatures nearly every page matches, so a kNN scan reads most of the index.
    op.create_index(
        "ix_triage_examples_search",
        "triage_examples",
        ["search_text"],
        postgresql_using="gist",
        postgresql_ops={"search_text": "gist_trgm_ops(siglen=512)"},
    )
    op.create_index("ix_triage_examples_owner_created", "triage_examples", ["owner_id", "created_at", "id"])
    # One imported example per text per bank (the shared bank is owner NULL: NULLS NOT DISTINCT), so two
    # imports at once cannot both add it; corrections are one per ticket instead.
    op.create_index(
        "uq_triage_examples_owner_text",
        "triage_examples",
        ["owner_id", "text_key"],
        unique=True,
        postgresql_where=sa.text("ticket_id IS NULL"),
        postgresql_nulls_not_distinct=True,
    )
    op.create_index(
        "uq_triage_examples_ticket",
        "triage_examples",
        ["ticket_id"],
        unique=True,
        postgresql_where=sa.text("ticket_id IS NOT NULL"),
    )

    op.add_column("tickets", sa.Column("review_status", sa.String(16), nullable=True))
    op.create_check_constraint(
        "ck_tickets_review_status",
        "tickets",
        "review_status IN ('NEEDS_REVIEW','AUTO_APPLIED','REVIEWED')",
    )
    op.create_index("ix_tickets_review_created", "tickets", ["review_status", "created_at", "id"])

    # JSONB, not uuid[]: the triage loop inserts many logs through unnest(), which cannot take an array per row.
    op.add_column("triage_job_logs", sa.Column("example_ids", postgresql.JSONB(), nullable=True))
    op.add_column("triage_job_logs", sa.Column("confidence", postgresql.JSONB(), nullable=True))

    op.add_column("prompts", sa.Column("few_shot_k", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("prompts", sa.Column("review_threshold", sa.Float(), nullable=False, server_default="0"))
    op.create_check_constraint("ck_prompts_few_shot_k", "prompts", "few_shot_k BETWEEN 0 AND 20")
    op.create_check_constraint("ck_prompts_review_threshold", "prompts", "review_threshold BETWEEN 0 AND 1")

    op.add_column(
        "prompt_activations", sa.Column("forced", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("prompt_activations", sa.Column("gate", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("prompt_activations", "gate")
    op.drop_column("prompt_activations", "forced")
    op.drop_constraint("ck_prompts_review_threshold", "prompts", type_="check")
    op.drop_constraint("ck_prompts_few_shot_k", "prompts", type_="check")
    op.drop_column("prompts", "review_threshold")
    op.drop_column("prompts", "few_shot_k")
    op.drop_column("triage_job_logs", "confidence")
    op.drop_column("triage_job_logs", "example_ids")
    op.drop_index("ix_tickets_review_created", table_name="tickets")
    op.drop_constraint("ck_tickets_review_status", "tickets", type_="check")
    op.drop_column("tickets", "review_status")
    op.drop_table("triage_examples")
