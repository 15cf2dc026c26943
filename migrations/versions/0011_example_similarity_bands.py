"""MinHash bands on every example, with a GIN index (`intarray`'s `gin__int_ops`, whose `&` and `icount`
rank candidates by the bands they share): a large bank takes a ticket's candidates by the bands
it shares with them, then ranks those by trigram similarity (`domain.similarity_bands`).

The GiST trigram kNN alone reads many index pages when a ticket's nearest examples are far apart: p95 112 ms
at 100,000 examples (README, Performance). Existing rows get their bands here from the function new rows
use (imported, unlike 0007's prompt text, because the two must agree; a change to it comes with a migration
that recomputes them).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from triage_pipeline.domain.similarity_bands import similarity_bands
from triage_pipeline.infrastructure.db.example_backfill import fill_example_column

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # intarray ships with the contrib modules (the embedded server has it) and, like pg_trgm, is a trusted
    # extension: a database owner without superuser rights may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS intarray")
    op.add_column(
        "triage_examples",
        sa.Column("similarity_bands", postgresql.ARRAY(sa.Integer()), nullable=False, server_default="{}"),
    )
    fill_example_column(
        "similarity_bands",
        ["search_text"],
        lambda row: "{" + ",".join(map(str, similarity_bands(row.search_text))) + "}",
        "integer[]",
    )
    op.create_index(
        "ix_triage_examples_bands",
        "triage_examples",
        ["similarity_bands"],
        postgresql_using="gin",
        postgresql_ops={"similarity_bands": "gin__int_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_triage_examples_bands", table_name="triage_examples")
    op.drop_column("triage_examples", "similarity_bands")
