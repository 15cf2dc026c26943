"""Use cases on batches: create one from eligible jobs, finish one, report its progress."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.ports import Clock, UnitOfWorkFactory
from triage_pipeline.domain.statuses import BatchStatus, TriageJobStatus
from triage_pipeline.domain.webhook import batch_done_events

DEFAULT_BATCH_SIZE = 1_000
MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class CreateBatchCommand:
    """Claim up to `max_items` eligible jobs (PENDING, or FAILED with attempts left) into a new batch."""

    max_items: int = DEFAULT_BATCH_SIZE
    origin: BatchOrigin = BatchOrigin.API


@dataclass(frozen=True, slots=True)
class CreatedBatch:
    """The new batch and the jobs it holds, in claim order."""

    batch: TriageJobBatch
    job_ids: tuple[UUID, ...]


class CreateBatch:
    """The one way a batch is made: by the API, the schedule and the sensors alike."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: CreateBatchCommand) -> CreatedBatch | None:
        """The RUNNING batch, or None when no job is eligible (nothing is written then)."""
        if not 1 <= command.max_items <= MAX_BATCH_SIZE:
            raise ValueError(f"max_items must be between 1 and {MAX_BATCH_SIZE}")
        now = self._clock.now()
        batch = TriageJobBatch(
            id=uuid4(),
            status=BatchStatus.RUNNING,
            total_items=0,
            created_at=now,
            updated_at=now,
            started_at=now,
            origin=command.origin,
        )
        with self._uow() as uow:
            uow.batches.add(batch)
            jobs = uow.jobs.claim_eligible(batch.id, command.max_items)
            if not jobs:
                return None
            items = [
                TriageJobBatchItem(
                    id=uuid4(), batch_id=batch.id, job_id=job.id, status=job.status, created_at=now, updated_at=now
                )
                for job in jobs
            ]
            uow.batches.add_items(items)
            batch = replace(batch, total_items=len(items))
            uow.batches.update(batch)
            uow.commit()
        return CreatedBatch(batch=batch, job_ids=tuple(job.id for job in jobs))


@dataclass(frozen=True, slots=True)
class FinishBatchCommand:
    """Close a batch whose items have all ended."""

    batch_id: UUID


class FinishBatch:
    """RUNNING -> DONE once every item ended; its jobs become claimable again (FAILED ones with attempts left)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: FinishBatchCommand) -> TriageJobBatch:
        """The finished batch (unchanged if already DONE); BatchNotFinished while items are open."""
        with self._uow() as uow:
            batch = uow.batches.get(command.batch_id, for_update=True)
            if batch is None:
                raise NotFound("batch", command.batch_id)
            if batch.status is BatchStatus.DONE:
                return batch
            now = self._clock.now()
            finished = batch.finish(uow.batches.items(batch.id), now)
            uow.batches.update(finished)
            uow.jobs.release_batch(batch.id)
            uow.outbox.add(
                batch_done_events(batch.id, uow.batches.item_counts_by_owner(batch.id), abandoned=False, now=now)
            )
            uow.commit()
        return finished


@dataclass(frozen=True, slots=True)
class BatchStatusQuery:
    batch_id: UUID


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A batch with its item counts by status, and the work queued ahead of it while it runs."""

    batch: TriageJobBatch
    counts: dict[TriageJobStatus, int]
    queued_ahead: int = 0

    @property
    def finished_at(self) -> datetime | None:
        return self.batch.finished_at


class GetBatchProgress:
    """A batch and how many of its items are in each status."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: BatchStatusQuery) -> BatchProgress:
        """The progress; NotFound for an unknown batch."""
        with self._uow() as uow:
            batch = uow.batches.get(command.batch_id)
            if batch is None:
                raise NotFound("batch", command.batch_id)
            counts = uow.batches.item_counts(batch.id)
            ahead = uow.batches.open_items_ahead(batch) if batch.status is BatchStatus.RUNNING else 0
        return BatchProgress(batch=batch, counts={s: counts.get(s, 0) for s in TriageJobStatus}, queued_ahead=ahead)


@dataclass(frozen=True, slots=True)
class LaunchableBatchesQuery:
    """RUNNING batches created by the API after `since` (a small overlap is safe: run keys dedupe)."""

    since: datetime | None = None


class ListLaunchableBatches:
    """The batches the API queued that a sensor should launch."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: LaunchableBatchesQuery) -> list[TriageJobBatch]:
        """Oldest first."""
        with self._uow() as uow:
            return uow.batches.running_since(BatchOrigin.API, command.since)


@dataclass(frozen=True, slots=True)
class BacklogQuery:
    """No parameters: it exists so that every use case keeps the one `execute(command)` shape."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """Eligible jobs waiting and the age of the oldest."""

    eligible: int
    oldest_age: timedelta | None


class GetBacklog:
    """Count eligible jobs and measure how long the oldest has waited."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: BacklogQuery) -> Backlog:
        with self._uow() as uow:
            count = uow.jobs.count_eligible()
            oldest = uow.jobs.oldest_eligible_created_at() if count else None
        return Backlog(eligible=count, oldest_age=self._clock.now() - oldest if oldest else None)


class ListBatchItems:
    """The items (jobs) of a batch, in claim order."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: UUID) -> list[TriageJobBatchItem]:
        """The items; NotFound for an unknown batch."""
        with self._uow() as uow:
            if uow.batches.get(command) is None:
                raise NotFound("batch", command)
            return uow.batches.items(command)
