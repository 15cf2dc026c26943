"""Dagster step outputs kept in PostgreSQL for steps on other machines (TRIAGE_EXECUTOR=celery or k8s)."""

import pytest
from dagster import build_input_context, build_output_context
from sqlalchemy import Engine

from triage_pipeline.definitions import build_definitions
from triage_pipeline.defs.io_manager import PostgresOutputsIOManager
from triage_pipeline.infrastructure.db.step_output_store import MissingStepOutput, StepOutputStore
from triage_pipeline.infrastructure.settings import Settings


def test_an_output_written_by_one_step_is_read_back_by_the_next(database_url: str, clean_db: Engine) -> None:
    manager = PostgresOutputsIOManager(database_url=database_url)
    chunk = {"batch_id": "b-1", "job_ids": ["j-1", "j-2"]}
    output = build_output_context(run_id="run-1", step_key="plan_batch", name="chunks", mapping_key="chunk_00001")
    manager.handle_output(output, chunk)
    loaded = manager.load_input(build_input_context(upstream_output=output))
    assert loaded == chunk


def test_a_step_run_again_overwrites_its_output(database_url: str, clean_db: Engine) -> None:
    store = StepOutputStore(clean_db)
    store.put(["run-1", "triage_chunk[chunk_00000]", "result"], "run-1", {"DONE": 1})
    store.put(["run-1", "triage_chunk[chunk_00000]", "result"], "run-1", {"DONE": 2})
    assert store.get(["run-1", "triage_chunk[chunk_00000]", "result"]) == {"DONE": 2}
    assert store.delete_run("run-1") == 1


def test_outputs_older_than_the_retention_are_pruned(database_url: str, clean_db: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    store = StepOutputStore(clean_db)
    store.put(["old-run", "plan_batch", "batch"], "old-run", {"batch_id": None})
    store.put(["new-run", "plan_batch", "batch"], "new-run", {"batch_id": None})
    with clean_db.begin() as connection:
        connection.execute(
            text("UPDATE pipeline_step_outputs SET created_at = now() - interval '8 days' WHERE run_id = 'old-run'")
        )
    assert store.prune(datetime.now(UTC) - timedelta(days=7)) == 1
    assert store.get(["new-run", "plan_batch", "batch"]) == {"batch_id": None}


def test_a_missing_output_is_a_clear_error(database_url: str, clean_db: Engine) -> None:
    with pytest.raises(MissingStepOutput, match="run-x/plan_batch/batch"):
        StepOutputStore(clean_db).get(["run-x", "plan_batch", "batch"])


@pytest.mark.parametrize(("kind", "in_postgres"), [("in_process", False), ("celery", True), ("k8s", True)])
def test_only_the_executors_that_cross_machines_keep_outputs_in_postgres(kind: str, in_postgres: bool) -> None:
    settings = Settings(triage_executor=kind, celery_broker_url="redis://127.0.0.1:6399/0")
    resources = build_definitions(settings).resources or {}
    assert isinstance(resources.get("io_manager"), PostgresOutputsIOManager) is in_postgres
