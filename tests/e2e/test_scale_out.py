"""Two Celery workers and two LLM hosts triage one batch together, with a worker and a host killed mid-batch.

All real processes on loopback (tests/support/scale_stack.py): a Redis broker, two fake Ollama hosts of 16
parallel chats each, two `triage worker` processes, and the triage job run by Dagster's Celery executor.
"""

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.support.ports import distinct_free_ports
from tests.support.scale_stack import ScaleStack, jobs_done_in_current_task, tasks_in_progress
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres
from triage_pipeline.infrastructure.settings import Settings

TICKETS = 1000
HEARTBEAT_TIMEOUT_S = 6

pytestmark = pytest.mark.slow


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def _wait_until(condition: "object", timeout_s: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_and_two_hosts_triage_a_batch_through_a_worker_and_a_host_killed_mid_batch(
    pg_server: EmbeddedPostgres, database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    engine = clean_db
    pg_server.ensure_database("dagster_scale")
    settings = {
        "TRIAGE_WORKERS": "2",
        "JOB_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
        "CELERY_VISIBILITY_TIMEOUT_S": "20",
        "LLM_CONNECT_TIMEOUT_S": "2",
        "LLM_READ_TIMEOUT_S": "10",
        "JOB_LEASE_S": "60",
    }
    with ScaleStack(database_url, tmp_path, dagster_db_name="dagster_scale", settings=settings) as stack:
        stack.start_redis()
        stack.start_host(latency_s=0.2, parallel=16, concurrency=16)
        stack.start_host(latency_s=0.2, parallel=16, concurrency=16)
        victim, survivor = stack.start_worker(), stack.start_worker()

        container = Container(Settings(), database_url=database_url)
        try:
            tickets = [
                NewTicket(DEFAULT_OWNER_ID, f"SCALE-{i}", f"Checkout fails {i}", f"Error 500 on pay {i}")
                for i in range(TICKETS)
            ]
            container.use(CreateTickets).execute(CreateTicketsCommand(tickets))
            created = container.use(CreateBatch).execute(CreateBatchCommand(max_items=TICKETS))
        finally:
            container.close()
        assert created is not None and len(created.job_ids) == TICKETS
        batch_id = str(created.batch.id)

        run = stack.run_batch(batch_id, workers=2, jobs_per_chunk=100, llm_concurrency=16)
        done = "SELECT count(*) FROM triage_jobs WHERE status = 'DONE'"
        # kill -9 the first worker in the middle of a chunk (some of its jobs recorded, others on the LLM), once
        # the batch is well under way.
        _wait_until(
            lambda: _count(engine, done) >= 150 and jobs_done_in_current_task(victim) >= 10, 120, "a chunk on worker-0"
        )
        killed_at_done = _count(engine, done)
        victim.kill()
        # kill -9 one LLM host a little later: its calls in flight fail, the next ones go to the other host.
        _wait_until(lambda: _count(engine, done) >= killed_at_done + 100, 120, "progress after the worker died")
        stack.hosts[0][0].kill()

        code = run.popen.wait(timeout=300)
        assert code == 0, run.log()[-4000:]

        with engine.connect() as connection:
            jobs = connection.execute(text("SELECT id, status, attempts FROM triage_jobs")).all()
            tickets_by_status = Counter(
                row.status for row in connection.execute(text("SELECT status FROM tickets")).all()
            )
            logs = connection.execute(
                text("SELECT job_id, attempt, outcome, error_class, llm_host FROM triage_job_logs")
            ).all()
            batch_status = connection.execute(
                text("SELECT status FROM triage_job_batches WHERE id = :id"), {"id": batch_id}
            ).scalar_one()

    # Every ticket ended, none is left on triage, and no job was triaged twice.
    assert batch_status == "DONE"
    assert set(tickets_by_status) <= {"COMPLETED", "FAILED"} and sum(tickets_by_status.values()) == TICKETS
    assert {row.status for row in jobs} <= {"DONE", "FAILED"}
    succeeded = Counter(log.job_id for log in logs if log.outcome == "SUCCEEDED")
    assert max(succeeded.values()) == 1
    assert tickets_by_status["COMPLETED"] == len(succeeded)
    # Every counted attempt is logged; an unreached call is logged without being counted.
    counted = Counter(log.job_id for log in logs if log.error_class != "unreached")
    assert all(counted[row.id] == row.attempts for row in jobs)
    # The dead worker's jobs were taken over (heartbeat), and both hosts answered.
    assert any(log.error_class == "worker_lost" for log in logs)
    hosts = Counter(log.llm_host for log in logs if log.outcome == "SUCCEEDED")
    assert len(hosts) == 2, hosts
    # The steps passed their outputs through PostgreSQL, not the local disk a worker on another machine lacks.
    storage = tmp_path / "dagster_home" / "storage"
    on_disk = [p for p in storage.rglob("*") if p.is_file() and {"plan_batch", "chunks"} & set(p.parts)]
    assert on_disk == []
    # Chunks ran on both workers: the survivor also ran the chunk the dead one held.
    assert tasks_in_progress(survivor) == 0 and survivor.log().count("] received") >= 2


def test_triage_run_with_the_celery_executor_sends_a_queued_batch_to_a_triage_worker(
    pg_server: EmbeddedPostgres, database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    """The user's path: `triage run` (daemon, sensors, run launcher) with TRIAGE_EXECUTOR=celery and one
    `triage worker` beside it; the API's queued batch is triaged on the worker."""
    from tests.e2e.test_run_stack import ADMIN_KEY, TRIAGE, RunningStack, _triage_one_ticket

    pg_server.ensure_database("dagster_celery_run")
    with ScaleStack(database_url, tmp_path, dagster_db_name="dagster_celery_run") as stack:
        stack.start_redis()
        stack.start_host(latency_s=0.05)
        worker = stack.start_worker()
        api_port, dagster_port, code_server_port = distinct_free_ports(3)
        env = stack.env(
            ADMIN_API_KEY=ADMIN_KEY,
            API_PORT=str(api_port),
            DAGSTER_PORT=str(dagster_port),
            DAGSTER_CODE_SERVER_PORT=str(code_server_port),
            TRIAGE_SCHEDULE_CRON="0 0 1 1 *",
            BACKLOG_MIN_JOBS="1000000",
            BACKLOG_MAX_AGE_S="1000000",
        )
        env = {k: v for k, v in env.items() if k != "WEBHOOK_SECRETS_KEY"}
        process = subprocess.Popen(
            [TRIAGE, "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        running = RunningStack(process)
        try:
            running.wait_for_line("Press Ctrl-C", 180)
            status = _triage_one_ticket(f"http://127.0.0.1:{api_port}", "celery-run-1")
            assert status == "COMPLETED", "\n".join(running.lines) + worker.log()[-3000:]
        finally:
            running.stop()
        # The chunk ran on the worker, not in the run worker's own process.
        assert "triage job done" in worker.log()
