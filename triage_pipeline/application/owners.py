"""Reading an owner (owners are created with their first key: `RegisterOwner` in `api_keys.py`)."""

from dataclasses import dataclass
from uuid import UUID

from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class GetOwnerQuery:
    owner_id: UUID


class GetOwner:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: GetOwnerQuery) -> Owner:
        """The owner; NotFound when there is none."""
        with self._uow() as uow:
            owner = uow.owners.get(command.owner_id)
        if owner is None:
            raise NotFound("owner", command.owner_id)
        return owner
