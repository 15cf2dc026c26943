"""The pipeline process is killed (SIGKILL) in the middle of a batch: nothing is lost, nothing is triaged twice.

A real subprocess runs the Dagster `triage_job` on a batch while the fake Ollama holds some calls open; the
test kills it with SIGKILL once those jobs are RUNNING, runs the recovery with a short lease, then a new
batch, and checks every ticket ends COMPLETED exactly once with its attempts counted.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from dagster import DagsterInstance
from sqlalchemy import text

from tests.support.auth import ADMIN_API_KEY
from tests.support.fake_ollama import Behaviour, FakeOllama
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.recovery import RecoverCommand, RecoverStuckWork
from triage_pipeline.application.triage import TriageJobs, TriageJobsCommand
from triage_pipeline.bootstrap import Container
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.job import triage_job
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEASE = timedelta(seconds=1)


@pytest.fixture
def container(database_url: str, clean_db: object) -> Iterator[Container]:
    built = Container(Settings(admin_api_key=ADMIN_API_KEY), database_url=database_url)
    yield built
    built.close()


def rows(container: Container, sql: str, **params: Any) -> list[Any]:
    with container.uow() as uow:
        return list(uow.session.execute(text(sql), params))


def scalar(container: Container, sql: str, **params: Any) -> Any:
    with container.uow() as uow:
        return uow.session.execute(text(sql), params).scalar_one()


def wait_until(condition: Any, timeout: float, what: str, process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def hanging_calls(fake: FakeOllama) -> int:
    """LLM calls received for the slow tickets (the ones that hang)."""
    return sum("slow ticket" in json.dumps(request) for request in fake.chat_requests)


def start_worker(
    database_url: str, llm_url: str, batch_id: UUID, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DB_", "LLM_", "DAGSTER_HOME"))}
    env.update(extra_env or {})
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.triage_worker",
            "--database-url",
            database_url,
            "--llm-url",
            llm_url,
            "--batch-id",
            str(batch_id),
            "--jobs-per-chunk",
            "6",
            "--llm-concurrency",
            "2",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_a_killed_in_process_worker_is_a_dead_run_recovered_after_the_heartbeat_timeout_not_the_lease(
    container: Container, database_url: str, fake_ollama: FakeOllama
) -> None:
    texts = ["fast", "slow", "slow", "fast"]
    items = [NewTicket(DEFAULT_OWNER_ID, f"H-{i}", f"Ticket {i}", f"{kind} ticket {i}") for i, kind in enumerate(texts)]
    container.use(CreateTickets).execute(CreateTicketsCommand(items))
    fake_ollama.hang_s = 120.0
    fake_ollama.when_ticket_contains("slow ticket", Behaviour.HANG)
    created = container.use(CreateBatch).execute(CreateBatchCommand())
    assert created is not None
    worker = start_worker(database_url, fake_ollama.url, created.batch.id, {"JOB_HEARTBEAT_TIMEOUT_S": "3"})
    try:
        wait_until(lambda: hanging_calls(fake_ollama) >= 2, 90, "two LLM calls hanging", worker)
        # The live worker keeps its jobs: heartbeats every second, so the recovery finds nothing to take.
        time.sleep(4)
        assert scalar(container, "SELECT count(*) FROM triage_jobs WHERE heartbeat_at > now() - interval '2 s'") >= 2
        alive = RecoverCommand(lease=timedelta(minutes=10), heartbeat_timeout=timedelta(seconds=3))
        assert container.use(RecoverStuckWork).execute(alive).jobs_recovered == 0
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    time.sleep(3.5)
    # In process, the worker is the run: its silence is a dead run, whose batch is closed in the same tick.
    report = container.use(RecoverStuckWork).execute(replace(alive, dead_worker_ends_run=True))
    assert report.jobs_recovered >= 2
    assert report.batches_finished == 1  # closed (abandoned if it still had never-started jobs)
    assert scalar(container, "SELECT count(*) FROM triage_jobs WHERE batch_id IS NOT NULL") == 0
    failed = rows(container, "SELECT status, attempts, last_error FROM triage_jobs WHERE status = 'FAILED'")
    assert len(failed) >= 2 and all(a == 1 and e.startswith("worker_lost") for _, a, e in failed)
    lost = scalar(container, "SELECT count(*) FROM triage_job_logs WHERE error_class = 'worker_lost'")
    assert lost == len(failed)


def test_pipeline_killed_mid_batch_loses_nothing_and_triages_nothing_twice(
    container: Container, database_url: str, fake_ollama: FakeOllama
) -> None:
    # Eight tickets in one chunk, two LLM calls at a time. Every "slow" call hangs, so the run stalls with
    # two calls open: some jobs DONE, the hung ones RUNNING, and (six slow tickets) some never started.
    texts = ["fast", "slow", "slow", "slow", "fast", "slow", "slow", "slow"]
    items = [NewTicket(DEFAULT_OWNER_ID, f"K-{i}", f"Ticket {i}", f"{kind} ticket {i}") for i, kind in enumerate(texts)]
    container.use(CreateTickets).execute(CreateTicketsCommand(items))
    fake_ollama.hang_s = 120.0
    fake_ollama.when_ticket_contains("slow ticket", Behaviour.HANG)
    created = container.use(CreateBatch).execute(CreateBatchCommand())
    assert created is not None and created.batch.total_items == 8

    worker = start_worker(database_url, fake_ollama.url, created.batch.id)
    try:
        wait_until(lambda: hanging_calls(fake_ollama) >= 2, 90, "two LLM calls hanging", worker)
        time.sleep(0.5)  # let the run start whatever it starts next; it cannot finish anything more
        assert worker.poll() is None
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    # What the dead run left behind: the hung jobs RUNNING, the batch RUNNING.
    states = dict(
        rows(container, "SELECT t.description, j.status FROM triage_jobs j JOIN tickets t ON t.id = j.ticket_id")
    )
    killed = {d for d, s in states.items() if s == "RUNNING"}
    done_before_kill = {d for d, s in states.items() if s == "DONE"}
    never_started = {d for d, s in states.items() if s == "PENDING"}
    assert len(killed) >= 2 and sum(d.startswith("slow") for d in killed) >= 2
    assert never_started and len(killed) + len(done_before_kill) + len(never_started) == 8
    assert scalar(container, "SELECT status FROM triage_job_batches") == "RUNNING"

    fake_ollama.reset()  # the LLM answers again (the dead worker's calls are gone with it)

    # Recovery after the lease: the hung jobs fail as counted attempts, the dead batch is closed, nothing is lost.
    time.sleep(LEASE.total_seconds() + 0.2)
    report = container.use(RecoverStuckWork).execute(RecoverCommand(lease=LEASE))
    assert (report.jobs_recovered, report.batches_finished, report.batches_abandoned) == (len(killed), 1, 1)
    assert report.jobs_released == len(never_started)
    assert scalar(container, "SELECT count(*) FROM triage_jobs WHERE batch_id IS NOT NULL") == 0

    # The next batch (a new run of the real job) finishes the work.
    services = TriageServices(
        database=DatabaseResource(url=database_url),
        llm=LlmResource(base_url=fake_ollama.url, model="fake-model", read_timeout_s=5.0),
    )
    with DagsterInstance.ephemeral() as instance:
        result = triage_job.execute_in_process(resources={"services": services}, instance=instance)
    assert result.success
    assert result.output_for_node("finish_batch")["DONE"] == len(killed) + len(never_started)

    tickets = rows(container, "SELECT description, status FROM tickets")
    assert sorted(status for _, status in tickets) == ["COMPLETED"] * 8
    per_job = rows(
        container,
        """SELECT t.description, j.status, j.attempts,
                  count(*) FILTER (WHERE l.outcome = 'SUCCEEDED') AS succeeded,
                  array_agg(coalesce(l.error_class, 'ok') ORDER BY l.started_at) AS outcomes
             FROM triage_jobs j JOIN tickets t ON t.id = j.ticket_id LEFT JOIN triage_job_logs l ON l.job_id = j.id
            GROUP BY t.description, j.status, j.attempts""",
    )
    for description, status, attempts, succeeded, outcomes in per_job:
        assert (status, succeeded) == ("DONE", 1), description  # DONE exactly once
        if description in killed:
            assert (attempts, outcomes) == (2, ["lease_expired", "ok"]), description
        else:
            assert (attempts, outcomes) == (1, ["ok"]), description  # never-started jobs were not charged
    batches = rows(container, "SELECT status, total_items FROM triage_job_batches ORDER BY created_at")
    assert batches == [("DONE", 8), ("DONE", len(killed) + len(never_started))]
    items = rows(
        container,
        "SELECT i.status, count(*) FROM triage_job_batch_items i WHERE i.batch_id = :b GROUP BY i.status",
        b=created.batch.id,
    )
    expected = {"FAILED": len(killed), "DONE": len(done_before_kill), "PENDING": len(never_started)}
    assert dict(items) == {k: v for k, v in expected.items() if v}


def test_a_worker_that_outlives_its_lease_does_not_record_a_second_success(
    container: Container, database_url: str, fake_ollama: FakeOllama
) -> None:
    llm = OllamaClient(fake_ollama.url, "fake-model", read_timeout_s=10.0)
    slow = Container(Settings(), database_url=database_url, llm=llm)
    try:
        slow.use(CreateTickets).execute(CreateTicketsCommand([NewTicket(DEFAULT_OWNER_ID, "Z-1", "t", "zombie")]))
        first = slow.use(CreateBatch).execute(CreateBatchCommand())
        assert first is not None
        fake_ollama.latency_s = 2.0
        zombie = threading.Thread(
            target=lambda: slow.use(TriageJobs).execute(TriageJobsCommand(list(first.job_ids), first.batch.id))
        )
        zombie.start()
        wait_until(lambda: fake_ollama.chat_count == 1, 10, "the first call")
        fake_ollama.latency_s = 0.0
        time.sleep(0.5)
        assert container.use(RecoverStuckWork).execute(RecoverCommand(lease=timedelta(seconds=0.3))).jobs_recovered == 1
        retry = slow.use(CreateBatch).execute(CreateBatchCommand())
        assert retry is not None
        slow.use(TriageJobs).execute(TriageJobsCommand(list(retry.job_ids), retry.batch.id))
        zombie.join(timeout=10)
        assert scalar(container, "SELECT count(*) FROM triage_job_logs WHERE outcome = 'SUCCEEDED'") == 1
    finally:
        slow.close()
