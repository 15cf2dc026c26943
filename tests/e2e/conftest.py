"""E2E fixtures: the API over a Container on the session's embedded PostgreSQL, emptied before each test."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from tests.support.auth import ADMIN_API_KEY, ADMIN_HEADERS
from tests.unit.fakes import FakeLlm
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def container(database_url: str, clean_db: Engine) -> Iterator[Container]:
    """A container on the clean test database, with a fake LLM and auth on (ADMIN_API_KEY); closed after the test."""
    settings = Settings(auth_enabled=True, admin_api_key=ADMIN_API_KEY)
    built = Container(settings, database_url=database_url, llm=FakeLlm())
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    """A test client of the API over `container` (lifespan run), sending the admin key."""
    with TestClient(create_app(container), headers=ADMIN_HEADERS) as test_client:
        yield test_client


@pytest.fixture
def count_rows(clean_db: Engine) -> Callable[[str], int]:
    """How many rows a table holds."""

    def count(table: str) -> int:
        with clean_db.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    return count


def ticket_body(external_id: str = "EXT-1", **overrides: Any) -> dict[str, Any]:
    """A valid POST /tickets body."""
    body: dict[str, Any] = {
        "title": f"Checkout fails ({external_id})",
        "description": "Every payment ends with an error page.",
        "external_id": external_id,
    }
    body.update(overrides)
    return body
