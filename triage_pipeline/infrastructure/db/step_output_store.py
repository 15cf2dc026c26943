"""Small JSON values keyed by Dagster's output identifiers, in the service's PostgreSQL (`pipeline_step_outputs`).

Kept apart from the unit of work: Dagster's IO manager writes one output at a time, outside any use case.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert

from triage_pipeline.infrastructure.db.models import PipelineStepOutputRow


class MissingStepOutput(LookupError):
    """No output was stored under this identifier (its step never ran, or it ran elsewhere without this store)."""


class StepOutputStore:
    """Put and get one output by its identifier; a step run again overwrites its output."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def key(identifier: Sequence[str]) -> str:
        return "/".join(identifier)

    def put(self, identifier: Sequence[str], run_id: str, value: Any) -> None:
        row = {"key": self.key(identifier), "run_id": run_id, "value": value}
        statement = insert(PipelineStepOutputRow).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=[PipelineStepOutputRow.key], set_={"value": statement.excluded.value}
        )
        with self._engine.begin() as connection:
            connection.execute(statement)

    def get(self, identifier: Sequence[str]) -> Any:
        key = self.key(identifier)
        with self._engine.connect() as connection:
            row = connection.execute(
                select(PipelineStepOutputRow.value).where(PipelineStepOutputRow.key == key)
            ).first()
        if row is None:
            raise MissingStepOutput(f"no stored output {key!r}")
        return row.value

    def prune(self, older_than: datetime) -> int:
        """Forget the outputs stored before `older_than`; how many there were."""
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(PipelineStepOutputRow).where(PipelineStepOutputRow.created_at < older_than)
            )
        return int(result.rowcount or 0)

    def delete_run(self, run_id: str) -> int:
        """Forget a run's outputs; how many there were."""
        with self._engine.begin() as connection:
            result = connection.execute(delete(PipelineStepOutputRow).where(PipelineStepOutputRow.run_id == run_id))
        return int(result.rowcount or 0)
