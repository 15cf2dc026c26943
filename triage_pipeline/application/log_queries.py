"""Read use cases on the attempt logs, for reports."""

from dataclasses import dataclass
from uuid import UUID

from triage_pipeline.domain.batch import TriageJobBatch
from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.ports import UnitOfWorkFactory
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
