"""Health probes, and the application built from the settings by its own lifespan."""

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from tests.support.auth import ADMIN_API_KEY
from tests.support.fake_ollama import OLLAMA_VERSION, FakeOllama
from tests.unit.fakes import FakeLlm
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.llm.host_spec import LlmHostSpec
from triage_pipeline.infrastructure.settings import Settings, get_settings


def test_liveness_is_ok(client: TestClient) -> None:
    response = client.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_checks_the_database(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["database"]) == ("ok", "ok")


@pytest.fixture
def two_hosts_client(database_url: str, clean_db: object, fake_ollama: FakeOllama) -> Iterator[tuple[TestClient, str]]:
    """The API over a container whose LLM hosts are the fake Ollama (#4) and a port where nothing listens (#2)."""
    dead = f"http://127.0.0.1:{free_port()}"
    hosts = [LlmHostSpec(fake_ollama.url, 4), LlmHostSpec(dead, 2)]
    container = Container(
        Settings(auth_enabled=True, admin_api_key=ADMIN_API_KEY),
        database_url=database_url,
        llm=FakeLlm(),
        llm_hosts=hosts,
    )
    try:
        with TestClient(create_app(container)) as client:
            yield client, dead
    finally:
        container.close()


def test_readiness_reports_each_llm_host_and_stays_ready_while_one_is_down(
    two_hosts_client: tuple[TestClient, str], fake_ollama: FakeOllama
) -> None:
    client, dead = two_hosts_client

    response = client.get("/health/ready")

    assert response.status_code == 200  # an LLM host down does not take the API out of its load balancer
    body = response.json()
    assert (body["status"], body["database"], body["llm"]) == ("ok", "ok", "degraded")
    up, down = body["llm_hosts"]
    assert (up["url"], up["state"], up["concurrency"], up["version"], up["error"]) == (
        fake_ollama.url,
        "up",
        4,
        OLLAMA_VERSION,
        None,
    )
    assert (down["url"], down["state"], down["concurrency"], down["version"]) == (dead, "down", 2, None)
    assert "ConnectError" in down["error"]


def test_readiness_probes_the_llm_hosts_at_most_once_per_cache_period(
    two_hosts_client: tuple[TestClient, str], fake_ollama: FakeOllama
) -> None:
    client, _ = two_hosts_client

    bodies = [client.get("/health/ready").json() for _ in range(5)]

    assert fake_ollama.request_count == 1  # one GET /api/version for five readiness probes
    assert len({body["llm_hosts"][0]["checked_at"] for body in bodies}) == 1


def test_readiness_says_the_llm_is_down_when_no_host_answers(
    two_hosts_client: tuple[TestClient, str], fake_ollama: FakeOllama
) -> None:
    client, _ = two_hosts_client
    fake_ollama.stop()

    body = client.get("/health/ready").json()

    assert body["llm"] == "down"
    assert [host["state"] for host in body["llm_hosts"]] == ["down", "down"]


def test_openapi_documents_the_llm_hosts_of_readiness(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    assert {"llm", "llm_hosts"} <= set(schemas["Readiness"]["properties"])
    assert {"url", "state", "concurrency", "version", "error", "checked_at"} <= set(
        schemas["LlmHostHealth"]["properties"]
    )


def test_module_app_is_built_without_io() -> None:
    from api.main import app

    assert isinstance(app, FastAPI)
    assert not hasattr(app.state, "container")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo `configure_logging` (called by the app's own lifespan)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_app_without_a_container_builds_one_from_the_settings_and_closes_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url.replace("postgresql+psycopg://", "postgresql://"))
    closed: list[Container] = []
    original_close = Container.close

    def spy_close(self: Container) -> None:
        closed.append(self)
        original_close(self)

    monkeypatch.setattr(Container, "close", spy_close)
    get_settings.cache_clear()
    try:
        app = create_app()
        with TestClient(app) as client:
            assert client.get("/health/ready").status_code == 200
            container = app.state.container
            assert container.__dict__["_engine"] is not None  # resolved at startup, not by the first request
            assert closed == []
        assert closed == [container]
    finally:
        get_settings.cache_clear()
