"""Hostile bodies: deeply nested JSON is refused clearly (never a 500, never stored); hostile names are stored
verbatim and only ever returned JSON-encoded. (Size limits, invalid UTF-8, NUL bytes and hostile ticket text
are covered in test_api_errors.py and test_api_tickets.py.)"""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.support.auth import bearer


def arrays(depth: int) -> str:
    return "[" * depth + '"x"' + "]" * depth


def objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


TICKET = '{{"title": "t", "external_id": "N-1", "description": {}}}'
DEEP_BODIES = [
    ("POST", "/tickets", arrays(500_000)),  # past the parser's recursion limit: not JSON we can read
    ("POST", "/tickets", arrays(3_000)),
    ("POST", "/tickets", TICKET.format(objects(3_000))),
    ("POST", "/tickets/batch", arrays(500_000)),
    ("POST", "/tickets/batch", "[" + objects(3_000) + "]"),
    ("POST", "/owners", '{"name": ' + objects(5_000) + "}"),
    ("POST", "/api-keys", '{"role": "admin", "name": ' + arrays(5_000) + "}"),
    ("POST", "/triage-jobs/batch", '{"max_items": ' + arrays(5_000) + "}"),
    ("POST", "/prompts", '{"system_text": "s", "user_template": "{ticket}", "model_options": ' + objects(900) + "}"),
]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    DEEP_BODIES,
    ids=[f"{m} {p} {len(b)}B" for m, p, b in DEEP_BODIES],
)
def test_deeply_nested_json_is_refused_clearly_and_stores_nothing(
    client: TestClient, count_rows: Callable[[str], int], method: str, path: str, body: str
) -> None:
    owners_before = count_rows("owners")
    response = client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 207, 422), response.text[:300]
    assert response.headers["content-type"].startswith(("application/problem+json", "application/json"))
    assert len(response.content) < 10_000  # the nesting is not echoed back
    if response.status_code == 207:
        assert {r["status"] for r in response.json()["results"]} == {"INVALID"}
    else:
        assert response.json()["code"] in ("malformed_json", "validation_error")
    assert count_rows("tickets") == 0 and count_rows("owners") == owners_before
    assert client.get("/health/ready").status_code == 200  # the service is still fine


HOSTILE = [
    "<script>alert('x')</script>",
    "'; DROP TABLE api_keys; --",
    "Robert'); DELETE FROM owners WHERE ('1'='1",
    "{{7*7}} ${jndi:ldap://x} %s%s%n",
    "\u202eevil\u202c \U0001f600 é",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_owner_and_key_names_are_stored_verbatim_and_returned_as_json(
    client: TestClient, count_rows: Callable[[str], int], name: str
) -> None:
    owner = client.post("/owners", json={"name": name})
    assert owner.status_code == 201 and owner.headers["content-type"] == "application/json"
    assert owner.json()["name"] == name
    assert client.get(f"/owners/{owner.json()['id']}", headers=bearer(owner.json()["api_key"])).json()["name"] == name
    key = client.post("/api-keys", json={"role": "owner", "owner_id": owner.json()["id"], "name": name})
    assert key.status_code == 201 and key.json()["name"] == name
    # Reflected only inside JSON strings, with headers that stop a browser from rendering it as HTML.
    assert owner.headers["x-content-type-options"] == "nosniff"
    assert owner.headers["cache-control"] == "no-store"  # the body holds a key
    assert count_rows("api_keys") >= 2 and count_rows("owners") >= 2  # no statement was executed from the input
