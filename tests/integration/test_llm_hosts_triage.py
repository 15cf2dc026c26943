"""The real triage use cases over an LLM host pool on PostgreSQL: every attempt's log names the host that
answered, a host refusing connections costs no attempt, and an outage of every host fails attempts that do
not count against the job's three."""

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.support.fake_ollama import FakeOllama
from tests.support.ports import distinct_free_ports
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.llm_hosts import CheckLlmHosts, LlmHostsQuery
from triage_pipeline.application.triage import TriageJobs, TriageJobsCommand
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def second_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


def container_on(database_url: str, llm_base_url: str) -> Container:
    """The container as the service builds it: its LLM is the host pool of LLM_BASE_URL."""
    settings = Settings(llm_base_url=llm_base_url, llm_model="fake-model", llm_connect_timeout_s=1.0)
    return Container(settings, database_url=database_url)


def triage_tickets(container: Container, n: int) -> None:
    container.use(CreateTickets).execute(
        CreateTicketsCommand(
            [NewTicket(DEFAULT_OWNER_ID, f"H-{i}", f"Ticket {i}", "How do I export?") for i in range(n)]
        )
    )
    created = container.use(CreateBatch).execute(CreateBatchCommand())
    assert created is not None
    container.use(TriageJobs).execute(TriageJobsCommand(list(created.job_ids), created.batch.id, concurrency=6))


def rows(container: Container, sql: str) -> list[tuple[object, ...]]:
    with container.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_a_batch_over_two_hosts_logs_the_host_of_each_attempt_and_skips_a_refusing_one(
    database_url: str, clean_db: object, fake_ollama: FakeOllama, second_ollama: FakeOllama
) -> None:
    fake_ollama.latency_s = second_ollama.latency_s = 0.02
    dead = f"http://127.0.0.1:{free_port()}"
    container = container_on(database_url, f"{fake_ollama.url}#4,{dead}#4,{second_ollama.url}#2")
    try:
        triage_tickets(container, 30)

        logs = rows(container, "SELECT outcome, llm_host FROM triage_job_logs")
        jobs = rows(container, "SELECT status, attempts FROM triage_jobs")
    finally:
        container.close()

    assert Counter(jobs) == {("DONE", 1): 30}
    assert Counter(host for _, host in logs) == {
        fake_ollama.url: fake_ollama.chats_answered,
        second_ollama.url: second_ollama.chats_answered,
    }
    assert fake_ollama.chats_answered > second_ollama.chats_answered > 0
    assert {outcome for outcome, _ in logs} == {"SUCCEEDED"}


def test_when_no_host_is_reached_the_attempts_are_logged_but_not_counted(database_url: str, clean_db: object) -> None:
    first, second = distinct_free_ports(2)
    container = container_on(database_url, f"http://127.0.0.1:{first},http://127.0.0.1:{second}")
    try:
        triage_tickets(container, 3)

        logs = rows(container, "SELECT error_class FROM triage_job_logs")
        jobs = rows(container, "SELECT status, attempts FROM triage_jobs")
    finally:
        container.close()

    assert logs == [("unreached",)] * 3
    assert jobs == [("FAILED", 0)] * 3  # eligible again at once, with all three attempts left


def test_checking_the_hosts_tells_those_that_answer_from_those_that_do_not_without_a_triage_call(
    database_url: str, fake_ollama: FakeOllama
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    container = container_on(database_url, f"{dead}#2,{fake_ollama.url}#4")
    try:
        first = container.use(CheckLlmHosts).execute(LlmHostsQuery())
        again = container.use(CheckLlmHosts).execute(LlmHostsQuery())
    finally:
        container.close()

    assert (first.up, first.down, first.any_up) == ((fake_ollama.url,), (dead,), True)
    assert again == first
    assert (fake_ollama.request_count, fake_ollama.chat_count) == (1, 0)  # one GET /api/version, cached since
