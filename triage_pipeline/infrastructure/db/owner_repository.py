"""Owners in table `owners`."""

from collections.abc import Sequence
from typing import cast
from uuid import UUID

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.owner import Owner
from triage_pipeline.infrastructure.db.mappers import owner_from_row
from triage_pipeline.infrastructure.db.models import OwnerRow

_OWNERS = cast(Table, OwnerRow.__table__)
# Read on every intake request: a Core statement built once.
_GET_OWNER = select(_OWNERS).where(_OWNERS.c.id == bindparam("id"))


class SqlOwnerRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, owner: Owner) -> None:
        self._session.execute(
            insert(OwnerRow).values(
                id=owner.id, name=owner.name, created_at=owner.created_at, updated_at=owner.updated_at
            )
        )

    def get(self, owner_id: UUID) -> Owner | None:
        row = self._session.connection().execute(_GET_OWNER, {"id": owner_id}).one_or_none()
        return owner_from_row(cast(OwnerRow, row)) if row else None

    def existing_ids(self, owner_ids: Sequence[UUID]) -> set[UUID]:
        if not owner_ids:
            return set()
        return set(self._session.scalars(select(OwnerRow.id).where(OwnerRow.id.in_(set(owner_ids)))))
