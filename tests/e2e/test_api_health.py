"""Health probes, and the application built from the settings by its own lifespan."""

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.settings import get_settings


def test_liveness_is_ok(client: TestClient) -> None:
    response = client.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_checks_the_database(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})


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
