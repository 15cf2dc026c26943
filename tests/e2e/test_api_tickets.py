"""POST /tickets and the ticket reads (detail, list, logs) over HTTP on the real PostgreSQL."""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.e2e.conftest import ticket_body
from tests.unit.fakes import FakeLlm
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand, FinishBatch, FinishBatchCommand
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.llm_errors import LlmTimeout
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID

PROBLEM = "application/problem+json"
TICKET_FIELDS = {
    "id",
    "title",
    "description",
    "external_id",
    "owner_id",
    "triage_status",
    "review_status",
    "confidence",
    "created_at",
    "updated_at",
}


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem+json of this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert {"type", "title", "status", "detail", "instance", "code"} <= body.keys()
    assert (body["status"], body["code"]) == (status, code)
    assert body["request_id"] == response.headers["x-request-id"]
    return body  # type: ignore[no-any-return]


def triage(container: Container, *, fail: bool = False) -> None:
    """Run one batch through the triage use case with a fake LLM."""
    created = container.use(CreateBatch).execute(CreateBatchCommand())
    assert created is not None
    use_case = TriageOneJob(
        container.uow, FakeLlm(LlmTimeout("read timed out")) if fail else FakeLlm(), container.clock
    )
    for job_id in created.job_ids:
        use_case.execute(TriageJobCommand(job_id, created.batch.id))
    container.use(FinishBatch).execute(FinishBatchCommand(created.batch.id))


# --- POST /tickets ---------------------------------------------------------------------------------------------


def test_create_ticket_returns_201_with_exactly_the_ticket_fields(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    response = client.post("/tickets", json=ticket_body("ZD-1"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == TICKET_FIELDS
    assert body["external_id"] == "ZD-1"
    assert body["owner_id"] == str(DEFAULT_OWNER_ID)
    assert body["triage_status"] == "PENDING"
    for field in ("created_at", "updated_at"):
        assert datetime.fromisoformat(body[field]).utcoffset() is not None
    assert response.headers["location"] == f"/tickets/{body['id']}"
    assert (count_rows("tickets"), count_rows("triage_jobs")) == (1, 1)


def test_create_ticket_for_an_existing_owner(client: TestClient) -> None:
    owner_id = client.post("/owners", json={"name": "Acme"}).json()["id"]
    response = client.post("/tickets", json=ticket_body(owner_id=owner_id))
    assert response.status_code == 201
    assert response.json()["owner_id"] == owner_id


def test_duplicate_ticket_answers_409_with_the_existing_id_and_adds_nothing(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    first = client.post("/tickets", json=ticket_body("ZD-1")).json()
    response = client.post("/tickets", json=ticket_body("ZD-1", title="A retry"))
    body = assert_problem(response, 409, "duplicate_ticket")
    assert body["existing_id"] == first["id"]
    assert response.headers["location"] == f"/tickets/{first['id']}"
    assert (count_rows("tickets"), count_rows("triage_jobs")) == (1, 1)


def test_same_external_id_under_another_owner_is_a_new_ticket(client: TestClient) -> None:
    owner_id = client.post("/owners", json={"name": "Acme"}).json()["id"]
    assert client.post("/tickets", json=ticket_body("ZD-1")).status_code == 201
    assert client.post("/tickets", json=ticket_body("ZD-1", owner_id=owner_id)).status_code == 201


def test_unknown_owner_answers_422_unknown_owner_naming_owner_id(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    body = assert_problem(client.post("/tickets", json=ticket_body(owner_id=str(uuid4()))), 422, "unknown_owner")
    assert [e["field"] for e in body["errors"]] == ["owner_id"]
    assert count_rows("tickets") == 0


@pytest.mark.parametrize(
    ("overrides", "field", "error_type"),
    [
        ({"title": "x" * 301}, "title", "string_too_long"),
        ({"title": ""}, "title", "string_too_short"),
        ({"description": "x" * 20_001}, "description", "string_too_long"),
        ({"external_id": "x" * 201}, "external_id", "string_too_long"),
        ({"external_id": "line\nbreak"}, "external_id", "control_character"),
        ({"title": 42}, "title", "string_type"),
        ({"owner_id": "not-a-uuid"}, "owner_id", "uuid_parsing"),
        ({"owner_id": None}, "owner_id", "uuid_type"),
        ({"priority": "high"}, "priority", "extra_forbidden"),
    ],
)
def test_invalid_field_answers_422_naming_the_field(
    client: TestClient, overrides: dict[str, Any], field: str, error_type: str, count_rows: Callable[[str], int]
) -> None:
    body = assert_problem(client.post("/tickets", json=ticket_body(**overrides)), 422, "validation_error")
    assert [(e["field"], e["type"]) for e in body["errors"]] == [(field, error_type)]
    assert count_rows("tickets") == 0


def test_missing_fields_are_each_named(client: TestClient) -> None:
    body = assert_problem(client.post("/tickets", json={"title": "only a title"}), 422, "validation_error")
    assert sorted(e["field"] for e in body["errors"]) == ["description", "external_id"]


def test_fields_at_their_maximum_length_are_accepted(client: TestClient) -> None:
    body = ticket_body("x" * 200, title="t" * 300, description="d" * 20_000)
    response = client.post("/tickets", json=body)
    assert response.status_code == 201
    stored = client.get(f"/tickets/{response.json()['id']}").json()
    assert (len(stored["external_id"]), len(stored["title"]), len(stored["description"])) == (200, 300, 20_000)


@pytest.mark.parametrize("field", ["title", "description", "external_id"])
def test_nul_byte_is_rejected_with_a_clear_422(
    client: TestClient, field: str, count_rows: Callable[[str], int]
) -> None:
    payload = ticket_body("E1")
    payload[field] = "a\x00b"
    body = assert_problem(client.post("/tickets", json=payload), 422, "validation_error")
    [error] = body["errors"]
    assert error["field"] == field
    assert error["type"] == "nul_character"
    assert "NUL" in error["message"]
    assert count_rows("tickets") == 0


def test_unpaired_surrogate_is_rejected_with_422(client: TestClient) -> None:
    raw = b'{"title": "a\\ud800b", "description": "d", "external_id": "E1"}'
    response = client.post("/tickets", content=raw, headers={"content-type": "application/json"})
    body = assert_problem(response, 422, "validation_error")
    assert [(e["field"], e["type"]) for e in body["errors"]] == [("title", "string_unicode")]


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE tickets; --",
        "Robert'); DELETE FROM owners WHERE ('1'='1",
        "<script>alert('x')</script>",
        'emoji 🎫 and ünïcödé, "quotes" and \\backslashes\\ %s %(x)s {0}',
    ],
)
def test_hostile_looking_strings_are_stored_and_returned_verbatim(
    client: TestClient, text: str, count_rows: Callable[[str], int]
) -> None:
    created = client.post("/tickets", json=ticket_body(text[:200], title=text, description=text))
    assert created.status_code == 201, created.text
    stored = client.get(f"/tickets/{created.json()['id']}").json()
    assert (stored["title"], stored["description"], stored["external_id"]) == (text, text, text[:200])
    assert count_rows("owners") == 1 and count_rows("tickets") == 1


@pytest.mark.parametrize(
    "raw",
    [b'{"title": "x",', b"{title: 'x'}", b"not json at all", b'{"a": 1}}'],
)
def test_malformed_json_answers_400_malformed_json(client: TestClient, raw: bytes) -> None:
    response = client.post("/tickets", content=raw, headers={"content-type": "application/json"})
    assert_problem(response, 400, "malformed_json")


def test_body_that_is_not_utf8_answers_400_malformed_json(client: TestClient) -> None:
    response = client.post("/tickets", content=b'{"title": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize("payload", [[], "a string", 42, None])
def test_body_that_is_not_an_object_answers_422(client: TestClient, payload: object) -> None:
    assert_problem(client.post("/tickets", json=payload), 422, "validation_error")


def test_missing_body_answers_422_naming_the_body(client: TestClient) -> None:
    body = assert_problem(client.post("/tickets"), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["body"]


# --- GET /tickets/{id} -----------------------------------------------------------------------------------------


def test_ticket_detail_before_triage_has_null_triage_and_a_pending_job(client: TestClient) -> None:
    created = client.post("/tickets", json=ticket_body()).json()
    response = client.get(f"/tickets/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TICKET_FIELDS | {"triage", "job"}
    assert {k: body[k] for k in TICKET_FIELDS} == created
    assert body["triage"] is None
    assert body["job"] == {"status": "PENDING", "attempts": 0, "last_error": None}


def test_ticket_detail_after_triage_has_the_answer(client: TestClient, container: Container) -> None:
    ticket_id = client.post("/tickets", json=ticket_body()).json()["id"]
    triage(container)
    body = client.get(f"/tickets/{ticket_id}").json()
    assert body["triage_status"] == "COMPLETED"
    assert body["triage"] == {
        "category": "bug",
        "priority": "high",
        "sentiment": "negative",
        "language": "en",
        "summary": "Checkout fails.",
        "confidence": 0.9,
    }
    assert body["job"] == {"status": "DONE", "attempts": 1, "last_error": None}


def test_unknown_ticket_answers_404_not_found(client: TestClient) -> None:
    assert_problem(client.get(f"/tickets/{uuid4()}"), 404, "not_found")


def test_ticket_id_that_is_not_a_uuid_answers_422(client: TestClient) -> None:
    body = assert_problem(client.get("/tickets/42"), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["ticket_id"]


# --- GET /tickets/{id}/logs ------------------------------------------------------------------------------------


def test_logs_of_an_untriaged_ticket_are_empty(client: TestClient) -> None:
    ticket_id = client.post("/tickets", json=ticket_body()).json()["id"]
    response = client.get(f"/tickets/{ticket_id}/logs")
    assert response.status_code == 200
    assert response.json() == []


def test_logs_list_every_attempt_with_its_outcome(client: TestClient, container: Container) -> None:
    ticket_id = client.post("/tickets", json=ticket_body()).json()["id"]
    triage(container, fail=True)
    triage(container)
    logs = client.get(f"/tickets/{ticket_id}/logs").json()
    assert [(log["attempt"], log["outcome"], log["error_class"]) for log in logs] == [
        (1, "FAILED", "timeout"),
        (2, "SUCCEEDED", None),
    ]
    assert set(logs[1]) == {
        "attempt",
        "outcome",
        "prompt_version",
        "model",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "error_class",
        "error_message",
        "raw_output",
        "started_at",
        "finished_at",
        "example_ids",
        "confidence",
        "llm_host",
    }
    assert (logs[1]["model"], logs[1]["prompt_tokens"], logs[1]["completion_tokens"]) == ("fake-model", 10, 5)
    assert logs[1]["prompt_version"] == 1
    assert "read timed out" in logs[0]["error_message"]
    detail = client.get(f"/tickets/{ticket_id}").json()
    assert detail["job"]["attempts"] == 2


def test_logs_of_an_unknown_ticket_answer_404(client: TestClient) -> None:
    assert_problem(client.get(f"/tickets/{uuid4()}/logs"), 404, "not_found")


# --- GET /tickets ----------------------------------------------------------------------------------------------


def create_many(client: TestClient, n: int, **overrides: object) -> list[str]:
    """Create n tickets through the batch endpoint; their ids in order."""
    response = client.post("/tickets/batch", json=[ticket_body(f"T{i}", **overrides) for i in range(n)])
    assert response.status_code == 207
    return [r["ticket_id"] for r in response.json()["results"]]


def test_list_pages_through_every_ticket_once_newest_first(client: TestClient) -> None:
    ids = set(create_many(client, 25))
    seen: list[str] = []
    created_at: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/tickets", params=params)
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        seen += [t["id"] for t in page["items"]]
        created_at += [t["created_at"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 25 and set(seen) == ids
    assert [datetime.fromisoformat(c) for c in created_at] == sorted(
        (datetime.fromisoformat(c) for c in created_at), reverse=True
    )


def test_list_filters_by_status_and_owner(client: TestClient, container: Container) -> None:
    owner_id = client.post("/owners", json={"name": "Acme"}).json()["id"]
    create_many(client, 3)
    triage(container)
    other = client.post("/tickets", json=ticket_body("OTHER", owner_id=owner_id)).json()
    pending = client.get("/tickets", params={"status": "PENDING"}).json()["items"]
    assert [t["id"] for t in pending] == [other["id"]]
    assert len(client.get("/tickets", params={"status": "COMPLETED"}).json()["items"]) == 3
    mine = client.get("/tickets", params={"owner_id": owner_id}).json()
    assert [t["id"] for t in mine["items"]] == [other["id"]] and mine["next_cursor"] is None
    assert client.get("/tickets", params={"owner_id": owner_id, "status": "COMPLETED"}).json()["items"] == []


def test_list_of_nothing_is_an_empty_page(client: TestClient) -> None:
    assert client.get("/tickets").json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("cursor", ["not-a-cursor", "aGVsbG8=", "MjAyNi0wMS0wMXxub3QtYS11dWlk", "\x00"])
def test_bad_cursor_answers_400_invalid_cursor(client: TestClient, cursor: str) -> None:
    assert_problem(client.get("/tickets", params={"cursor": cursor}), 400, "invalid_cursor")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "DONE"}, "status"),
        ({"owner_id": "nope"}, "owner_id"),
    ],
)
def test_bad_query_parameter_answers_422_naming_it(client: TestClient, params: dict[str, object], field: str) -> None:
    body = assert_problem(client.get("/tickets", params=params), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == [field]


def test_ticket_ids_are_uuids(client: TestClient) -> None:
    created = client.post("/tickets", json=ticket_body()).json()
    assert UUID(created["id"]).version == 4
