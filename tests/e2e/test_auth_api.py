"""Who may do what: API keys over HTTP, tenant isolation, admin-only routes, keys stored as hashes only."""

import logging
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from tests.e2e.conftest import ticket_body
from tests.e2e.test_api_tickets import assert_problem
from tests.support.auth import ADMIN_API_KEY, bearer
from tests.unit.fakes import FakeLlm
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.settings import Settings

MISSING = "00000000-0000-4000-8000-00000000abcd"


@pytest.fixture
def anonymous(client: TestClient) -> TestClient:
    """A client of the same app that sends no key."""
    return TestClient(client.app)


def new_owner(client: TestClient, name: str = "Acme") -> tuple[str, dict[str, str]]:
    """(owner id, headers of its key)."""
    created = client.post("/owners", json={"name": name})
    assert created.status_code == 201, created.text
    return created.json()["id"], bearer(created.json()["api_key"])


def post_ticket(client: TestClient, headers: dict[str, str], external_id: str, **fields: Any) -> Any:
    return client.post("/tickets", json=ticket_body(external_id, **fields), headers=headers)


PROTECTED = [
    ("POST", "/tickets", ticket_body()),
    ("POST", "/tickets/batch", [ticket_body()]),
    ("GET", "/tickets", None),
    ("GET", f"/tickets/{MISSING}", None),
    ("GET", f"/tickets/{MISSING}/logs", None),
    ("POST", "/owners", {"name": "x"}),
    ("GET", f"/owners/{DEFAULT_OWNER_ID}", None),
    ("POST", "/triage-jobs/batch", None),
    ("GET", f"/triage-jobs/batches/{MISSING}", None),
    ("POST", "/api-keys", {"role": "admin"}),
    ("DELETE", f"/api-keys/{MISSING}", None),
    ("GET", "/prompts", None),
]


@pytest.mark.parametrize(("method", "path", "payload"), PROTECTED)
def test_request_without_a_key_answers_401_with_a_bearer_challenge(
    anonymous: TestClient, method: str, path: str, payload: object
) -> None:
    response = anonymous.request(method, path, json=payload)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer ",
        f"Bearer {ADMIN_API_KEY}x",
        f"bearer {ADMIN_API_KEY[:-1]}",
        "Bearer tt_0123456789abcdef_notasecret",
        "Bearer <script>alert(1)</script>",
        "Bearer ' OR 1=1 --",
    ],
)
def test_malformed_wrong_or_unknown_key_answers_401_without_echoing_it(
    anonymous: TestClient, authorization: str
) -> None:
    response = anonymous.get("/tickets", headers={"Authorization": authorization})
    body = assert_problem(response, 401, "unauthorized")
    token = authorization.partition(" ")[2]
    assert not token or token not in response.text
    assert body["detail"] == "Send a valid API key as `Authorization: Bearer <key>`."


def test_health_probes_and_the_openapi_document_need_no_key(anonymous: TestClient) -> None:
    assert anonymous.get("/health/live").status_code == 200
    assert anonymous.get("/health/ready").status_code == 200
    schema = anonymous.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert "401" in schema["paths"]["/tickets"]["post"]["responses"]
    assert "security" not in schema["paths"]["/health/live"]["get"]


def test_owner_key_creates_tickets_of_its_own_owner_when_owner_id_is_omitted(client: TestClient) -> None:
    owner_id, headers = new_owner(client)
    created = post_ticket(client, headers, "A-1")
    assert created.status_code == 201
    assert created.json()["owner_id"] == owner_id
    explicit = post_ticket(client, headers, "A-2", owner_id=owner_id)
    assert explicit.status_code == 201


@pytest.mark.parametrize("target", ["other", "default", "missing"])
def test_owner_key_cannot_create_a_ticket_for_another_owner_nor_learn_whether_it_exists(
    client: TestClient, target: str
) -> None:
    _, headers = new_owner(client, "Mine")
    other_id, _ = new_owner(client, "Theirs")
    owner_id = {"other": other_id, "default": str(DEFAULT_OWNER_ID), "missing": str(uuid4())}[target]
    response = post_ticket(client, headers, "X-1", owner_id=owner_id)
    body = assert_problem(response, 403, "forbidden")
    assert owner_id not in response.text
    assert body["detail"] == "an owner API key may only create tickets of its own owner."
    assert client.get("/tickets", params={"owner_id": owner_id}).json()["items"] == []


def test_owner_key_bulk_intake_refuses_items_of_other_owners_one_by_one(client: TestClient) -> None:
    mine, headers = new_owner(client, "Mine")
    other, _ = new_owner(client, "Theirs")
    items = [ticket_body("B-1"), ticket_body("B-2", owner_id=other), ticket_body("B-3", owner_id=mine)]
    response = client.post("/tickets/batch", json=items, headers=headers)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["CREATED", "INVALID", "CREATED"]
    assert results[1]["errors"][0]["type"] == "forbidden_owner"
    assert {r["owner_id"] for r in (results[0], results[2])} == {mine}
    assert client.get("/tickets", params={"owner_id": other}).json()["items"] == []


def test_another_owners_ticket_is_a_404_indistinguishable_from_a_missing_one(client: TestClient) -> None:
    _, alice = new_owner(client, "Alice")
    _, bob = new_owner(client, "Bob")
    ticket_id = post_ticket(client, alice, "SECRET-1").json()["id"]
    assert client.get(f"/tickets/{ticket_id}", headers=alice).status_code == 200
    for suffix in ("", "/logs"):
        foreign = client.get(f"/tickets/{ticket_id}{suffix}", headers=bob)
        missing_id = str(uuid4())
        missing = client.get(f"/tickets/{missing_id}{suffix}", headers=bob)
        foreign_body = assert_problem(foreign, 404, "not_found")
        missing_body = assert_problem(missing, 404, "not_found")
        assert "SECRET-1" not in foreign.text
        comparable = {"type", "title", "status", "code", "entity"}
        assert {k: foreign_body.get(k) for k in comparable} == {k: missing_body.get(k) for k in comparable}
        assert foreign_body["detail"].replace(ticket_id, "ID") == missing_body["detail"].replace(missing_id, "ID")


def test_owner_key_lists_only_its_own_tickets(client: TestClient) -> None:
    alice_id, alice = new_owner(client, "Alice")
    bob_id, bob = new_owner(client, "Bob")
    for i in range(3):
        post_ticket(client, alice, f"A-{i}")
    post_ticket(client, bob, "B-0")
    post_ticket(client, {}, "D-0")  # the admin client, default owner
    listed = client.get("/tickets", headers=alice).json()["items"]
    assert {t["owner_id"] for t in listed} == {alice_id} and len(listed) == 3
    assert client.get("/tickets", params={"owner_id": bob_id}, headers=alice).json()["items"] == []
    assert len(client.get("/tickets").json()["items"]) == 5  # the admin sees everyone's


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/owners", {"name": "x"}),
        ("POST", "/triage-jobs/batch", None),
        ("GET", f"/triage-jobs/batches/{MISSING}", None),
        ("POST", "/api-keys", {"role": "admin"}),
        ("DELETE", f"/api-keys/{MISSING}", None),
        ("GET", "/prompts", None),
    ],
)
def test_owner_key_on_an_admin_route_answers_403(client: TestClient, method: str, path: str, payload: object) -> None:
    _, headers = new_owner(client)
    assert_problem(client.request(method, path, json=payload, headers=headers), 403, "forbidden")


def test_owner_key_reads_its_own_owner_but_another_owner_is_a_404(client: TestClient) -> None:
    mine, headers = new_owner(client, "Mine")
    other, _ = new_owner(client, "Theirs")
    assert client.get(f"/owners/{mine}", headers=headers).json()["name"] == "Mine"
    assert_problem(client.get(f"/owners/{other}", headers=headers), 404, "not_found")


def test_keys_are_stored_only_as_salted_hashes(client: TestClient, clean_db: Engine) -> None:
    owner = client.post("/owners", json={"name": "Acme"}).json()
    admin = client.post("/api-keys", json={"role": "admin", "name": "ops"}).json()
    tokens = [owner["api_key"], admin["api_key"]]
    with clean_db.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
    dump = repr([dict(r) for r in rows])
    for token in tokens:
        secret = token.split("_", 2)[2]
        assert token not in dump and secret not in dump
    assert {r["role"] for r in rows} == {"owner", "admin"}
    assert all(len(r["secret_hash"]) == 64 and len(r["salt"]) == 32 for r in rows)


def test_issued_admin_key_manages_owners_and_a_revoked_key_is_refused_at_once(client: TestClient) -> None:
    issued = client.post("/api-keys", json={"role": "admin", "name": "ops"})
    assert issued.status_code == 201
    assert issued.headers["location"] == f"/api-keys/{issued.json()['id']}"
    headers = bearer(issued.json()["api_key"])
    assert client.post("/owners", json={"name": "By ops"}, headers=headers).status_code == 201
    revoked = client.delete(f"/api-keys/{issued.json()['id']}", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert "api_key" not in revoked.json()
    assert_problem(client.get("/tickets", headers=headers), 401, "unauthorized")
    assert_problem(client.delete(f"/api-keys/{issued.json()['id']}"), 409, "invalid_transition")


def test_owner_key_of_a_registered_owner_can_be_rotated(client: TestClient) -> None:
    owner = client.post("/owners", json={"name": "Acme"}).json()
    second = client.post("/api-keys", json={"role": "owner", "owner_id": owner["id"], "name": "rotation"}).json()
    client.delete(f"/api-keys/{owner['api_key_id']}")
    assert_problem(client.get("/tickets", headers=bearer(owner["api_key"])), 401, "unauthorized")
    assert client.get("/tickets", headers=bearer(second["api_key"])).status_code == 200


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"role": "owner", "owner_id": MISSING}, "unknown_owner"),
        ({"role": "owner"}, "validation_error"),
        ({"role": "admin", "owner_id": str(DEFAULT_OWNER_ID)}, "validation_error"),
        ({"role": "root"}, "validation_error"),
    ],
)
def test_invalid_key_request_answers_422(client: TestClient, payload: dict[str, object], code: str) -> None:
    assert_problem(client.post("/api-keys", json=payload), 422, code)


@pytest.fixture
def auth_off_client(database_url: str, clean_db: Engine, caplog: pytest.LogCaptureFixture) -> Iterator[TestClient]:
    container = Container(Settings(auth_enabled=False), database_url=database_url, llm=FakeLlm())
    caplog.set_level(logging.INFO)
    with TestClient(create_app(container)) as client:
        yield client
    container.close()


def test_auth_turned_off_serves_every_request_as_admin_and_warns_at_start(
    auth_off_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    started = caplog.get_records("setup")  # the app started in the fixture
    warnings = [r for r in started if r.levelno == logging.WARNING and "AUTH_ENABLED=false" in r.getMessage()]
    assert len(warnings) == 1
    assert auth_off_client.post("/owners", json={"name": "dev"}).status_code == 201
    assert auth_off_client.post("/tickets", json=ticket_body()).status_code == 201


def test_auth_on_is_the_default_setting() -> None:
    assert Settings(_env_file=None).auth_enabled is True  # type: ignore[call-arg]
