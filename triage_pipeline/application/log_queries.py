"""Read use cases on the attempt logs, for reports."""

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from triage_pipeline.domain.batch import TriageJobBatch
from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.ports import UnitOfWorkFactory
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import AttemptOutcome
from triage_pipeline.domain.triage_job_log import TriageJobLog


@dataclass(frozen=True, slots=True)
class BatchLogsQuery:
    """The logs of one batch, or of the batch that finished last when `batch_id` is None."""

    batch_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class BatchLogs:
    """`batch` is None, and `logs` empty, when the last finished batch was asked for and none has finished yet."""

    batch: TriageJobBatch | None
    logs: list[TriageJobLog]

    @property
    def review_share(self) -> "ReviewShare":
        """How many of the batch's stored answers wait for a person."""
        return review_share_of(self.logs)


@dataclass(frozen=True, slots=True)
class ReviewShare:
    """The stored answers (SUCCEEDED attempts) of a set of attempts, by the review status their confidence gave.

    `unrated` answers carry no review status (logged before confidence was computed); they count in
    `succeeded`, never as sent to review.
    """

    succeeded: int
    needs_review: int
    auto_applied: int

    @property
    def unrated(self) -> int:
        return self.succeeded - self.needs_review - self.auto_applied

    @property
    def share(self) -> float:
        """Share of stored answers that wait for a person; 0 when nothing was stored."""
        return self.needs_review / self.succeeded if self.succeeded else 0.0


def review_share_of(logs: Iterable[TriageJobLog]) -> ReviewShare:
    """Count the SUCCEEDED attempts and the review status written in their `confidence`."""
    succeeded = needs_review = auto_applied = 0
    for log in logs:
        if log.outcome is not AttemptOutcome.SUCCEEDED:
            continue
        succeeded += 1
        status = (log.confidence or {}).get("review_status")
        if status == ReviewStatus.NEEDS_REVIEW:
            needs_review += 1
        elif status == ReviewStatus.AUTO_APPLIED:
            auto_applied += 1
    return ReviewShare(succeeded=succeeded, needs_review=needs_review, auto_applied=auto_applied)


class GetBatchLogs:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: BatchLogsQuery) -> BatchLogs:
        """The batch and its logs; NotFound for an unknown batch id."""
        with self._uow() as uow:
            if command.batch_id is None:
                batch = uow.batches.latest_finished()
            else:
                batch = uow.batches.get(command.batch_id)
                if batch is None:
                    raise NotFound("batch", command.batch_id)
            return BatchLogs(batch=batch, logs=uow.logs.for_batch(batch.id) if batch else [])
