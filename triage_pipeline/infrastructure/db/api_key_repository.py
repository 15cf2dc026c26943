"""SQLAlchemy repository of API keys (table `api_keys`)."""

from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.api_key import ApiKey
from triage_pipeline.infrastructure.db.mappers import api_key_from_row
from triage_pipeline.infrastructure.db.models import ApiKeyRow


class SqlApiKeyRepository:
    """API keys; the secret itself is never stored, only its salted HMAC."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, key: ApiKey) -> None:
        self._session.execute(
            insert(ApiKeyRow).values(
                id=key.id,
                lookup=key.lookup,
                salt=key.salt,
                secret_hash=key.secret_hash,
                role=key.role.value,
                owner_id=key.owner_id,
                name=key.name,
                revoked_at=key.revoked_at,
                created_at=key.created_at,
                updated_at=key.updated_at,
            )
        )

    def get(self, key_id: UUID) -> ApiKey | None:
        row = self._session.get(ApiKeyRow, key_id, populate_existing=True)
        return api_key_from_row(row) if row else None

    def by_lookup(self, lookup: str) -> ApiKey | None:
        row = self._session.scalars(select(ApiKeyRow).where(ApiKeyRow.lookup == lookup)).one_or_none()
        return api_key_from_row(row) if row else None

    def update(self, key: ApiKey) -> None:
        """Save a changed key (its name and revocation; the hash never changes)."""
        self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key.id)
            .values(name=key.name, revoked_at=key.revoked_at, updated_at=key.updated_at)
        )
