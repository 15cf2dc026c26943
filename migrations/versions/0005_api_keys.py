"""API keys: admin keys and per-owner keys, stored as a lookup handle and a salted HMAC of the secret.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lookup", sa.String(32), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("lookup", name="uq_api_keys_lookup"),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_api_keys_owner_id_owners", ondelete="CASCADE"),
        sa.CheckConstraint("role IN ('admin','owner')", name="ck_api_keys_role"),
        sa.CheckConstraint(
            "(role = 'owner' AND owner_id IS NOT NULL) OR (role = 'admin' AND owner_id IS NULL)",
            name="ck_api_keys_role_owner",
        ),
    )
    op.create_index("ix_api_keys_owner", "api_keys", ["owner_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
