"""Tickets in table `tickets`, and the opaque cursors of their newest-first pages."""

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import cast
from uuid import UUID

from sqlalchemy import Table, select, text, tuple_, update
from sqlalchemy.orm import Session

from triage_pipeline.domain.exceptions import DuplicateTicket, InvalidCursor, NotFound
from triage_pipeline.domain.ports import TicketPage
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.infrastructure.db.bulk_statements import (
    INSERT_NEW_TICKETS,
    TICKET_COLUMNS,
    UPDATE_TICKETS,
    as_arrays,
    json_text,
)
from triage_pipeline.infrastructure.db.mappers import ticket_from_row, ticket_to_values
from triage_pipeline.infrastructure.db.models import TicketRow

_TICKETS = cast(Table, TicketRow.__table__)
# Single intake (one ticket per request) in one round trip: the owner check, the ticket (skipped on a taken
# external id) and its job. Round trips were most of a request's cost: five (owner, ticket, job, and the
# transaction's two) cost more CPU, in waits for the GIL, than the whole API layer around them.
_INSERT_TICKET_WITH_JOB = text(
    """
    WITH owner AS (SELECT id FROM owners WHERE id = :owner_id),
         ticket AS (
             INSERT INTO tickets (id, owner_id, external_id, title, description, status, created_at, updated_at)
             SELECT :ticket_id, owner.id, :external_id, :title, :description, :ticket_status, :created_at, :updated_at
               FROM owner
             ON CONFLICT ON CONSTRAINT uq_tickets_owner_external_id DO NOTHING
             RETURNING id),
         job AS (
             INSERT INTO triage_jobs (id, ticket_id, status, attempts, created_at, updated_at)
             SELECT :job_id, ticket.id, :job_status, :attempts, :job_created_at, :job_updated_at FROM ticket
             RETURNING id)
    SELECT (SELECT count(*) FROM owner) AS owners, (SELECT count(*) FROM job) AS jobs
    """
)


def encode_cursor(created_at: datetime, ticket_id: UUID) -> str:
    """An opaque cursor pointing just after this ticket in newest-first order."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{ticket_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (created_at, id) a cursor points after; InvalidCursor when it is not one of ours."""
    try:
        created, ticket_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment, UUID(ticket_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(cursor) from exc


class SqlTicketRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_with_job(self, ticket: Ticket, job: TriageJob) -> None:
        owners, jobs = (
            self._session.connection()
            .execute(
                _INSERT_TICKET_WITH_JOB,
                {
                    "owner_id": ticket.owner_id,
                    "ticket_id": ticket.id,
                    "external_id": ticket.external_id,
                    "title": ticket.title,
                    "description": ticket.description,
                    "ticket_status": ticket.status.value,
                    "created_at": ticket.created_at,
                    "updated_at": ticket.updated_at,
                    "job_id": job.id,
                    "job_status": job.status.value,
                    "attempts": job.attempts,
                    "job_created_at": job.created_at,
                    "job_updated_at": job.updated_at,
                },
            )
            .one()
        )
        if not owners:
            raise NotFound("owner", ticket.owner_id)
        if not jobs:
            existing = self.find_by_external_id(ticket.owner_id, ticket.external_id)
            raise DuplicateTicket(ticket.owner_id, ticket.external_id, existing.id if existing else None)

    def add_many_new(self, tickets: Sequence[Ticket]) -> dict[tuple[UUID, str], UUID]:
        """Insert in one statement; return {(owner, external_id): existing id} of those already there."""
        if not tickets:
            return {}
        columns = as_arrays([ticket_to_values(t) for t in tickets], TICKET_COLUMNS)
        columns["triage_result"] = [json_text(value) for value in columns["triage_result"]]
        inserted = set(self._session.connection().execute(INSERT_NEW_TICKETS, columns).scalars())
        skipped = [(t.owner_id, t.external_id) for t in tickets if t.id not in inserted]
        if not skipped:
            return {}
        rows = self._session.execute(
            select(TicketRow.owner_id, TicketRow.external_id, TicketRow.id).where(
                tuple_(TicketRow.owner_id, TicketRow.external_id).in_(skipped)
            )
        )
        return {(owner_id, external_id): ticket_id for owner_id, external_id, ticket_id in rows}

    def get(self, ticket_id: UUID) -> Ticket | None:
        row = self._session.get(TicketRow, ticket_id, populate_existing=True)
        return ticket_from_row(row) if row else None

    def find_by_external_id(self, owner_id: UUID, external_id: str) -> Ticket | None:
        row = self._session.scalars(
            select(TicketRow).where(TicketRow.owner_id == owner_id, TicketRow.external_id == external_id)
        ).one_or_none()
        return ticket_from_row(row) if row else None

    def update(self, ticket: Ticket) -> None:
        values = ticket_to_values(ticket)
        del values["id"], values["created_at"]
        self._session.execute(update(TicketRow).where(TicketRow.id == ticket.id).values(**values))

    def mark_reviewed(self, ticket_id: UUID, now: datetime) -> bool:
        # Only this column, and only while COMPLETED: a whole-row update here could write a stale status or
        # answer over a worker that has just stored a new one.
        result = self._session.execute(
            update(TicketRow)
            .where(TicketRow.id == ticket_id, TicketRow.status == TicketStatus.COMPLETED.value)
            .values(review_status=ReviewStatus.REVIEWED.value, updated_at=now)
            .returning(TicketRow.id)
        )
        return result.first() is not None

    def update_many(self, tickets: Sequence[Ticket]) -> None:
        """Save the triage state (status, answer, updated_at) of many tickets in one statement.

        Owner, external id, title and description never change after creation, so they are not rewritten.
        """
        if tickets:
            self._session.connection().execute(
                UPDATE_TICKETS,
                {
                    "id": [t.id for t in tickets],
                    "status": [t.status.value for t in tickets],
                    "category": [t.answer.category if t.answer else None for t in tickets],
                    "priority": [t.answer.priority.value if t.answer else None for t in tickets],
                    "triage_result": [json_text(t.answer.as_dict()) if t.answer else None for t in tickets],
                    "review_status": [t.review_status.value if t.review_status else None for t in tickets],
                    "updated_at": [t.updated_at for t in tickets],
                },
            )

    def list(
        self,
        *,
        status: TicketStatus | None,
        owner_id: UUID | None,
        limit: int,
        cursor: str | None,
        review_status: ReviewStatus | None = None,
    ) -> TicketPage:
        """Tickets newest first, filtered, one page at a time (keyset pagination)."""
        query = select(TicketRow)
        if status is not None:
            query = query.where(TicketRow.status == status.value)
        if review_status is not None:
            query = query.where(TicketRow.review_status == review_status.value)
        if owner_id is not None:
            query = query.where(TicketRow.owner_id == owner_id)
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            query = query.where(tuple_(TicketRow.created_at, TicketRow.id) < tuple_(created_at, last_id))
        rows = list(
            self._session.scalars(query.order_by(TicketRow.created_at.desc(), TicketRow.id.desc()).limit(limit + 1))
        )
        next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
        return TicketPage(items=[ticket_from_row(r) for r in rows[:limit]], next_cursor=next_cursor)
