"""Batches and their items in tables `triage_job_batches` and `triage_job_batch_items`."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.statuses import BatchStatus, TriageJobStatus
from triage_pipeline.infrastructure.db.bulk_statements import INSERT_ITEMS, SET_ITEMS_STATUS
from triage_pipeline.infrastructure.db.mappers import batch_from_row, item_from_row
from triage_pipeline.infrastructure.db.models import TicketRow, TriageJobBatchItemRow, TriageJobBatchRow, TriageJobRow


class SqlBatchRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, batch: TriageJobBatch) -> None:
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
                INSERT_ITEMS,
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
        """The batch, or None; `for_update` locks its row."""
        query = (
            select(TriageJobBatchRow).where(TriageJobBatchRow.id == batch_id).execution_options(populate_existing=True)
        )
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return batch_from_row(row) if row else None

    def update(self, batch: TriageJobBatch) -> None:
        """Save a changed batch (its status, size and end; origin and start never change)."""
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
                SET_ITEMS_STATUS,
                {
                    "batch_id": batch_id,
                    "job_id": [job_id for job_id, _ in statuses],
                    "status": [status.value for _, status in statuses],
                    "updated_at": [now] * len(statuses),
                },
            )

    def item_counts(self, batch_id: UUID) -> dict[TriageJobStatus, int]:
        """Statuses that no item is in are left out, not counted as 0."""
        rows = self._session.execute(
            select(TriageJobBatchItemRow.status, func.count())
            .where(TriageJobBatchItemRow.batch_id == batch_id)
            .group_by(TriageJobBatchItemRow.status)
        )
        return {TriageJobStatus(status): int(count) for status, count in rows}

    def item_counts_by_owner(self, batch_id: UUID) -> dict[UUID, dict[str, int]]:
        """Item counts by status for each owner with tickets in the batch."""
        rows = self._session.execute(
            select(TicketRow.owner_id, TriageJobBatchItemRow.status, func.count())
            .join(TriageJobRow, TriageJobRow.id == TriageJobBatchItemRow.job_id)
            .join(TicketRow, TicketRow.id == TriageJobRow.ticket_id)
            .where(TriageJobBatchItemRow.batch_id == batch_id)
            .group_by(TicketRow.owner_id, TriageJobBatchItemRow.status)
        )
        counts: dict[UUID, dict[str, int]] = {}
        for owner_id, status, count in rows:
            counts.setdefault(owner_id, {})[status] = int(count)
        return counts

    def open_items_ahead(self, batch: TriageJobBatch) -> int:
        """Items still PENDING or RUNNING in RUNNING batches created before `batch`."""
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(TriageJobBatchItemRow)
                .join(TriageJobBatchRow, TriageJobBatchRow.id == TriageJobBatchItemRow.batch_id)
                .where(
                    TriageJobBatchRow.status == BatchStatus.RUNNING.value,
                    TriageJobBatchRow.created_at < batch.created_at,
                    TriageJobBatchItemRow.status.in_([TriageJobStatus.PENDING.value, TriageJobStatus.RUNNING.value]),
                )
            )
            or 0
        )

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
