"""The Dagster pipeline on the real PostgreSQL and the fake Ollama: job, sensors, schedule, recovery."""

from collections.abc import Iterator

import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
)
from sqlalchemy import text

from tests.support.fake_ollama import Behaviour, FakeOllama
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.ended_runs import BATCH_TAG
from triage_pipeline.defs.triage.job import triage_job
from triage_pipeline.defs.triage.ops import TRIAGE_LOGS_ASSET
from triage_pipeline.defs.triage.schedules import build_triage_schedule
from triage_pipeline.defs.triage.sensors import build_sensors
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.clock import SystemClock
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory
from triage_pipeline.infrastructure.settings import Settings

CLOCK = SystemClock()


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def services(database_url: str, fake_ollama: FakeOllama, clean_db: object) -> TriageServices:
    return TriageServices(
        database=DatabaseResource(url=database_url),
        llm=LlmResource(base_url=fake_ollama.url, model="fake-model", read_timeout_s=2.0),
    )


def post_tickets(uow: SqlUnitOfWorkFactory, n: int) -> None:
    items = [NewTicket(DEFAULT_OWNER_ID, f"P-{i}", f"Checkout broken {i}", "The pay button fails.") for i in range(n)]
    CreateTickets(uow, CLOCK).execute(CreateTicketsCommand(items))


def run_triage(services: TriageServices, instance: DagsterInstance, **config: object):  # type: ignore[no-untyped-def]
    op_config = {"jobs_per_chunk": 10, "llm_concurrency": 8, **config}
    return triage_job.execute_in_process(
        run_config={"ops": {"plan_batch": {"config": op_config}, "triage_chunk": {"config": op_config}}},
        resources={"services": services},
        instance=instance,
    )


def tick_sensor(sensor, services: TriageServices, instance: DagsterInstance, cursor: str | None = None):  # type: ignore[no-untyped-def]
    with build_sensor_context(instance=instance, resources={"services": services}, cursor=cursor) as context:
        return sensor.evaluate_tick(context)


def tick_schedule(schedule, services: TriageServices, instance: DagsterInstance):  # type: ignore[no-untyped-def]
    with build_schedule_context(instance=instance, resources={"services": services}) as context:
        return schedule.evaluate_tick(context)


def scalar(uow: SqlUnitOfWorkFactory, sql: str) -> object:
    with uow() as w:
        return w.session.execute(text(sql)).scalar_one()


def test_definitions_load_and_validate() -> None:
    from triage_pipeline.definitions import defs

    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("triage_job") is not None
    assert {s.name for s in defs.sensors or []} >= {"queued_batches_sensor", "backlog_sensor", "stuck_jobs_sensor"}


def test_triage_job_triages_fifty_tickets_end_to_end(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    post_tickets(uow_factory, 50)
    result = run_triage(services, instance)
    assert result.success
    assert len(result.output_for_node("triage_chunk")) == 5
    finished = result.output_for_node("finish_batch")
    assert (finished["status"], finished["DONE"], finished["FAILED"]) == ("DONE", 50, 0)
    assert scalar(uow_factory, "SELECT count(*) FROM tickets WHERE status='COMPLETED'") == 50
    assert scalar(uow_factory, "SELECT count(*) FROM triage_jobs WHERE status='DONE' AND attempts=1") == 50
    assert scalar(uow_factory, "SELECT count(*) FROM triage_job_batches WHERE status='DONE'") == 1
    assert scalar(uow_factory, "SELECT count(*) FROM triage_job_logs WHERE outcome='SUCCEEDED'") == 50
    [materialization] = [
        m
        for m in result.asset_materializations_for_node("finish_batch")
        if m.asset_key.to_user_string() == TRIAGE_LOGS_ASSET
    ]
    metadata = materialization.metadata
    assert metadata["attempts"].value == 50
    assert metadata["failure_rate"].value == 0.0
    assert {"latency_p50_ms", "latency_p95_ms", "by_category", "preview", "prompt_versions", "models"} <= set(metadata)


def test_empty_run_ends_cleanly_and_says_so(services: TriageServices, instance: DagsterInstance) -> None:
    result = run_triage(services, instance)
    assert result.success
    assert result.output_for_node("plan_batch", "batch")["total_items"] == 0
    [event] = [e for e in result.all_node_events if e.is_successful_output and e.step_key == "plan_batch"]
    assert event.event_specific_data.metadata["status"].value == "EMPTY"  # type: ignore[union-attr]


def test_failing_llm_fails_jobs_and_later_batches_retry_until_three_attempts(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory, fake_ollama: FakeOllama
) -> None:
    post_tickets(uow_factory, 4)
    fake_ollama.set_behaviour(Behaviour.HTTP_500)
    for attempt in (1, 2, 3):
        assert run_triage(services, instance).success
        assert (
            scalar(uow_factory, f"SELECT count(*) FROM triage_jobs WHERE status='FAILED' AND attempts={attempt}") == 4
        )
    assert run_triage(services, instance).output_for_node("plan_batch", "batch")["total_items"] == 0
    assert scalar(uow_factory, "SELECT count(*) FROM tickets WHERE status='FAILED'") == 4
    assert scalar(uow_factory, "SELECT count(*) FROM triage_job_logs WHERE error_class='http_error'") == 12


def test_a_retried_run_of_a_batch_does_not_triage_done_jobs_again(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory, fake_ollama: FakeOllama
) -> None:
    post_tickets(uow_factory, 10)
    created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand())
    assert created is not None
    assert run_triage(services, instance, batch_id=str(created.batch.id)).success
    calls = fake_ollama.chat_count
    # The run died after triaging but before its batch was closed: the batch is still RUNNING.
    with uow_factory() as w:
        w.session.execute(text("UPDATE triage_job_batches SET status='RUNNING', finished_at=NULL"))
        w.commit()
    again = run_triage(services, instance, batch_id=str(created.batch.id))
    assert again.success
    assert fake_ollama.chat_count == calls
    assert again.output_for_node("finish_batch")["SKIPPED"] == 10
    assert scalar(uow_factory, "SELECT count(*) FROM triage_job_logs") == 10


def test_queued_batch_is_launched_by_the_sensor_exactly_once(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    post_tickets(uow_factory, 3)
    created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand())
    assert created is not None
    sensors = build_sensors(Settings())
    sensor = next(s for s in sensors if s.name == "queued_batches_sensor")
    first = tick_sensor(sensor, services, instance)
    assert [r.run_key for r in first.run_requests or []] == [str(created.batch.id)]
    request = (first.run_requests or [])[0]
    assert request.run_config["ops"]["plan_batch"]["config"]["batch_id"] == str(created.batch.id)
    second = tick_sensor(sensor, services, instance, first.cursor)
    assert not second.run_requests


def test_schedule_creates_a_batch_only_when_jobs_are_eligible(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    schedule = build_triage_schedule(Settings())
    empty = tick_schedule(schedule, services, instance)
    assert not empty.run_requests
    post_tickets(uow_factory, 3)
    data = tick_schedule(schedule, services, instance)
    [request] = data.run_requests or []
    assert isinstance(request, RunRequest)
    assert request.tags["triage/origin"] == "schedule"
    assert scalar(uow_factory, "SELECT total_items FROM triage_job_batches") == 3


def test_backlog_sensor_creates_a_batch_past_the_count_threshold(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    sensors = build_sensors(Settings(backlog_min_jobs=5, backlog_max_age_s=3600))
    sensor = next(s for s in sensors if s.name == "backlog_sensor")
    post_tickets(uow_factory, 4)
    below = tick_sensor(sensor, services, instance)
    assert not below.run_requests and below.skip_message
    with uow_factory() as w:
        CreateTickets(uow_factory, CLOCK).execute(
            CreateTicketsCommand([NewTicket(DEFAULT_OWNER_ID, "P-extra", "t", "d")])
        )
        w.commit()
    above = tick_sensor(sensor, services, instance)
    [request] = above.run_requests or []
    assert request.tags["triage/origin"] == "backlog_sensor"


def test_stuck_running_job_is_recovered_after_its_lease(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    post_tickets(uow_factory, 1)
    assert CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand()) is not None
    with uow_factory() as w:
        w.session.execute(
            text(
                "UPDATE triage_jobs SET status='RUNNING', attempts=1, started_at=now() - interval '1 hour';"
                "UPDATE triage_job_batch_items SET status='RUNNING';"
                "UPDATE tickets SET status='ON_TRIAGE'"
            )
        )
        w.commit()
    sensors = build_sensors(Settings(job_lease_s=600))
    sensor = next(s for s in sensors if s.name == "stuck_jobs_sensor")
    result = tick_sensor(sensor, services, instance)
    assert isinstance(result.skip_message, str) and "recovered 1 job" in result.skip_message
    assert scalar(uow_factory, "SELECT status FROM triage_jobs") == "FAILED"
    assert scalar(uow_factory, "SELECT status FROM triage_job_batches") == "DONE"
    assert scalar(uow_factory, "SELECT error_class FROM triage_job_logs") == "lease_expired"
    # Eligible again: the next run triages it.
    assert run_triage(services, instance).success
    assert scalar(uow_factory, "SELECT status || ':' || attempts FROM triage_jobs") == "DONE:2"


def test_a_batch_whose_run_failed_is_closed_and_its_running_job_retried_without_waiting_for_the_lease(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    post_tickets(uow_factory, 3)
    created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand())
    assert created is not None
    running, done = created.job_ids[0], created.job_ids[1]
    with uow_factory() as w:
        # Its run worker died a moment ago with one job on the LLM and one recorded; the third never started.
        for statement in (
            "UPDATE triage_jobs SET status='RUNNING', attempts=1, started_at=now() WHERE id = :r",
            "UPDATE triage_jobs SET status='DONE', attempts=1, started_at=now(), finished_at=now() WHERE id = :d",
            "UPDATE triage_job_batch_items SET status='RUNNING' WHERE job_id = :r",
            "UPDATE triage_job_batch_items SET status='DONE' WHERE job_id = :d",
        ):
            w.session.execute(text(statement), {"r": running, "d": done})
        w.commit()
    sensor = next(s for s in build_sensors(Settings(job_lease_s=600)) if s.name == "stuck_jobs_sensor")
    # While its run is in progress nothing is touched.
    run = instance.create_run_for_job(triage_job, tags={BATCH_TAG: str(created.batch.id)})
    result = tick_sensor(sensor, services, instance)
    assert scalar(uow_factory, "SELECT status FROM triage_job_batches") == "RUNNING"
    # Dagster marks the run failed (its run monitoring does when the worker dies): the next tick closes the batch.
    instance.report_run_failed(run)
    result = tick_sensor(sensor, services, instance)
    assert isinstance(result.skip_message, str) and "recovered 1 job" in result.skip_message
    assert scalar(uow_factory, "SELECT status FROM triage_job_batches") == "DONE"
    assert scalar(uow_factory, "SELECT error_class FROM triage_job_logs") == "run_ended"
    assert scalar(uow_factory, "SELECT count(*) FROM triage_jobs WHERE batch_id IS NULL") == 3
    # The next batch takes the failed job and the never-started one, and completes them.
    assert run_triage(services, instance).success
    assert scalar(
        uow_factory, "SELECT string_agg(status || ':' || attempts, ',' ORDER BY attempts DESC, status) FROM triage_jobs"
    ) == ("DONE:2,DONE:1,DONE:1")


def test_prompt_evaluation_asset_carries_figures_tables_and_embedded_plots(
    services: TriageServices, instance: DagsterInstance
) -> None:
    import base64
    import re

    from dagster import materialize

    from triage_pipeline.defs.quality.prompt_evaluation import prompt_evaluation

    result = materialize(
        [prompt_evaluation],
        resources={"services": services},
        instance=instance,
        run_config={"ops": {"prompt_evaluation": {"config": {"limit": 8, "versions": [1]}}}},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("prompt_evaluation")
    metadata = materialization.metadata
    assert metadata["tickets"].value == 8
    assert 0.0 <= metadata["v1_category_accuracy"].value <= 1.0
    for plot in ("v1_confusion", "v1_reliability"):
        match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", str(metadata[plot].value))
        assert match, plot
        assert base64.b64decode(match.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert "category accuracy" in metadata["comparison"].value
    assert "ECE (category confidence)" in metadata["comparison"].value
    assert 0.0 <= metadata["v1_ece"].value <= 1.0
    assert "| threshold |" in metadata["v1_threshold_sweep"].value


def test_dagster_cli_validates_the_workspace(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root,
        env={"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_a_run_of_a_batch_already_done_triages_nothing(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory, fake_ollama: FakeOllama
) -> None:
    post_tickets(uow_factory, 3)
    created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand())
    assert created is not None
    assert run_triage(services, instance, batch_id=str(created.batch.id)).success
    post_tickets_after = 2
    CreateTickets(uow_factory, CLOCK).execute(
        CreateTicketsCommand([NewTicket(DEFAULT_OWNER_ID, f"late-{i}", "t", "d") for i in range(post_tickets_after)])
    )
    calls = fake_ollama.chat_count
    late = run_triage(services, instance, batch_id=str(created.batch.id))
    assert late.success
    assert fake_ollama.chat_count == calls
    assert late.output_for_node("plan_batch", "batch")["total_items"] == 0
