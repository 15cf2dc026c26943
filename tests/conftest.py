"""Shared fixtures: a real embedded PostgreSQL 17 for the whole session, migrated once."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from tests.support.fixtures import fake_ollama  # noqa: F401
from triage_pipeline.infrastructure.db.engine import make_engine
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres, free_port
from triage_pipeline.infrastructure.migrations import alembic_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Webhook signing secrets are sealed with this key in every process the tests start (the API, the CLI, the
# Dagster runs inherit the environment); a test of the missing key clears it on purpose.
os.environ.setdefault("WEBHOOK_SECRETS_KEY", "tRDE9Xl6ytqHxNv6g0kgyvJ4m8rTq8JxjBdvCP4bz4I=")
APP_TABLES = (
    "webhook_delivery_attempts",
    "webhook_deliveries",
    "webhook_events",
    "webhook_endpoints",
    "triage_examples",
    "example_seeds",
    "api_keys",
    "evaluation_runs",
    "triage_corrections",
    "prompt_activations",
    "triage_job_logs",
    "triage_job_batch_items",
    "triage_jobs",
    "triage_job_batches",
    "tickets",
    "pipeline_step_outputs",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked slow unless RUN_SLOW=1."""
    if os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; run with RUN_SLOW=1 (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A throwaway embedded PostgreSQL server for the test session."""
    server = EmbeddedPostgres(data_dir=tmp_path_factory.mktemp("pg"), port=free_port(), fast_unsafe=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg_server: EmbeddedPostgres) -> str:
    """URL of a freshly migrated database (TEST_DATABASE_URL overrides the embedded server)."""
    url = os.environ.get("TEST_DATABASE_URL") or pg_server.ensure_database("triage_test")
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The session's engine."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clean_db(engine: Engine) -> Engine:
    """The migrated database emptied of tickets, jobs, batches and logs (seeds kept)."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} CASCADE"))
        conn.execute(text("DELETE FROM prompts WHERE NOT (name = 'triage' AND version = 1)"))
        conn.execute(text("UPDATE prompts SET is_active = true WHERE name = 'triage' AND version = 1"))
        conn.execute(text("DELETE FROM owners WHERE id <> '00000000-0000-0000-0000-000000000000'"))
    return engine


@pytest.fixture
def uow_factory(clean_db: Engine) -> SqlUnitOfWorkFactory:
    """Units of work on the clean database."""
    return SqlUnitOfWorkFactory(clean_db)
