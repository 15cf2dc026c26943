"""Cross-cutting behaviour: problem+json everywhere, request ids, body size limit, 500 and 503 mapping."""

import asyncio
import json
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.dependencies import use_case_dependency
from api.main import create_app
from api.middleware import MAX_BODY_BYTES
from tests.e2e.conftest import ticket_body
from tests.e2e.test_api_tickets import assert_problem
from tests.support.auth import ADMIN_API_KEY, ADMIN_HEADERS
from triage_pipeline.application.ticket_queries import GetTicket
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.logging import JsonFormatter
from triage_pipeline.infrastructure.settings import Settings

# --- request ids ------------------------------------------------------------------------------------------------


def test_every_response_carries_a_generated_request_id(client: TestClient) -> None:
    ok = client.get("/health/live")
    failed = client.get("/tickets/not-a-uuid")
    ids = {ok.headers["x-request-id"], failed.headers["x-request-id"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert failed.json()["request_id"] == failed.headers["x-request-id"]


def test_a_sane_incoming_request_id_is_kept_and_a_hostile_one_replaced(client: TestClient) -> None:
    kept = client.get("/health/live", headers={"X-Request-ID": "tool-42.abc_DEF:1"})
    assert kept.headers["x-request-id"] == "tool-42.abc_DEF:1"
    replaced = client.get("/health/live", headers={"X-Request-ID": "x" * 500})
    assert replaced.headers["x-request-id"] != "x" * 500


def test_requests_are_logged_with_their_request_id(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    response = client.get("/health/live", headers={"X-Request-ID": "trace-me"})
    [record] = [r for r in caplog.records if r.name == "api.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "trace-me" == response.headers["x-request-id"]
    assert (line["method"], line["path"], line["status"]) == ("GET", "/health/live", 200)


# --- routing errors ---------------------------------------------------------------------------------------------


def test_unknown_route_answers_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/nope"), 404, "not_found")


def test_wrong_method_answers_405_problem_with_allow_header(client: TestClient) -> None:
    response = client.delete("/tickets")
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


def test_non_json_content_type_answers_422_problem(client: TestClient) -> None:
    response = client.post("/tickets", content=json.dumps(ticket_body()), headers={"content-type": "text/plain"})
    assert_problem(response, 422, "validation_error")


# --- body size limit --------------------------------------------------------------------------------------------


def test_body_larger_than_the_limit_by_content_length_answers_413(client: TestClient) -> None:
    response = client.post("/tickets", json=ticket_body(description="x" * (MAX_BODY_BYTES + 1)))
    body = assert_problem(response, 413, "payload_too_large")
    assert body["max_bytes"] == MAX_BODY_BYTES


def test_streamed_body_without_content_length_larger_than_the_limit_answers_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"x" * (1024 * 1024)

    response = client.post("/tickets/batch", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


def test_body_streamed_in_chunks_is_cut_off_once_past_the_limit(container: Container) -> None:
    app = create_app(container)
    chunk = b"x" * (512 * 1024)
    received: list[int] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        received.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}  # an endless body

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/tickets/batch",
        "raw_path": b"/tickets/batch",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert sum(received) <= MAX_BODY_BYTES + len(chunk)


def test_body_just_under_the_limit_is_accepted(client: TestClient) -> None:
    items = [ticket_body(f"T{i}", description="d" * 20_000) for i in range(100)]
    raw = json.dumps(items).encode()
    assert len(raw) < MAX_BODY_BYTES
    response = client.post("/tickets/batch", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 207


# --- unexpected failures ----------------------------------------------------------------------------------------


class _Exploding:
    def execute(self, command: object) -> object:
        raise RuntimeError("boom: SELECT secret FROM credentials")


def test_unexpected_failure_answers_500_without_internals_and_is_logged_with_the_request_id(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(container)
    app.dependency_overrides[use_case_dependency(GetTicket)] = _Exploding
    with TestClient(app, headers=ADMIN_HEADERS) as client:
        response = client.get("/tickets/00000000-0000-0000-0000-000000000001")
    body = assert_problem(response, 500, "internal_error")
    assert "boom" not in response.text and "SELECT" not in response.text and "Traceback" not in response.text
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert getattr(record, "request_id", None) == body["request_id"]
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


# --- database unavailable ---------------------------------------------------------------------------------------


@pytest.fixture
def dead_db_client() -> Iterator[TestClient]:
    """The API over a database nobody listens on."""
    container = Container(
        Settings(admin_api_key=ADMIN_API_KEY),
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere",
    )
    with TestClient(create_app(container), headers=ADMIN_HEADERS) as client:
        yield client
    container.close()


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/tickets", ticket_body()),
        ("POST", "/tickets/batch", [ticket_body()]),
        ("GET", "/tickets", None),
        ("GET", "/tickets/00000000-0000-0000-0000-000000000001", None),
        ("POST", "/owners", {"name": "Acme"}),
        ("POST", "/triage-jobs/batch", None),
        ("GET", "/health/ready", None),
    ],
)
def test_database_down_answers_503_database_unavailable(
    dead_db_client: TestClient, method: str, path: str, payload: object
) -> None:
    response = dead_db_client.request(method, path, json=payload)
    body = assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"].isdigit()
    assert "127.0.0.1" not in str(body) and "psycopg" not in response.text


def test_liveness_needs_no_database(dead_db_client: TestClient) -> None:
    assert dead_db_client.get("/health/live").status_code == 200


# --- the OpenAPI contract ---------------------------------------------------------------------------------------


def test_openapi_documents_the_limits_and_problem_responses(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ticket = schema["components"]["schemas"]["TicketCreate"]["properties"]
    assert (ticket["title"]["maxLength"], ticket["description"]["maxLength"], ticket["external_id"]["maxLength"]) == (
        300,
        20_000,
        200,
    )
    assert "pattern" in ticket["external_id"]
    batch = schema["paths"]["/tickets/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["maxItems"] == 1_000
    assert "1000" in batch["description"] and "1,000" in schema["info"]["description"]
    conflict = schema["paths"]["/tickets"]["post"]["responses"]["409"]["content"]
    assert list(conflict) == ["application/problem+json"]
