"""Use cases of ticket intake: one ticket, or many in one call with a result per item."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID, uuid4

from triage_pipeline.domain.ports import Clock, UnitOfWorkFactory
from triage_pipeline.domain.statuses import TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_job import TriageJob


@dataclass(frozen=True, slots=True)
class NewTicket:
    """What a client sends for one ticket (already validated for shape)."""

    owner_id: UUID
    external_id: str
    title: str
    description: str


def _new_ticket_and_job(item: NewTicket, clock: Clock) -> tuple[Ticket, TriageJob]:
    now = clock.now()
    ticket = Ticket(
        id=uuid4(),
        owner_id=item.owner_id,
        external_id=item.external_id,
        title=item.title,
        description=item.description,
        status=TicketStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    job = TriageJob(
        id=uuid4(), ticket_id=ticket.id, status=TriageJobStatus.PENDING, attempts=0, created_at=now, updated_at=now
    )
    return ticket, job


class CreateTicket:
    """Create a ticket and its PENDING triage job in one transaction."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: NewTicket) -> Ticket:
        """The new ticket; NotFound for an unknown owner, DuplicateTicket for a taken external id."""
        ticket, job = _new_ticket_and_job(command, self._clock)
        with self._uow() as uow:
            uow.tickets.add_with_job(ticket, job)
            uow.commit()
        return ticket


class ItemStatus(StrEnum):
    """Outcome of one item of a bulk intake."""

    CREATED = "CREATED"
    DUPLICATE = "DUPLICATE"
    UNKNOWN_OWNER = "UNKNOWN_OWNER"


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item's outcome, in request order."""

    status: ItemStatus
    owner_id: UUID
    external_id: str
    ticket_id: UUID | None


@dataclass(frozen=True, slots=True)
class CreateTicketsCommand:
    """Many tickets at once."""

    items: Sequence[NewTicket]


class CreateTickets:
    """Create many tickets with a constant number of statements; duplicates are reported, not raised."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: CreateTicketsCommand) -> list[ItemResult]:
        """One result per item, in order: CREATED, DUPLICATE (with the existing id) or UNKNOWN_OWNER."""
        pairs = [_new_ticket_and_job(item, self._clock) for item in command.items]
        with self._uow() as uow:
            known_owners = uow.owners.existing_ids([item.owner_id for item in command.items])
            first_of_key: dict[tuple[UUID, str], UUID] = {}
            to_insert: list[tuple[Ticket, TriageJob]] = []
            for ticket, job in pairs:
                key = (ticket.owner_id, ticket.external_id)
                if ticket.owner_id in known_owners and key not in first_of_key:
                    first_of_key[key] = ticket.id
                    to_insert.append((ticket, job))
            existing = uow.tickets.add_many_new([t for t, _ in to_insert])
            uow.jobs.add_many([j for t, j in to_insert if (t.owner_id, t.external_id) not in existing])
            uow.commit()

        results: list[ItemResult] = []
        for ticket, _ in pairs:
            key = (ticket.owner_id, ticket.external_id)
            if ticket.owner_id not in known_owners:
                results.append(ItemResult(ItemStatus.UNKNOWN_OWNER, ticket.owner_id, ticket.external_id, None))
            elif key in existing:
                results.append(ItemResult(ItemStatus.DUPLICATE, ticket.owner_id, ticket.external_id, existing[key]))
            elif first_of_key[key] == ticket.id:
                results.append(ItemResult(ItemStatus.CREATED, ticket.owner_id, ticket.external_id, ticket.id))
            else:
                results.append(ItemResult(ItemStatus.DUPLICATE, ticket.owner_id, ticket.external_id, first_of_key[key]))
        return results
