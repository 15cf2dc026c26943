"""How far each shipped example file has been imported into the shared bank: the reference of the last
example a start imported from it. A start then imports only what a newer release appended, and examples an
admin deleted stay deleted, even the last ones of the file (`SeedSharedExamples`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "example_seeds",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("last_reference", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("example_seeds")
