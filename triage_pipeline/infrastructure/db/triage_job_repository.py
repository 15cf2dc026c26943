"""Triage jobs in table `triage_jobs`, and the claim of eligible jobs by a new batch."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

from sqlalchemy import Table, and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.statuses import TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_job import MAX_ATTEMPTS, TriageJob
from triage_pipeline.infrastructure.db.bulk_statements import (
    GET_JOBS_WITH_TICKETS,
    GET_JOBS_WITH_TICKETS_FOR_UPDATE,
    INSERT_JOBS,
    JOB_COLUMNS,
    UPDATE_JOBS,
    as_arrays,
)
from triage_pipeline.infrastructure.db.mappers import job_and_ticket_from_row, job_from_row, job_to_values
from triage_pipeline.infrastructure.db.models import TriageJobRow

_JOBS = cast(Table, TriageJobRow.__table__)
# Single intake (one job per request): a Core statement built once.
_INSERT_JOB = insert(_JOBS)

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


# One statement for every (job, attempt) a worker holds: renewed only while the job is RUNNING in that attempt.
_HEARTBEAT = text(
    "UPDATE triage_jobs AS j SET heartbeat_at = :now FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[])) "
    "AS h(id, attempts) WHERE j.id = h.id AND j.attempts = h.attempts AND j.status = 'RUNNING'"
)


class SqlTriageJobRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, job: TriageJob) -> None:
        self._session.connection().execute(_INSERT_JOB, job_to_values(job))

    def add_many(self, jobs: Sequence[TriageJob]) -> None:
        """Store many new jobs in one statement."""
        if jobs:
            self._session.connection().execute(INSERT_JOBS, as_arrays([job_to_values(j) for j in jobs], JOB_COLUMNS))

    def get(self, job_id: UUID, *, for_update: bool = False) -> TriageJob | None:
        """The job, or None; `for_update` locks its row."""
        query = select(TriageJobRow).where(TriageJobRow.id == job_id).execution_options(populate_existing=True)
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return job_from_row(row) if row else None

    def get_many(self, job_ids: Sequence[UUID]) -> list[TriageJob]:
        if not job_ids:
            return []
        return [
            job_from_row(r) for r in self._session.scalars(select(TriageJobRow).where(TriageJobRow.id.in_(job_ids)))
        ]

    def get_many_with_tickets(
        self, job_ids: Sequence[UUID], *, for_update: bool = False
    ) -> list[tuple[TriageJob, Ticket]]:
        """The jobs of these ids that exist, each with its ticket, in one statement (no particular order).

        `for_update` locks the jobs' rows (in id order), not the tickets'.
        """
        if not job_ids:
            return []
        query = GET_JOBS_WITH_TICKETS_FOR_UPDATE if for_update else GET_JOBS_WITH_TICKETS
        return [job_and_ticket_from_row(r) for r in self._session.connection().execute(query, {"ids": list(job_ids)})]

    def update(self, job: TriageJob) -> None:
        values = job_to_values(job)
        del values["id"], values["created_at"], values["ticket_id"]
        self._session.execute(update(TriageJobRow).where(TriageJobRow.id == job.id).values(**values))

    def update_many(self, jobs: Sequence[TriageJob]) -> None:
        """Save many changed jobs in one statement."""
        if jobs:
            self._session.connection().execute(
                UPDATE_JOBS,
                {
                    "id": [j.id for j in jobs],
                    "status": [j.status.value for j in jobs],
                    "attempts": [j.attempts for j in jobs],
                    "last_error": [j.last_error for j in jobs],
                    "started_at": [j.started_at for j in jobs],
                    "finished_at": [j.finished_at for j in jobs],
                    "heartbeat_at": [j.heartbeat_at for j in jobs],
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
        return sorted((job_from_row(cast(TriageJobRow, r)) for r in rows), key=lambda j: j.created_at)

    def release_batch(self, batch_id: UUID) -> None:
        """Let the jobs held by a finished batch be claimed again."""
        self._session.execute(update(TriageJobRow).where(TriageJobRow.batch_id == batch_id).values(batch_id=None))

    def count_eligible(self) -> int:
        """How many jobs a new batch could take now."""
        return int(self._session.scalar(select(func.count()).select_from(TriageJobRow).where(ELIGIBLE)) or 0)

    def oldest_eligible_created_at(self) -> datetime | None:
        return self._session.scalar(select(func.min(TriageJobRow.created_at)).where(ELIGIBLE))

    def find_expired_leases(self, now: datetime, lease: timedelta) -> list[TriageJob]:
        """RUNNING jobs started before now - lease."""
        rows = self._session.scalars(
            select(TriageJobRow).where(
                TriageJobRow.status == TriageJobStatus.RUNNING.value, TriageJobRow.started_at < now - lease
            )
        )
        return [job_from_row(r) for r in rows]

    def find_presumed_dead(
        self, now: datetime, lease: timedelta, heartbeat_timeout: timedelta, job_ids: Sequence[UUID] | None = None
    ) -> list[TriageJob]:
        """RUNNING jobs past their lease or silent past the heartbeat timeout (the partial index of RUNNING
        jobs keeps this cheap however many jobs have ended)."""
        query = select(TriageJobRow).where(
            TriageJobRow.status == TriageJobStatus.RUNNING.value,
            or_(TriageJobRow.started_at < now - lease, TriageJobRow.heartbeat_at < now - heartbeat_timeout),
        )
        if job_ids is not None:
            query = query.where(TriageJobRow.id.in_(list(job_ids)))
        return [job_from_row(r) for r in self._session.scalars(query)]

    def heartbeat(self, attempts: Sequence[tuple[UUID, int]], now: datetime) -> int:
        if not attempts:
            return 0
        result = self._session.connection().execute(
            _HEARTBEAT, {"ids": [job_id for job_id, _ in attempts], "attempts": [n for _, n in attempts], "now": now}
        )
        return int(result.rowcount or 0)

    def latest_for_ticket(self, ticket_id: UUID) -> TriageJob | None:
        row = self._session.scalars(
            select(TriageJobRow)
            .where(TriageJobRow.ticket_id == ticket_id)
            .order_by(TriageJobRow.created_at.desc())
            .limit(1)
        ).one_or_none()
        return job_from_row(row) if row else None
