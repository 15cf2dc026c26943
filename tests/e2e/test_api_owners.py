"""POST /owners and GET /owners/{id}."""

from datetime import datetime
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.e2e.test_api_tickets import assert_problem
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID


def test_create_owner_returns_201_and_it_can_be_read_back(client: TestClient) -> None:
    response = client.post("/owners", json={"name": "Acme <Support>"})
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"id", "name", "created_at", "updated_at", "api_key", "api_key_id"}
    assert created["name"] == "Acme <Support>"
    assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None
    assert response.headers["location"] == f"/owners/{created['id']}"
    fetched = client.get(f"/owners/{created['id']}")
    assert fetched.status_code == 200
    key = created.pop("api_key"), created.pop("api_key_id")  # the key is shown once, at creation only
    assert fetched.json() == created
    assert str(key[0]) not in fetched.text


def test_default_owner_exists(client: TestClient) -> None:
    assert client.get(f"/owners/{DEFAULT_OWNER_ID}").status_code == 200


def test_unknown_owner_answers_404(client: TestClient) -> None:
    assert_problem(client.get(f"/owners/{uuid4()}"), 404, "not_found")


def test_owner_id_that_is_not_a_uuid_answers_422(client: TestClient) -> None:
    assert_problem(client.get("/owners/acme"), 422, "validation_error")


@pytest.mark.parametrize(
    ("payload", "error_type"),
    [
        ({"name": ""}, "string_too_short"),
        ({"name": "n" * 201}, "string_too_long"),
        ({"name": "a\x00b"}, "nul_character"),
        ({}, "missing"),
        ({"name": "ok", "plan": "gold"}, "extra_forbidden"),
    ],
)
def test_invalid_owner_answers_422(client: TestClient, payload: dict[str, object], error_type: str) -> None:
    body = assert_problem(client.post("/owners", json=payload), 422, "validation_error")
    assert [e["type"] for e in body["errors"]] == [error_type]
