"""The TriageJobBatch entity and its items."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from triage_pipeline.domain.exceptions import BatchNotFinished, InvalidTransition
from triage_pipeline.domain.statuses import BatchStatus, TriageJobStatus

OPEN_ITEM_STATUSES = frozenset({TriageJobStatus.PENDING, TriageJobStatus.RUNNING})


class BatchOrigin(StrEnum):
    """Who created a batch; it decides who launches its processing."""

    API = "api"  # launched by the queued-batches sensor
    SCHEDULE = "schedule"  # launched by the schedule that created it
    BACKLOG_SENSOR = "backlog_sensor"  # launched by the sensor that created it
    RUN = "run"  # created inside a run, which processes it itself


@dataclass(frozen=True, slots=True)
class TriageJobBatchItem:
    """One job inside a batch; its status follows the job's while the batch runs."""

    id: UUID
    batch_id: UUID
    job_id: UUID
    status: TriageJobStatus
    created_at: datetime
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        """True while the item's job has not ended within this batch."""
        return self.status in OPEN_ITEM_STATUSES

    def follow(self, job_status: TriageJobStatus, now: datetime) -> "TriageJobBatchItem":
        """Mirror the job's new status."""
        return replace(self, status=job_status, updated_at=now)


@dataclass(frozen=True, slots=True)
class TriageJobBatch:
    """A set of jobs triaged together: RUNNING -> DONE.

    A batch normally ends with `finish`, once every item ended. A batch whose run died ends with
    `abandon`: it becomes DONE with its never-started items left PENDING, and its jobs are released so
    another batch claims them (they were not attempted, so no attempt is counted for them).
    """

    id: UUID
    status: BatchStatus
    total_items: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    finished_at: datetime | None = None
    origin: BatchOrigin = BatchOrigin.API

    def finish(self, items: Iterable[TriageJobBatchItem], now: datetime) -> "TriageJobBatch":
        """RUNNING -> DONE, only once every item has ended."""
        if self.status is not BatchStatus.RUNNING:
            raise InvalidTransition("batch", self.status, BatchStatus.DONE)
        open_items = sum(1 for item in items if item.is_open)
        if open_items:
            raise BatchNotFinished(self.id, open_items)
        return replace(self, status=BatchStatus.DONE, finished_at=now, updated_at=now)

    def is_stale(self, items: Iterable[TriageJobBatchItem], now: datetime, lease: timedelta) -> bool:
        """True when the batch is RUNNING, no item is RUNNING and nothing happened to it for longer than `lease`.

        Every start and end of a job moves its item's `updated_at`, so a live run keeps its batch fresh;
        a batch queued but never launched, or whose run died, goes stale one lease after its last event.
        """
        if self.status is not BatchStatus.RUNNING:
            return False
        items = list(items)
        if any(item.status is TriageJobStatus.RUNNING for item in items):
            return False
        last_event = max([self.updated_at, *(item.updated_at for item in items)])
        return now - last_event > lease

    def abandon(self, items: Iterable[TriageJobBatchItem], now: datetime) -> "TriageJobBatch":
        """RUNNING -> DONE leaving never-started (PENDING) items as they are; refused while an item is RUNNING."""
        if self.status is not BatchStatus.RUNNING:
            raise InvalidTransition("batch", self.status, BatchStatus.DONE)
        running = sum(1 for item in items if item.status is TriageJobStatus.RUNNING)
        if running:
            raise BatchNotFinished(self.id, running)
        return replace(self, status=BatchStatus.DONE, finished_at=now, updated_at=now)
