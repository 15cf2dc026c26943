"""The database restarts during intake and during triage: 503 while it is down, recovery by itself, nothing lost.

Each test stops and starts its own embedded PostgreSQL (not the session's), so other tests are unaffected.
"""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from tests.e2e.conftest import ticket_body
from tests.support.auth import ADMIN_API_KEY, ADMIN_HEADERS
from tests.support.fake_ollama import FakeOllama
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand, FinishBatch, FinishBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.recovery import RecoverCommand, RecoverStuckWork
from triage_pipeline.application.triage import TriageJobs, TriageJobsCommand
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres, free_port
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.migrations import upgrade_to_head
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test alone, that the test stops and starts."""
    pg = EmbeddedPostgres(data_dir=tmp_path / "pg", port=free_port(), fast_unsafe=True)
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture
def url(server: EmbeddedPostgres) -> str:
    database_url = server.ensure_database("restart")
    upgrade_to_head(database_url)
    return database_url


def count(container: Container, sql: str) -> Any:
    with container.uow() as uow:
        return uow.session.execute(text(sql)).scalar_one()


def until_ok(call: Any, timeout: float = 15.0) -> tuple[Any, int]:
    """The first successful response, and how many failed before it."""
    failures = 0
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if response.status_code < 500:
            return response, failures
        failures += 1
        assert time.monotonic() < deadline, f"still {response.status_code} after {timeout} s: {response.text}"
        time.sleep(0.2)


def test_database_restart_during_intake_answers_503_while_down_and_recovers_by_itself(
    server: EmbeddedPostgres, url: str
) -> None:
    container = Container(Settings(admin_api_key=ADMIN_API_KEY), database_url=url)
    with TestClient(create_app(container), headers=ADMIN_HEADERS) as client:
        owner = client.post("/owners", json={"name": "Acme"}).json()
        owner_headers = {"Authorization": f"Bearer {owner['api_key']}"}
        assert client.post("/tickets", json=ticket_body("BEFORE")).status_code == 201

        server.stop()
        for method, path, body, headers in [
            ("POST", "/tickets", ticket_body("DURING"), ADMIN_HEADERS),
            ("POST", "/tickets", ticket_body("DURING"), owner_headers),  # authenticating an owner key needs the DB
            ("POST", "/tickets/batch", [ticket_body("DURING-B")], ADMIN_HEADERS),
            ("GET", "/tickets", None, ADMIN_HEADERS),
            ("POST", "/triage-jobs/batch", None, ADMIN_HEADERS),
            ("GET", "/health/ready", None, ADMIN_HEADERS),
        ]:
            down = client.request(method, path, json=body, headers=headers)
            assert down.status_code == 503, (path, down.text)
            problem = down.json()
            assert problem["code"] == "database_unavailable"
            assert problem["title"] == "The database is unavailable"
            assert down.headers["retry-after"].isdigit()
            assert str(server.port) not in down.text and "psycopg" not in down.text.lower()
        assert client.get("/health/live").status_code == 200

        server.start()  # same data, same port; the API process is not restarted
        retried, failures = until_ok(lambda: client.post("/tickets", json=ticket_body("DURING")))
        assert retried.status_code == 201 and failures <= 1
        assert client.post("/tickets", json=ticket_body("AFTER"), headers=owner_headers).status_code == 201
        assert client.get("/health/ready").status_code == 200
    container.close()
    check = Container(Settings(), database_url=url)
    try:
        assert count(check, "SELECT count(*) FROM tickets") == 3  # BEFORE, DURING (retried), AFTER
        assert count(check, "SELECT count(*) FROM triage_jobs") == 3
    finally:
        check.close()


def test_database_restart_during_triage_loses_no_ticket_once_recovery_runs(
    server: EmbeddedPostgres, url: str, fake_ollama: FakeOllama
) -> None:
    llm = OllamaClient(fake_ollama.url, "fake-model", connect_timeout_s=1.0, read_timeout_s=10.0)
    container = Container(Settings(), database_url=url, llm=llm)
    try:
        items = [
            NewTicket(DEFAULT_OWNER_ID, f"DB-{i}", "Checkout broken", f"The pay button fails {i}.") for i in range(6)
        ]
        container.use(CreateTickets).execute(CreateTicketsCommand(items))
        created = container.use(CreateBatch).execute(CreateBatchCommand())
        assert created is not None
        fake_ollama.latency_s = 1.5  # the calls are in flight when the database goes away
        errors: list[BaseException] = []

        def run() -> None:
            try:
                container.use(TriageJobs).execute(
                    TriageJobsCommand(list(created.job_ids), created.batch.id, concurrency=3)
                )
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 20
        while fake_ollama.chat_count < 3:
            assert time.monotonic() < deadline, "the LLM calls never started"
            time.sleep(0.05)
        server.stop()
        worker.join(timeout=60)
        assert not worker.is_alive()
        assert errors, "recording the attempts must have failed while the database was down"
        server.start()

        # The jobs the dead database could not record stay RUNNING until their lease ends; recovery then
        # counts them as failed attempts and closes the batch, and the next batch completes every ticket.
        running = count(container, "SELECT count(*) FROM triage_jobs WHERE status = 'RUNNING'")
        assert running >= 1
        time.sleep(1.1)
        fake_ollama.latency_s = 0.0
        report = container.use(RecoverStuckWork).execute(RecoverCommand(lease=timedelta(seconds=1)))
        assert report.jobs_recovered == running and report.batches_finished == 1
        for _ in range(2):
            again = container.use(CreateBatch).execute(CreateBatchCommand())
            if again is None:
                break
            container.use(TriageJobs).execute(TriageJobsCommand(list(again.job_ids), again.batch.id))
            container.use(FinishBatch).execute(FinishBatchCommand(again.batch.id))
        assert count(container, "SELECT count(*) FROM tickets WHERE status = 'COMPLETED'") == 6
        assert count(container, "SELECT count(*) FROM triage_job_logs WHERE outcome = 'SUCCEEDED'") == 6
        assert count(container, "SELECT count(DISTINCT job_id) FROM triage_job_logs WHERE outcome = 'SUCCEEDED'") == 6
        assert count(container, "SELECT count(*) FROM triage_job_batches WHERE status = 'RUNNING'") == 0
    finally:
        container.close()
