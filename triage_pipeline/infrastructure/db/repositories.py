"""SQLAlchemy repositories: the domain's persistence Protocols over one Session."""

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Row, Table, TextClause, Uuid, and_, any_, bindparam, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.orm import Session

from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.exceptions import DuplicateTicket, InvalidCursor
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.ports import TicketPage
from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.domain.statuses import BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import TriageAnswer
from triage_pipeline.domain.triage_job import MAX_ATTEMPTS, TriageJob
from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.infrastructure.db.mappers import (
    batch_from_row,
    item_from_row,
    job_from_row,
    job_to_values,
    log_from_row,
    log_to_values,
    owner_from_row,
    prompt_from_row,
    ticket_from_row,
    ticket_to_values,
)
from triage_pipeline.infrastructure.db.models import (
    OwnerRow,
    PromptRow,
    TicketRow,
    TriageJobBatchItemRow,
    TriageJobBatchRow,
    TriageJobLogRow,
    TriageJobRow,
)

# Hot-path statements (the triage loop, intake, batch claims), built once: Core statements on the tables
# (no ORM hydration, no ORM DML bookkeeping, cache keys computed once). Those on many rows take one array
# parameter per column, so one statement of a constant text (prepared once by the server) reads or writes
# any number of rows in one round trip; psycopg's executemany would pay a pipelined round of work per row.
_OWNERS = cast(Table, OwnerRow.__table__)
_TICKETS = cast(Table, TicketRow.__table__)
_JOBS = cast(Table, TriageJobRow.__table__)
_ITEMS = cast(Table, TriageJobBatchItemRow.__table__)
_LOGS = cast(Table, TriageJobLogRow.__table__)
_IDS = bindparam("ids", type_=ARRAY(Uuid()))
# Intake's statements (one ticket per request): the VALUES are compiled once per set of keys.
_GET_OWNER = select(_OWNERS).where(_OWNERS.c.id == bindparam("id"))
_INSERT_TICKET = (
    insert(_TICKETS).on_conflict_do_nothing(constraint="uq_tickets_owner_external_id").returning(_TICKETS.c.id)
)
_INSERT_JOB = insert(_JOBS)
_GET_JOBS_WITH_TICKETS = (
    select(
        *(c.label(f"j_{c.name}") for c in _JOBS.c if c.name != "batch_id"),
        *(c.label(f"t_{c.name}") for c in _TICKETS.c),
    )
    .join_from(_JOBS, _TICKETS, _TICKETS.c.id == _JOBS.c.ticket_id)
    .where(_JOBS.c.id == any_(_IDS))
)
# Rows are locked in id order, so two lockers of overlapping sets cannot deadlock.
_GET_JOBS_WITH_TICKETS_FOR_UPDATE = _GET_JOBS_WITH_TICKETS.order_by(_JOBS.c.id).with_for_update(of=_JOBS)


_PG = PGDialect()  # type: ignore[no-untyped-call]  # only compiles column types to SQL


def _unnest(table: Table, columns: Sequence[str]) -> str:
    """`unnest(CAST(:a AS type[]), ...) AS v(a, ...)`: one array parameter per column, typed as the column."""
    casts = ", ".join(f"CAST(:{c} AS {table.c[c].type.compile(dialect=_PG)}[])" for c in columns)
    return f"unnest({casts}) AS v({', '.join(columns)})"


def _update_from_arrays(table: Table, keys: Sequence[str], columns: Sequence[str], where: str = "") -> TextClause:
    """UPDATE of many rows, each matched on `keys`, from one array parameter per column."""
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    matches = " AND ".join([f"t.{k} = v.{k}" for k in keys] + ([where] if where else []))
    return text(f"UPDATE {table.name} AS t SET {assignments} FROM {_unnest(table, [*keys, *columns])} WHERE {matches}")


def _insert_from_arrays(table: Table, columns: Sequence[str]) -> TextClause:
    """INSERT of many rows from one array parameter per column."""
    names = ", ".join(columns)
    return text(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {_unnest(table, columns)}")


_UPDATE_JOBS = _update_from_arrays(
    _JOBS, ["id"], ["status", "attempts", "last_error", "started_at", "finished_at", "updated_at"]
)
_UPDATE_TICKETS = _update_from_arrays(
    _TICKETS, ["id"], ["status", "category", "priority", "triage_result", "updated_at"]
)
_SET_ITEMS_STATUS = _update_from_arrays(
    _ITEMS, ["job_id"], ["status", "updated_at"], where="t.batch_id = CAST(:batch_id AS uuid)"
)
# Bulk intake: every column of the new rows as one array each (ticket_to_values / job_to_values keys).
_TICKET_COLUMNS = [
    "id",
    "owner_id",
    "external_id",
    "title",
    "description",
    "status",
    "category",
    "priority",
    "triage_result",
    "created_at",
    "updated_at",
]
_INSERT_NEW_TICKETS = text(
    _insert_from_arrays(_TICKETS, _TICKET_COLUMNS).text
    + " ON CONFLICT ON CONSTRAINT uq_tickets_owner_external_id DO NOTHING RETURNING id"
)
_JOB_COLUMNS = [
    "id",
    "ticket_id",
    "status",
    "attempts",
    "last_error",
    "started_at",
    "finished_at",
    "created_at",
    "updated_at",
]
_INSERT_JOBS = _insert_from_arrays(_JOBS, _JOB_COLUMNS)
_LOG_COLUMNS = [c.name for c in _LOGS.c]
_INSERT_LOGS = _insert_from_arrays(_LOGS, _LOG_COLUMNS)
_LOG_JSON_COLUMNS = frozenset(c.name for c in _LOGS.c if isinstance(c.type, JSONB))


def _as_arrays(rows: list[dict[str, object]], columns: Sequence[str]) -> dict[str, list[object]]:
    """One list per column; a mapper that grew a column these statements do not write is a bug, not data loss."""
    if rows and rows[0].keys() != set(columns):
        raise RuntimeError(f"columns {sorted(rows[0].keys() ^ set(columns))} are not in the bulk statement")
    return {name: [row[name] for row in rows] for name in columns}


def _json(value: object) -> str | None:
    """A JSONB value as the text the array parameter carries."""
    return None if value is None else json.dumps(value)


def _job_and_ticket(row: Row[Any]) -> tuple[TriageJob, Ticket]:
    job = TriageJob(
        id=row.j_id,
        ticket_id=row.j_ticket_id,
        status=TriageJobStatus(row.j_status),
        attempts=row.j_attempts,
        created_at=row.j_created_at,
        updated_at=row.j_updated_at,
        last_error=row.j_last_error,
        started_at=row.j_started_at,
        finished_at=row.j_finished_at,
    )
    ticket = Ticket(
        id=row.t_id,
        owner_id=row.t_owner_id,
        external_id=row.t_external_id,
        title=row.t_title,
        description=row.t_description,
        status=TicketStatus(row.t_status),
        created_at=row.t_created_at,
        updated_at=row.t_updated_at,
        answer=TriageAnswer.from_dict(row.t_triage_result) if row.t_triage_result else None,
    )
    return job, ticket


# The same predicate as the partial index ix_triage_jobs_eligible, so the planner can use it.
ELIGIBLE = and_(
    TriageJobRow.batch_id.is_(None),
    or_(
        TriageJobRow.status == TriageJobStatus.PENDING.value,
        and_(TriageJobRow.status == TriageJobStatus.FAILED.value, TriageJobRow.attempts < MAX_ATTEMPTS),
    ),
)
# The claim (see SqlTriageJobRepository.claim_eligible); Core rows come back, not ORM objects.
_PICKED = (
    select(_JOBS.c.id)
    .where(ELIGIBLE)
    .order_by(_JOBS.c.created_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .cte("picked")
)
_CLAIM = (
    update(_JOBS)
    .where(_JOBS.c.id == _PICKED.c.id)
    .values(batch_id=bindparam("batch_id"))
    .returning(*(c for c in _JOBS.c if c.name != "batch_id"))
)
_ITEM_COLUMNS = ["id", "batch_id", "job_id", "status", "created_at", "updated_at"]
_INSERT_ITEMS = _insert_from_arrays(_ITEMS, _ITEM_COLUMNS)


class SqlOwnerRepository:
    """Owners in table `owners`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, owner: Owner) -> None:
        """Store a new owner."""
        self._session.execute(
            insert(OwnerRow).values(
                id=owner.id, name=owner.name, created_at=owner.created_at, updated_at=owner.updated_at
            )
        )

    def get(self, owner_id: UUID) -> Owner | None:
        """The owner, or None."""
        row = self._session.connection().execute(_GET_OWNER, {"id": owner_id}).one_or_none()
        return owner_from_row(cast(OwnerRow, row)) if row else None  # a Core row has the same attributes

    def existing_ids(self, owner_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these owner ids exist."""
        if not owner_ids:
            return set()
        return set(self._session.scalars(select(OwnerRow.id).where(OwnerRow.id.in_(set(owner_ids)))))


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
    """Tickets in table `tickets`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, ticket: Ticket) -> None:
        """Store a new ticket; DuplicateTicket when (owner, external_id) is taken."""
        inserted = self._session.connection().execute(_INSERT_TICKET, ticket_to_values(ticket)).scalar_one_or_none()
        if inserted is None:
            existing = self.find_by_external_id(ticket.owner_id, ticket.external_id)
            raise DuplicateTicket(ticket.owner_id, ticket.external_id, existing.id if existing else None)

    def add_many_new(self, tickets: Sequence[Ticket]) -> dict[tuple[UUID, str], UUID]:
        """Insert in one statement; return {(owner, external_id): existing id} of those already there."""
        if not tickets:
            return {}
        columns = _as_arrays([ticket_to_values(t) for t in tickets], _TICKET_COLUMNS)
        columns["triage_result"] = [_json(value) for value in columns["triage_result"]]
        inserted = set(self._session.connection().execute(_INSERT_NEW_TICKETS, columns).scalars())
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
        """The ticket, or None."""
        row = self._session.get(TicketRow, ticket_id, populate_existing=True)
        return ticket_from_row(row) if row else None

    def find_by_external_id(self, owner_id: UUID, external_id: str) -> Ticket | None:
        """The ticket of this owner with this external id, or None."""
        row = self._session.scalars(
            select(TicketRow).where(TicketRow.owner_id == owner_id, TicketRow.external_id == external_id)
        ).one_or_none()
        return ticket_from_row(row) if row else None

    def update(self, ticket: Ticket) -> None:
        """Save a changed ticket."""
        values = ticket_to_values(ticket)
        del values["id"], values["created_at"]
        self._session.execute(update(TicketRow).where(TicketRow.id == ticket.id).values(**values))

    def update_many(self, tickets: Sequence[Ticket]) -> None:
        """Save the triage state (status, answer, updated_at) of many tickets in one statement.

        Owner, external id, title and description never change after creation, so they are not rewritten.
        """
        if tickets:
            self._session.connection().execute(
                _UPDATE_TICKETS,
                {
                    "id": [t.id for t in tickets],
                    "status": [t.status.value for t in tickets],
                    "category": [t.answer.category if t.answer else None for t in tickets],
                    "priority": [t.answer.priority.value if t.answer else None for t in tickets],
                    "triage_result": [_json(t.answer.as_dict()) if t.answer else None for t in tickets],
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
    ) -> TicketPage:
        """Tickets newest first, filtered, one page at a time (keyset pagination)."""
        query = select(TicketRow)
        if status is not None:
            query = query.where(TicketRow.status == status.value)
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


class SqlTriageJobRepository:
    """Triage jobs in table `triage_jobs`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, job: TriageJob) -> None:
        """Store a new job."""
        self._session.connection().execute(_INSERT_JOB, job_to_values(job))

    def add_many(self, jobs: Sequence[TriageJob]) -> None:
        """Store many new jobs in one statement."""
        if jobs:
            self._session.connection().execute(_INSERT_JOBS, _as_arrays([job_to_values(j) for j in jobs], _JOB_COLUMNS))

    def get(self, job_id: UUID, *, for_update: bool = False) -> TriageJob | None:
        """The job, or None; `for_update` locks its row."""
        query = select(TriageJobRow).where(TriageJobRow.id == job_id).execution_options(populate_existing=True)
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return job_from_row(row) if row else None

    def get_many_with_tickets(
        self, job_ids: Sequence[UUID], *, for_update: bool = False
    ) -> list[tuple[TriageJob, Ticket]]:
        """The jobs of these ids that exist, each with its ticket, in one statement (no particular order).

        `for_update` locks the jobs' rows (in id order), not the tickets'.
        """
        if not job_ids:
            return []
        query = _GET_JOBS_WITH_TICKETS_FOR_UPDATE if for_update else _GET_JOBS_WITH_TICKETS
        return [_job_and_ticket(r) for r in self._session.connection().execute(query, {"ids": list(job_ids)})]

    def update(self, job: TriageJob) -> None:
        """Save a changed job."""
        values = job_to_values(job)
        del values["id"], values["created_at"], values["ticket_id"]
        self._session.execute(update(TriageJobRow).where(TriageJobRow.id == job.id).values(**values))

    def update_many(self, jobs: Sequence[TriageJob]) -> None:
        """Save many changed jobs in one statement."""
        if jobs:
            self._session.connection().execute(
                _UPDATE_JOBS,
                {
                    "id": [j.id for j in jobs],
                    "status": [j.status.value for j in jobs],
                    "attempts": [j.attempts for j in jobs],
                    "last_error": [j.last_error for j in jobs],
                    "started_at": [j.started_at for j in jobs],
                    "finished_at": [j.finished_at for j in jobs],
                    "updated_at": [j.updated_at for j in jobs],
                },
            )

    def claim_eligible(self, batch_id: UUID, limit: int) -> list[TriageJob]:
        """Take up to `limit` eligible jobs, oldest first, in one statement.

        FOR UPDATE SKIP LOCKED makes a concurrent claimer pass over rows being claimed, and
        setting `batch_id` on the row itself makes PostgreSQL's re-check exclude rows claimed by a
        transaction that committed meanwhile, so two claims never take the same job.
        """
        rows = self._session.connection().execute(_CLAIM, {"batch_id": batch_id, "limit": limit})
        # A Core row has the attributes the mapper reads.
        return sorted((job_from_row(cast(TriageJobRow, r)) for r in rows), key=lambda j: j.created_at)

    def release_batch(self, batch_id: UUID) -> None:
        """Let the jobs held by a finished batch be claimed again."""
        self._session.execute(update(TriageJobRow).where(TriageJobRow.batch_id == batch_id).values(batch_id=None))

    def count_eligible(self) -> int:
        """How many jobs a new batch could take now."""
        return int(self._session.scalar(select(func.count()).select_from(TriageJobRow).where(ELIGIBLE)) or 0)

    def oldest_eligible_created_at(self) -> datetime | None:
        """When the oldest eligible job was created."""
        return self._session.scalar(select(func.min(TriageJobRow.created_at)).where(ELIGIBLE))

    def find_expired_leases(self, now: datetime, lease: timedelta) -> list[TriageJob]:
        """RUNNING jobs started before now - lease."""
        rows = self._session.scalars(
            select(TriageJobRow).where(
                TriageJobRow.status == TriageJobStatus.RUNNING.value, TriageJobRow.started_at < now - lease
            )
        )
        return [job_from_row(r) for r in rows]

    def latest_for_ticket(self, ticket_id: UUID) -> TriageJob | None:
        """The ticket's newest job."""
        row = self._session.scalars(
            select(TriageJobRow)
            .where(TriageJobRow.ticket_id == ticket_id)
            .order_by(TriageJobRow.created_at.desc())
            .limit(1)
        ).one_or_none()
        return job_from_row(row) if row else None


class SqlBatchRepository:
    """Batches and items in tables `triage_job_batches` and `triage_job_batch_items`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, batch: TriageJobBatch) -> None:
        """Store a new batch."""
        self._session.execute(
            insert(TriageJobBatchRow).values(
                id=batch.id,
                status=batch.status.value,
                total_items=batch.total_items,
                origin=batch.origin.value,
                started_at=batch.started_at,
                finished_at=batch.finished_at,
                created_at=batch.created_at,
                updated_at=batch.updated_at,
            )
        )

    def add_items(self, items: Sequence[TriageJobBatchItem]) -> None:
        """Store the items of a batch in one statement."""
        if items:
            self._session.connection().execute(
                _INSERT_ITEMS,
                {
                    "id": [i.id for i in items],
                    "batch_id": [i.batch_id for i in items],
                    "job_id": [i.job_id for i in items],
                    "status": [i.status.value for i in items],
                    "created_at": [i.created_at for i in items],
                    "updated_at": [i.updated_at for i in items],
                },
            )

    def get(self, batch_id: UUID, *, for_update: bool = False) -> TriageJobBatch | None:
        """The batch, or None."""
        query = (
            select(TriageJobBatchRow).where(TriageJobBatchRow.id == batch_id).execution_options(populate_existing=True)
        )
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return batch_from_row(row) if row else None

    def update(self, batch: TriageJobBatch) -> None:
        """Save a changed batch."""
        self._session.execute(
            update(TriageJobBatchRow)
            .where(TriageJobBatchRow.id == batch.id)
            .values(
                status=batch.status.value,
                total_items=batch.total_items,
                finished_at=batch.finished_at,
                updated_at=batch.updated_at,
            )
        )

    def items(self, batch_id: UUID) -> list[TriageJobBatchItem]:
        """Every item of the batch, in claim order."""
        rows = self._session.scalars(
            select(TriageJobBatchItemRow)
            .where(TriageJobBatchItemRow.batch_id == batch_id)
            .order_by(TriageJobBatchItemRow.created_at, TriageJobBatchItemRow.id)
        )
        return [item_from_row(r) for r in rows]

    def set_item_status(self, batch_id: UUID, job_id: UUID, status: TriageJobStatus, now: datetime) -> None:
        """Make the item of this job follow the job's status."""
        self._session.execute(
            update(TriageJobBatchItemRow)
            .where(TriageJobBatchItemRow.batch_id == batch_id, TriageJobBatchItemRow.job_id == job_id)
            .values(status=status.value, updated_at=now)
        )

    def set_items_status(self, batch_id: UUID, statuses: Sequence[tuple[UUID, TriageJobStatus]], now: datetime) -> None:
        """Make the items of these jobs follow their jobs' statuses, in one statement."""
        if statuses:
            self._session.connection().execute(
                _SET_ITEMS_STATUS,
                {
                    "batch_id": batch_id,
                    "job_id": [job_id for job_id, _ in statuses],
                    "status": [status.value for _, status in statuses],
                    "updated_at": [now] * len(statuses),
                },
            )

    def item_counts(self, batch_id: UUID) -> dict[TriageJobStatus, int]:
        """How many items are in each status."""
        rows = self._session.execute(
            select(TriageJobBatchItemRow.status, func.count())
            .where(TriageJobBatchItemRow.batch_id == batch_id)
            .group_by(TriageJobBatchItemRow.status)
        )
        return {TriageJobStatus(status): int(count) for status, count in rows}

    def running(self) -> list[TriageJobBatch]:
        """Every RUNNING batch, oldest first."""
        rows = self._session.scalars(
            select(TriageJobBatchRow)
            .where(TriageJobBatchRow.status == BatchStatus.RUNNING.value)
            .order_by(TriageJobBatchRow.created_at)
        )
        return [batch_from_row(r) for r in rows]

    def running_since(self, origin: BatchOrigin, since: datetime | None) -> list[TriageJobBatch]:
        """RUNNING batches of this origin created after `since`, oldest first."""
        query = select(TriageJobBatchRow).where(
            TriageJobBatchRow.status == BatchStatus.RUNNING.value, TriageJobBatchRow.origin == origin.value
        )
        if since is not None:
            query = query.where(TriageJobBatchRow.created_at > since)
        return [batch_from_row(r) for r in self._session.scalars(query.order_by(TriageJobBatchRow.created_at))]

    def latest_finished(self) -> TriageJobBatch | None:
        """The batch that finished last."""
        row = self._session.scalars(
            select(TriageJobBatchRow)
            .where(TriageJobBatchRow.status == BatchStatus.DONE.value)
            .order_by(TriageJobBatchRow.finished_at.desc())
            .limit(1)
        ).one_or_none()
        return batch_from_row(row) if row else None

    def batch_of_running_job(self, job_id: UUID) -> UUID | None:
        """The RUNNING batch holding this job, if any."""
        return self._session.scalar(select(TriageJobRow.batch_id).where(TriageJobRow.id == job_id))


class SqlPromptRepository:
    """Prompt versions in table `prompts`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, prompt: Prompt) -> None:
        """Store a new version (inactive unless `is_active`; use `activate` to switch)."""
        self._session.execute(
            insert(PromptRow).values(
                id=prompt.id,
                name=prompt.name,
                version=prompt.version,
                description=prompt.description,
                system_text=prompt.system_text,
                user_template=prompt.user_template,
                output_schema=dict(prompt.output_schema),
                model_options=dict(prompt.model_options),
                is_active=prompt.is_active,
                created_at=prompt.created_at,
                updated_at=prompt.created_at,
            )
        )

    def get(self, prompt_id: UUID) -> Prompt | None:
        """A version by id."""
        row = self._session.get(PromptRow, prompt_id)
        return prompt_from_row(row) if row else None

    def active(self, name: str) -> Prompt | None:
        """The active version of this name."""
        row = self._session.scalars(select(PromptRow).where(PromptRow.name == name, PromptRow.is_active)).one_or_none()
        return prompt_from_row(row) if row else None

    def by_version(self, name: str, version: int) -> Prompt | None:
        """A version by number."""
        row = self._session.scalars(
            select(PromptRow).where(PromptRow.name == name, PromptRow.version == version)
        ).one_or_none()
        return prompt_from_row(row) if row else None

    def versions(self, name: str) -> list[Prompt]:
        """Every version of this name, oldest first."""
        rows = self._session.scalars(select(PromptRow).where(PromptRow.name == name).order_by(PromptRow.version))
        return [prompt_from_row(r) for r in rows]

    def next_version(self, name: str) -> int:
        """max(version) + 1."""
        return int(
            self._session.scalar(
                select(func.coalesce(func.max(PromptRow.version), 0) + 1).where(PromptRow.name == name)
            )
            or 1
        )

    def activate(self, name: str, version: int) -> None:
        """Deactivate every version of the name, then activate this one, in the caller's transaction."""
        self._session.execute(
            update(PromptRow)
            .where(PromptRow.name == name, PromptRow.is_active)
            .values(is_active=False, updated_at=func.now())
        )
        self._session.execute(
            update(PromptRow)
            .where(PromptRow.name == name, PromptRow.version == version)
            .values(is_active=True, activated_at=func.now(), updated_at=func.now())
        )


class SqlTriageJobLogRepository:
    """Attempt logs in table `triage_job_logs` (insert-only)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, log: TriageJobLog) -> None:
        """Store one attempt's record."""
        self._session.execute(insert(TriageJobLogRow).values(**log_to_values(log)))

    def add_many(self, logs: Sequence[TriageJobLog]) -> None:
        """Store many attempts' records in one statement."""
        if logs:
            rows = [log_to_values(log) for log in logs]
            self._session.connection().execute(
                _INSERT_LOGS,
                {
                    name: [_json(r[name]) for r in rows] if name in _LOG_JSON_COLUMNS else [r[name] for r in rows]
                    for name in _LOG_COLUMNS
                },
            )

    def for_ticket(self, ticket_id: UUID) -> list[TriageJobLog]:
        """Every attempt at this ticket, oldest first."""
        rows = self._session.scalars(
            select(TriageJobLogRow)
            .where(TriageJobLogRow.ticket_id == ticket_id)
            .order_by(TriageJobLogRow.started_at, TriageJobLogRow.attempt)
        )
        return [log_from_row(r) for r in rows]

    def for_batch(self, batch_id: UUID) -> list[TriageJobLog]:
        """Every attempt made inside this batch."""
        rows = self._session.scalars(
            select(TriageJobLogRow).where(TriageJobLogRow.batch_id == batch_id).order_by(TriageJobLogRow.started_at)
        )
        return [log_from_row(r) for r in rows]
