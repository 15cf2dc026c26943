"""The TriageJobBatch entity and its items."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
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
    """A set of jobs triaged together: RUNNING -> DONE."""

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
