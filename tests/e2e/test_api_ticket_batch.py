"""POST /tickets/batch: one result per item in order, valid items created even when others fail."""

import json
from collections.abc import Callable
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import ticket_body
from tests.e2e.test_api_tickets import assert_problem
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID


def test_batch_reports_created_duplicate_and_invalid_items_in_request_order(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    existing = client.post("/tickets", json=ticket_body("OLD")).json()["id"]
    unknown_owner = str(uuid4())
    items: list[object] = [
        ticket_body("A"),
        ticket_body("OLD"),
        {"title": "no description", "external_id": "B"},
        ticket_body("C", owner_id=unknown_owner),
        "not an object",
        ticket_body("A", title="same key again in this request"),
        ticket_body("D", title="x" * 301, description="a\x00b"),
        ticket_body("E"),
    ]
    response = client.post("/tickets/batch", json=items)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "CREATED"),
        (1, "DUPLICATE"),
        (2, "INVALID"),
        (3, "INVALID"),
        (4, "INVALID"),
        (5, "DUPLICATE"),
        (6, "INVALID"),
        (7, "CREATED"),
    ]
    created_a = results[0]
    assert set(created_a) == {"index", "status", "ticket_id", "external_id", "owner_id"}
    assert (created_a["external_id"], created_a["owner_id"]) == ("A", str(DEFAULT_OWNER_ID))
    assert results[1]["ticket_id"] == existing
    assert results[5]["ticket_id"] == created_a["ticket_id"]
    assert [(e["field"], e["type"]) for e in results[2]["errors"]] == [("description", "missing")]
    assert results[2]["external_id"] == "B"
    assert [(e["field"], e["type"]) for e in results[3]["errors"]] == [("owner_id", "unknown_owner")]
    assert results[3]["owner_id"] == unknown_owner
    assert [e["field"] for e in results[4]["errors"]] == ["item"]
    assert results[4]["external_id"] is None
    assert sorted((e["field"], e["type"]) for e in results[6]["errors"]) == [
        ("description", "nul_character"),
        ("title", "string_too_long"),
    ]
    assert (count_rows("tickets"), count_rows("triage_jobs")) == (3, 3)
    assert client.get(f"/tickets/{results[7]['ticket_id']}").json()["external_id"] == "E"


def test_invalid_item_does_not_echo_its_invalid_fields(client: TestClient) -> None:
    results = client.post("/tickets/batch", json=[ticket_body("x" * 201, owner_id="nope")]).json()["results"]
    assert results[0]["status"] == "INVALID"
    assert (results[0]["external_id"], results[0]["owner_id"]) == (None, None)


def test_all_invalid_batch_stores_nothing(client: TestClient, count_rows: Callable[[str], int]) -> None:
    response = client.post("/tickets/batch", json=[{}, {"title": ""}])
    assert response.status_code == 207
    assert [r["status"] for r in response.json()["results"]] == ["INVALID", "INVALID"]
    assert count_rows("tickets") == 0


def test_empty_batch_returns_no_results(client: TestClient) -> None:
    response = client.post("/tickets/batch", json=[])
    assert response.status_code == 207
    assert response.json() == {"results": []}


def test_batch_of_a_thousand_items_is_accepted_and_a_ticket_never_lacks_its_job(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    response = client.post("/tickets/batch", json=[ticket_body(f"T{i}") for i in range(1_000)])
    assert response.status_code == 207
    assert {r["status"] for r in response.json()["results"]} == {"CREATED"}
    assert (count_rows("tickets"), count_rows("triage_jobs")) == (1_000, 1_000)


def test_batch_of_1001_items_answers_413_and_stores_nothing(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    response = client.post("/tickets/batch", json=[ticket_body(f"T{i}") for i in range(1_001)])
    body = assert_problem(response, 413, "too_many_items")
    assert body["max_items"] == 1_000
    assert count_rows("tickets") == 0


def test_batch_resent_after_a_failure_reports_duplicates_not_errors(client: TestClient) -> None:
    items = [ticket_body(f"T{i}") for i in range(3)]
    first = client.post("/tickets/batch", json=items).json()["results"]
    second = client.post("/tickets/batch", json=items).json()["results"]
    assert [r["status"] for r in second] == ["DUPLICATE"] * 3
    assert [r["ticket_id"] for r in second] == [r["ticket_id"] for r in first]


@pytest.mark.parametrize("payload", [{"items": []}, ticket_body(), "text", 3, None])
def test_batch_body_that_is_not_a_list_answers_422(client: TestClient, payload: object) -> None:
    body = assert_problem(client.post("/tickets/batch", json=payload), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["body"]


def test_batch_with_malformed_json_answers_400(client: TestClient) -> None:
    raw = json.dumps([ticket_body()])[:-2]
    response = client.post("/tickets/batch", content=raw, headers={"content-type": "application/json"})
    assert_problem(response, 400, "malformed_json")
