"""Concurrency over a real uvicorn: racing duplicate intake, and racing batch creation (API against schedule)."""

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance, build_schedule_context
from sqlalchemy import text

from tests.e2e.conftest import ticket_body
from tests.support.auth import ADMIN_API_KEY, ADMIN_HEADERS, bearer
from tests.support.fake_ollama import FakeOllama
from tests.support.live_server import live_api
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.bootstrap import Container
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.schedules import build_triage_schedule
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def container(database_url: str, clean_db: object) -> Iterator[Container]:
    built = Container(Settings(admin_api_key=ADMIN_API_KEY), database_url=database_url)
    yield built
    built.close()


@pytest.fixture
def api(container: Container) -> Iterator[httpx.Client]:
    """An HTTP client of the API served by uvicorn, pooled for many threads."""
    with (
        live_api(container) as url,
        httpx.Client(
            base_url=url, headers=ADMIN_HEADERS, timeout=30, limits=httpx.Limits(max_connections=64)
        ) as client,
    ):
        yield client


def query(container: Container, sql: str) -> list[Any]:
    with container.uow() as uow:
        return list(uow.session.execute(text(sql)))


def test_200_concurrent_posts_sharing_external_ids_create_one_ticket_per_owner_and_id_and_409_the_rest(
    api: httpx.Client, container: Container
) -> None:
    owners = [api.post("/owners", json={"name": f"Tenant {n}"}).json() for n in range(2)]
    tenants = [(owner["id"], bearer(owner["api_key"])) for owner in owners] + [(str(DEFAULT_OWNER_ID), ADMIN_HEADERS)]
    rng = random.Random(7)
    requests = [(rng.randrange(len(tenants)), f"DUP-{rng.randrange(15)}") for _ in range(200)]
    start = threading.Barrier(50)

    def post(request: tuple[int, str]) -> tuple[int, str, int, dict[str, Any]]:
        tenant, external_id = request
        headers = tenants[tenant][1]
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=0.5)  # requests leave in waves of 50
        response = api.post("/tickets", json=ticket_body(external_id), headers=headers)
        return tenant, external_id, response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(post, requests))

    statuses = Counter(status for _, _, status, _ in results)
    assert set(statuses) <= {201, 409}, statuses  # no 5xx, nothing else
    distinct = {(tenant, external_id) for tenant, external_id in requests}
    assert statuses[201] == len(distinct) and statuses[409] == 200 - len(distinct)
    created = {(t, e): body["id"] for t, e, status, body in results if status == 201}
    assert len(created) == len(distinct)  # exactly one 201 per (owner, external_id)
    for tenant, external_id, status, body in results:
        if status == 409:
            assert body["code"] == "duplicate_ticket"
            assert body["existing_id"] == created[(tenant, external_id)]
    [(tickets, keys, jobs)] = query(
        container,
        "SELECT count(*), count(DISTINCT (owner_id, external_id)), (SELECT count(*) FROM triage_jobs) FROM tickets",
    )
    assert tickets == keys == jobs == len(distinct)


def test_batches_created_at_the_same_moment_by_the_api_and_the_schedule_never_share_a_job(
    api: httpx.Client, container: Container, database_url: str, fake_ollama: FakeOllama
) -> None:
    items = [NewTicket(DEFAULT_OWNER_ID, f"R-{i}", "Checkout broken", "The pay button fails.") for i in range(600)]
    container.use(CreateTickets).execute(CreateTicketsCommand(items))
    schedule = build_triage_schedule(Settings(batch_max_items=150))
    # An LLM host that answers: the schedule creates no batch while none does.
    services = TriageServices(database=DatabaseResource(url=database_url), llm=LlmResource(base_url=fake_ollama.url))
    rounds = 3
    barrier = threading.Barrier(4)

    def from_api() -> None:
        for _ in range(rounds):
            barrier.wait(timeout=30)
            response = api.post("/triage-jobs/batch", json={"max_items": 150})
            assert response.status_code == 202

    def from_schedule() -> None:
        with DagsterInstance.ephemeral() as instance:
            for _ in range(rounds):
                barrier.wait(timeout=30)
                with build_schedule_context(instance=instance, resources={"services": services}) as context:
                    schedule.evaluate_tick(context)

    threads = [threading.Thread(target=f) for f in (from_api, from_api, from_schedule, from_schedule)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    [(claimed, distinct_jobs, batches)] = query(
        container,
        "SELECT count(*), count(DISTINCT job_id), count(DISTINCT batch_id) FROM triage_job_batch_items",
    )
    assert claimed == distinct_jobs == 600  # every job claimed once, none twice
    assert batches == 4  # 600 jobs in batches of 150; the other 8 creations found nothing eligible
    origins = dict(query(container, "SELECT origin, count(*) FROM triage_job_batches GROUP BY origin"))
    assert set(origins) <= {"api", "schedule"} and sum(origins.values()) == 4
    mismatched = query(
        container,
        "SELECT count(*) FROM triage_jobs j JOIN triage_job_batch_items i ON i.job_id = j.id "
        "WHERE j.batch_id IS DISTINCT FROM i.batch_id",
    )
    assert mismatched == [(0,)]
