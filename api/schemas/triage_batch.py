"""Triage batches: the request that creates one, what it answers, and a batch's progress."""

from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from triage_pipeline.application.batches import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, BatchProgress, CreateBatchCommand
from triage_pipeline.domain.statuses import BatchStatus, TriageJobStatus


class TriageBatchCreate(BaseModel):
    """How many eligible jobs (PENDING, or FAILED with attempts left) the batch may take."""

    model_config = ConfigDict(extra="forbid")

    max_items: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)

    def to_command(self) -> CreateBatchCommand:
        """The use-case input."""
        return CreateBatchCommand(max_items=self.max_items)


class BatchRef(BaseModel):
    """The batch just created."""

    # `BatchRef.model_validate(batch)` reads a domain `TriageJobBatch`.
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    total_items: int


class QueuedBatch(BaseModel):
    """A batch was created; the pipeline picks it up."""

    status: Literal["QUEUED"] = "QUEUED"
    batch: BatchRef


class EmptyBatch(BaseModel):
    """No job was eligible, so no batch was created."""

    status: Literal["EMPTY"] = "EMPTY"
    batch: None = None
    total_items: Literal[0] = 0


BatchCreated = Annotated[QueuedBatch | EmptyBatch, Field(discriminator="status")]


class ItemCounts(BaseModel):
    """How many items of the batch are in each job status."""

    PENDING: int
    RUNNING: int
    DONE: int
    FAILED: int


class BatchProgressOut(BaseModel):
    """A batch, its item counts by status, and when it started and finished."""

    id: UUID
    status: BatchStatus
    total_items: int
    counts: ItemCounts
    started_at: datetime
    finished_at: datetime | None
    queued_ahead: int = Field(
        description=(
            "Jobs of earlier batches still waiting or running while this one runs: the work the pipeline does "
            "before this batch's turn (0 once it is DONE)."
        )
    )

    @classmethod
    def from_domain(cls, progress: BatchProgress) -> Self:
        """The DTO of a batch's progress."""
        counts = {status.value: progress.counts.get(status, 0) for status in TriageJobStatus}
        return cls(
            id=progress.batch.id,
            status=progress.batch.status,
            total_items=progress.batch.total_items,
            counts=ItemCounts.model_validate(counts),
            started_at=progress.batch.started_at,
            finished_at=progress.finished_at,
            queued_ahead=progress.queued_ahead,
        )
