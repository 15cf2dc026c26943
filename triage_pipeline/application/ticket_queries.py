"""Read use cases on tickets: one ticket with its triage state, a filtered page, the audit trail."""

from dataclasses import dataclass
from uuid import UUID

from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.ports import TicketPage, UnitOfWorkFactory
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.domain.triage_job_log import TriageJobLog

MAX_PAGE_SIZE = 200


@dataclass(frozen=True, slots=True)
class GetTicketQuery:
    """Read one ticket; with `visible_to`, a ticket of another owner is reported as not found."""

    ticket_id: UUID
    visible_to: UUID | None = None


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket with its latest triage job."""

    ticket: Ticket
    job: TriageJob | None


class GetTicket:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: GetTicketQuery) -> TicketView:
        """The view; NotFound for an unknown ticket."""
        with self._uow() as uow:
            ticket = uow.tickets.get(command.ticket_id)
            if ticket is None or not _visible(ticket, command.visible_to):
                raise NotFound("ticket", command.ticket_id)
            return TicketView(ticket=ticket, job=uow.jobs.latest_for_ticket(ticket.id))


@dataclass(frozen=True, slots=True)
class ListTicketsQuery:
    """Filter and page through tickets, newest first."""

    status: TicketStatus | None = None
    owner_id: UUID | None = None
    limit: int = 50
    cursor: str | None = None
    review_status: ReviewStatus | None = None


class ListTickets:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: ListTicketsQuery) -> TicketPage:
        """The page and the next cursor; InvalidCursor for a cursor we did not issue."""
        if not 1 <= command.limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        with self._uow() as uow:
            return uow.tickets.list(
                status=command.status,
                owner_id=command.owner_id,
                limit=command.limit,
                cursor=command.cursor,
                review_status=command.review_status,
            )


@dataclass(frozen=True, slots=True)
class TicketLogsQuery:
    """Read a ticket's attempts; with `visible_to`, a ticket of another owner is reported as not found."""

    ticket_id: UUID
    visible_to: UUID | None = None


class GetTicketLogs:
    """The audit trail of a ticket: one row per attempt."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: TicketLogsQuery) -> list[TriageJobLog]:
        """Attempts oldest first; NotFound for an unknown ticket."""
        with self._uow() as uow:
            ticket = uow.tickets.get(command.ticket_id)
            if ticket is None or not _visible(ticket, command.visible_to):
                raise NotFound("ticket", command.ticket_id)
            return uow.logs.for_ticket(command.ticket_id)


def _visible(ticket: Ticket, visible_to: UUID | None) -> bool:
    """True when the caller may see the ticket (None: every owner's tickets are visible)."""
    return visible_to is None or ticket.owner_id == visible_to
