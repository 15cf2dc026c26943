"""Use cases on owners: create one, read one."""

from dataclasses import dataclass
from uuid import UUID, uuid4

from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class CreateOwnerCommand:
    """Create a tenant."""

    name: str


class CreateOwner:
    """Create an owner."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: CreateOwnerCommand) -> Owner:
        """Store and return the new owner."""
        now = self._clock.now()
        owner = Owner(id=uuid4(), name=command.name, created_at=now, updated_at=now)
        with self._uow() as uow:
            uow.owners.add(owner)
            uow.commit()
        return owner


@dataclass(frozen=True, slots=True)
class GetOwnerQuery:
    """Read one owner."""

    owner_id: UUID


class GetOwner:
    """Read an owner by id."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: GetOwnerQuery) -> Owner:
        """The owner; NotFound when there is none."""
        with self._uow() as uow:
            owner = uow.owners.get(command.owner_id)
        if owner is None:
            raise NotFound("owner", command.owner_id)
        return owner
