"""Webhook subscriptions over HTTP on the real PostgreSQL: CRUD, the secret shown once, tenant isolation, the SSRF
policy, bad input, a service without WEBHOOK_SECRETS_KEY, and a test event reaching a real receiver."""

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from tests.e2e.test_api_tickets import assert_problem
from tests.e2e.test_auth_api import new_owner
from tests.support.auth import ADMIN_API_KEY, ADMIN_HEADERS
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.unit.fakes import FakeLlm
from triage_pipeline.application.webhooks.delivery import DeliverCommand, DeliverDueWebhooks, DeliveryReport
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.webhook import EventType
from triage_pipeline.infrastructure.logging import JsonFormatter
from triage_pipeline.infrastructure.settings import Settings

PUBLIC_URL = "https://93.184.215.14/hooks/triage"
"""A public address literal: the SSRF policy accepts it without DNS (nothing is ever sent to it here)."""
MISSING = "00000000-0000-4000-8000-00000000abcd"
ENDPOINT_FIELDS = {
    "id",
    "owner_id",
    "url",
    "event_types",
    "description",
    "enabled",
    "disabled_reason",
    "consecutive_failures",
    "failing_since",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
}


def subscription(url: str = PUBLIC_URL, **overrides: Any) -> dict[str, Any]:
    """A valid POST /webhooks body."""
    body: dict[str, Any] = {"url": url, "event_types": ["ticket.triaged", "batch.done"], "description": "helpdesk"}
    body.update(overrides)
    return body


def subscribe(client: TestClient, headers: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """Create an endpoint (201) and return the response body, secret included."""
    created = client.post("/webhooks", json=subscription(**overrides), headers=headers)
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def app_client(container: Container) -> TestClient:
    return TestClient(create_app(container), headers=ADMIN_HEADERS)


def settings(**overrides: Any) -> Settings:
    return Settings(auth_enabled=True, admin_api_key=ADMIN_API_KEY, **overrides)


@pytest.fixture
def loopback(database_url: str, clean_db: Engine) -> Iterator[tuple[TestClient, Container]]:
    """An API that may subscribe loopback receivers (WEBHOOK_ALLOW_PRIVATE_TARGETS=true), and its container."""
    built = Container(
        settings(webhook_allow_private_targets=True, webhook_timeout_s=2.0), database_url=database_url, llm=FakeLlm()
    )
    try:
        with app_client(built) as test_client:
            yield test_client, built
    finally:
        built.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


def deliver(container: Container) -> DeliveryReport:
    return container.use(DeliverDueWebhooks).execute(DeliverCommand(time_budget=timedelta(seconds=20)))


def test_an_endpoint_is_created_read_listed_changed_and_deleted(client: TestClient) -> None:
    created = client.post("/webhooks", json=subscription(owner_id=str(DEFAULT_OWNER_ID)))

    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/webhooks/{body['id']}"
    assert body.keys() == ENDPOINT_FIELDS | {"secret"}
    assert body["url"] == PUBLIC_URL and body["owner_id"] == str(DEFAULT_OWNER_ID)
    assert body["event_types"] == ["ticket.triaged", "batch.done"]
    assert body["enabled"] is True and body["consecutive_failures"] == 0 and body["disabled_reason"] is None
    read = client.get(created.headers["location"])
    assert read.status_code == 200 and read.json() == {k: v for k, v in body.items() if k != "secret"}
    assert [e["id"] for e in client.get("/webhooks").json()["items"]] == [body["id"]]

    changed = client.patch(
        f"/webhooks/{body['id']}",
        json={"url": "https://93.184.215.14/v2", "event_types": ["ticket.corrected"], "description": "v2"},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["url"], changed.json()["event_types"], changed.json()["description"]) == (
        "https://93.184.215.14/v2",
        ["ticket.corrected"],
        "v2",
    )
    assert client.get(f"/webhooks/{body['id']}").json()["event_types"] == ["ticket.corrected"]

    deleted = client.delete(f"/webhooks/{body['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert assert_problem(client.get(f"/webhooks/{body['id']}"), 404, "not_found")["entity"] == "webhook"
    assert_problem(client.delete(f"/webhooks/{body['id']}"), 404, "not_found")
    assert client.get("/webhooks").json() == {"items": []}


def test_disabling_on_request_is_reported_and_enabling_clears_it(client: TestClient) -> None:
    endpoint = subscribe(client)

    disabled = client.patch(f"/webhooks/{endpoint['id']}", json={"enabled": False}).json()
    enabled = client.patch(f"/webhooks/{endpoint['id']}", json={"enabled": True}).json()

    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "disabled on request")
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["consecutive_failures"]) == (True, None, 0)
    assert enabled["url"] == PUBLIC_URL and enabled["event_types"] == endpoint["event_types"]


def test_the_secret_is_shown_at_creation_and_rotation_only_never_in_reads_or_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = subscribe(client)
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40

    read = client.get(f"/webhooks/{created['id']}")
    listed = client.get("/webhooks")
    rotated = client.post(f"/webhooks/{created['id']}/rotate-secret")

    assert "secret" not in read.json() and secret not in read.text
    assert all("secret" not in item for item in listed.json()["items"]) and secret not in listed.text
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["secret"].startswith("whsec_") and new["secret"] != secret
    valid_until = datetime.fromisoformat(new["previous_secret_valid_until"])
    assert timedelta(hours=23) < valid_until - datetime.now(UTC) <= timedelta(days=1)
    after = client.get(f"/webhooks/{created['id']}")
    assert datetime.fromisoformat(after.json()["previous_secret_expires_at"]) == valid_until
    assert new["secret"] not in after.text
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "request served" in logged  # the access log was captured
    assert secret not in logged and new["secret"] not in logged


def test_an_owner_key_sees_and_changes_only_its_own_endpoints(client: TestClient) -> None:
    owner_a, headers_a = new_owner(client, "A")
    owner_b, headers_b = new_owner(client, "B")
    mine = subscribe(client, headers_a)
    theirs = subscribe(client, headers_b)
    everyone = subscribe(client)  # an admin's, for every owner
    path = f"/webhooks/{mine['id']}"

    assert mine["owner_id"] == owner_a and theirs["owner_id"] == owner_b and everyone["owner_id"] is None
    for method, url, body in [
        ("GET", path, None),
        ("PATCH", path, {"enabled": False}),
        ("DELETE", path, None),
        ("POST", f"{path}/rotate-secret", None),
        ("POST", f"{path}/test", None),
        ("GET", f"{path}/deliveries", None),
        ("POST", f"{path}/events/{uuid4()}/redeliver", None),
        ("GET", f"/webhooks/{everyone['id']}", None),
    ]:
        response = client.request(method, url, json=body, headers=headers_b)
        assert_problem(response, 404, "not_found")
    assert [e["id"] for e in client.get("/webhooks", headers=headers_b).json()["items"]] == [theirs["id"]]
    assert [e["id"] for e in client.get("/webhooks", headers=headers_a).json()["items"]] == [mine["id"]]
    assert {e["id"] for e in client.get("/webhooks").json()["items"]} == {mine["id"], theirs["id"], everyone["id"]}
    untouched = client.get(path, headers=headers_a).json()
    assert untouched["enabled"] is True and untouched["previous_secret_expires_at"] is None


def test_an_owner_key_may_not_subscribe_to_all_owners_or_another_owner(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    owner_a, headers_a = new_owner(client, "A")
    owner_b, _ = new_owner(client, "B")

    everyone = client.post("/webhooks", json=subscription(owner_id=None), headers=headers_a)
    other = client.post("/webhooks", json=subscription(owner_id=owner_b), headers=headers_a)
    own = client.post("/webhooks", json=subscription(owner_id=owner_a), headers=headers_a)

    assert_problem(everyone, 403, "forbidden")
    assert_problem(other, 403, "forbidden")
    assert own.status_code == 201 and own.json()["owner_id"] == owner_a
    assert count_rows("webhook_endpoints") == 1


def test_an_admin_subscribes_to_all_owners_without_owner_id_and_an_unknown_owner_is_422(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    owner_a, _ = new_owner(client, "A")

    assert subscribe(client)["owner_id"] is None
    assert subscribe(client, owner_id=None)["owner_id"] is None
    assert subscribe(client, owner_id=owner_a)["owner_id"] == owner_a
    unknown = client.post("/webhooks", json=subscription(owner_id=MISSING))

    body = assert_problem(unknown, 422, "unknown_owner")
    assert [e["field"] for e in body["errors"]] == ["owner_id"]
    assert count_rows("webhook_endpoints") == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "ftp://example.com/",
        "https://user:pass@93.184.215.14/",
        "http://0/",
        "http://no-such-host.invalid/",
        "/relative/path",
    ],
)
def test_a_target_the_ssrf_policy_refuses_answers_422_and_stores_nothing(
    client: TestClient, count_rows: Callable[[str], int], url: str
) -> None:
    response = client.post("/webhooks", json=subscription(url=url))

    body = assert_problem(response, 422, "unsafe_webhook_target")
    assert body["title"] == "The webhook URL is not allowed"
    assert [(e["field"], e["type"]) for e in body["errors"]] == [("url", "unsafe_webhook_target")]
    assert count_rows("webhook_endpoints") == 0


def test_changing_the_url_to_a_refused_target_answers_422_and_keeps_the_old_one(client: TestClient) -> None:
    endpoint = subscribe(client)

    response = client.patch(f"/webhooks/{endpoint['id']}", json={"url": "http://169.254.169.254/latest"})

    assert_problem(response, 422, "unsafe_webhook_target")
    assert client.get(f"/webhooks/{endpoint['id']}").json()["url"] == PUBLIC_URL


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (subscription(event_types=[]), "event_types"),
        (subscription(event_types=["ticket.exploded"]), "event_types.0"),
        (subscription(event_types=["ping"]), "event_types.0"),
        (subscription(event_types="ticket.triaged"), "event_types"),
        (subscription(secret="whsec_mine"), "secret"),
        ({"event_types": ["batch.done"]}, "url"),
        (subscription(url="http://[::1/"), "url"),
        (subscription(url="http://93.184.215.14:99999/"), "url"),
        (subscription(url="https://93.184.215.14/\nX-Injected: 1"), "url"),
        (subscription(url="https://93.184.215.14/" + "a" * 2_000), "url"),
        (subscription(description="x" * 501), "description"),
        (subscription(description="nul \x00"), "description"),
        (subscription(owner_id="not-a-uuid"), "owner_id"),
    ],
)
def test_a_bad_subscription_answers_422_naming_the_field_and_stores_nothing(
    client: TestClient, count_rows: Callable[[str], int], body: dict[str, Any], field: str
) -> None:
    response = client.post("/webhooks", json=body)

    problem = assert_problem(response, 422, "validation_error")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert count_rows("webhook_endpoints") == 0


def test_bad_requests_on_every_endpoint_answer_4xx_and_change_nothing(client: TestClient) -> None:
    endpoint = subscribe(client)
    path = f"/webhooks/{endpoint['id']}"
    before = client.get(path).json()

    cases: list[tuple[str, str, Any, int, str]] = [
        ("PATCH", path, {}, 422, "validation_error"),
        ("PATCH", path, {"url": None}, 422, "validation_error"),
        ("PATCH", path, {"enabled": "maybe"}, 422, "validation_error"),
        ("PATCH", path, {"event_types": []}, 422, "validation_error"),
        ("PATCH", path, {"event_types": ["ping"]}, 422, "validation_error"),
        ("PATCH", path, {"owner_id": str(DEFAULT_OWNER_ID)}, 422, "validation_error"),
        ("PATCH", path, {"colour": "red"}, 422, "validation_error"),
        ("GET", "/webhooks/not-a-uuid", None, 422, "validation_error"),
        ("PATCH", "/webhooks/not-a-uuid", {"enabled": False}, 422, "validation_error"),
        ("DELETE", "/webhooks/not-a-uuid", None, 422, "validation_error"),
        ("POST", "/webhooks/not-a-uuid/rotate-secret", None, 422, "validation_error"),
        ("POST", "/webhooks/not-a-uuid/test", None, 422, "validation_error"),
        ("POST", f"{path}/events/not-a-uuid/redeliver", None, 422, "validation_error"),
        ("GET", f"{path}/deliveries?limit=0", None, 422, "validation_error"),
        ("GET", f"{path}/deliveries?limit=501", None, 422, "validation_error"),
        ("GET", f"{path}/deliveries?limit=ten", None, 422, "validation_error"),
        ("GET", f"{path}/deliveries?before=yesterday", None, 422, "validation_error"),
        ("GET", f"{path}/deliveries?before=0.5", None, 422, "validation_error"),
        ("GET", f"{path}/deliveries?before=2025-01-01T00:00:00", None, 422, "validation_error"),
        ("GET", f"{path}/deliveries?cursor=abc", None, 422, "validation_error"),
        ("GET", f"/webhooks/{MISSING}", None, 404, "not_found"),
        ("PATCH", f"/webhooks/{MISSING}", {"enabled": False}, 404, "not_found"),
        ("POST", f"/webhooks/{MISSING}/rotate-secret", None, 404, "not_found"),
        ("POST", f"/webhooks/{MISSING}/test", None, 404, "not_found"),
        ("GET", f"/webhooks/{MISSING}/deliveries", None, 404, "not_found"),
    ]
    for method, url, body, status, code in cases:
        assert_problem(client.request(method, url, json=body), status, code)
    malformed = client.post("/webhooks", content=b'{"url": ', headers={"Content-Type": "application/json"})
    assert_problem(malformed, 400, "malformed_json")
    empty_patch = assert_problem(client.patch(path, json={}), 422, "validation_error")
    assert "at least one" in empty_patch["errors"][0]["message"]

    assert client.get(path).json() == before
    assert client.get(f"{path}/deliveries").json() == {"items": [], "next_before": None}


@pytest.mark.parametrize(
    ("before", "status"),
    [("2025-01-01T00:00:00+23:59", 200), ("0001-01-01T00:00:00+01:00", 422), ("2025-01-01T00:00:00Z", 200)],
)
def test_a_before_cursor_with_an_extreme_offset_is_read_in_utc_or_refused_never_a_server_error(
    client: TestClient, before: str, status: int
) -> None:
    endpoint = subscribe(client)

    response = client.get(f"/webhooks/{endpoint['id']}/deliveries", params={"before": before})

    assert response.status_code == status, response.text


def test_without_webhook_secrets_key_subscribing_and_rotating_answer_503_and_store_nothing(
    database_url: str, clean_db: Engine, count_rows: Callable[[str], int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    configured = Container(settings(), database_url=database_url, llm=FakeLlm())
    unconfigured = Container(settings(webhook_secrets_key=None), database_url=database_url, llm=FakeLlm())
    try:
        with app_client(configured) as client:
            existing = subscribe(client)
        with app_client(unconfigured) as client:
            created = client.post("/webhooks", json=subscription())
            rotated = client.post(f"/webhooks/{existing['id']}/rotate-secret")
            listed = client.get("/webhooks")
    finally:
        configured.close()
        unconfigured.close()

    for response in (created, rotated):
        body = assert_problem(response, 503, "webhooks_not_configured")
        assert "WEBHOOK_SECRETS_KEY" in body["detail"] and "whsec_" not in response.text
    assert count_rows("webhook_endpoints") == 1
    assert listed.status_code == 200 and [e["id"] for e in listed.json()["items"]] == [existing["id"]]
    assert any("WEBHOOK_SECRETS_KEY" in r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records)


def test_a_test_event_reaches_a_real_receiver_and_appears_in_the_delivery_log(
    loopback: tuple[TestClient, Container], receiver: WebhookReceiver
) -> None:
    client, container = loopback
    endpoint = subscribe(client, url=receiver.url)
    receiver.secret = endpoint["secret"]

    queued = client.post(f"/webhooks/{endpoint['id']}/test")
    assert queued.status_code == 202, queued.text
    event_id = queued.json()["event_id"]
    assert queued.json()["webhook_id"] == f"msg_{event_id.replace('-', '')}"
    assert deliver(container).delivered == 1

    [got] = receiver.delivered("ping")
    assert got.verified and got.webhook_id == queued.json()["webhook_id"]
    assert got.payload is not None and got.payload["data"] == {"endpoint_id": endpoint["id"]}
    log = client.get(f"/webhooks/{endpoint['id']}/deliveries")
    assert log.status_code == 200, log.text
    [entry] = log.json()["items"]
    assert entry["event_id"] == event_id and entry["event_type"] == "ping" and entry["attempt"] == 1
    assert entry["status_code"] == 204 and entry["succeeded"] is True and entry["error"] is None
    assert entry["delivery_status"] == "DELIVERED" and entry["next_attempt_at"] is None
    assert entry["latency_ms"] >= 0 and log.json()["next_before"] is None


def test_a_failed_attempt_is_logged_with_its_answer_and_next_attempt(
    loopback: tuple[TestClient, Container], receiver: WebhookReceiver
) -> None:
    client, container = loopback
    endpoint = subscribe(client, url=receiver.url)
    receiver.secret = endpoint["secret"]
    receiver.default_status = 503

    client.post(f"/webhooks/{endpoint['id']}/test")
    assert deliver(container).retrying == 1

    [entry] = client.get(f"/webhooks/{endpoint['id']}/deliveries").json()["items"]
    assert (entry["status_code"], entry["succeeded"], entry["delivery_status"]) == (503, False, "PENDING")
    assert entry["response_excerpt"] == "nope" and entry["next_attempt_at"] is not None
    endpoint_now = client.get(f"/webhooks/{endpoint['id']}").json()
    assert endpoint_now["consecutive_failures"] == 1 and endpoint_now["failing_since"] is not None


def test_an_event_is_redelivered_with_its_webhook_id_and_an_unknown_or_foreign_event_is_404(
    loopback: tuple[TestClient, Container], receiver: WebhookReceiver
) -> None:
    client, container = loopback
    owner, headers = new_owner(client, "A")
    endpoint = subscribe(client, headers, url=receiver.url)
    receiver.secret = endpoint["secret"]
    other_owner, other_headers = new_owner(client, "B")
    other = subscribe(client, other_headers, url=receiver.url + "?other")
    path = f"/webhooks/{endpoint['id']}"
    event_id = client.post(f"{path}/test", headers=headers).json()["event_id"]
    deliver(container)

    again = client.post(f"{path}/events/{event_id}/redeliver", headers=headers)
    unknown = client.post(f"{path}/events/{uuid4()}/redeliver", headers=headers)
    foreign = client.post(f"/webhooks/{other['id']}/events/{event_id}/redeliver", headers=other_headers)

    assert again.status_code == 202, again.text
    assert again.json() == {"event_id": event_id, "webhook_id": f"msg_{event_id.replace('-', '')}"}
    assert assert_problem(unknown, 404, "not_found")["entity"] == "event"
    assert assert_problem(foreign, 404, "not_found")["entity"] == "event"
    assert deliver(container).delivered == 1
    assert [r.webhook_id for r in receiver.delivered("ping")] == [again.json()["webhook_id"]] * 2
    log = client.get(f"{path}/deliveries", headers=headers).json()["items"]
    assert [e["event_id"] for e in log] == [event_id, event_id]
    assert owner != other_owner


def test_the_delivery_log_pages_back_in_time_with_next_before(
    loopback: tuple[TestClient, Container], receiver: WebhookReceiver
) -> None:
    client, container = loopback
    endpoint = subscribe(client, url=receiver.url)
    receiver.secret = endpoint["secret"]
    path = f"/webhooks/{endpoint['id']}/deliveries"
    for _ in range(3):
        client.post(f"/webhooks/{endpoint['id']}/test")
        deliver(container)

    first = client.get(path, params={"limit": 2}).json()
    second = client.get(path, params={"limit": 2, "before": first["next_before"]}).json()

    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["started_at"]
    assert len(second["items"]) == 1 and second["next_before"] is None
    started = [e["started_at"] for e in first["items"] + second["items"]]
    assert started == sorted(started, reverse=True) and len(set(started)) == 3
    everything = client.get(path).json()["items"]
    assert [e["event_id"] for e in everything] == [e["event_id"] for e in first["items"] + second["items"]]


def test_the_openapi_document_lists_every_event_a_receiver_gets_with_the_signature_headers(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()

    assert set(document["webhooks"]) == {t.value for t in EventType}
    for event_type, item in document["webhooks"].items():
        operation = item["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}, event_type
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][body]
        assert set(schema["required"]) == {"type", "timestamp", "data"}
        assert schema["properties"]["type"]["const"] == event_type
    create = document["paths"]["/webhooks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    create_schema = document["components"]["schemas"][create["$ref"].rsplit("/", 1)[-1]]
    assert "ping" not in create_schema["properties"]["event_types"]["items"]["enum"]
