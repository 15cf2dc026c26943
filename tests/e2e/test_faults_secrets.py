"""No secret ever reaches a log line, an error body or the pipeline's event log.

A full run (owners and keys issued, tickets posted with owner keys, failed logins, a queued batch triaged by
the real Dagster job, a key revoked, the database unreachable, a configuration error) is made with a
database password and API keys in play; every log record (root logger at DEBUG, so SQLAlchemy's too), every
response and every Dagster event message is then searched for them.
"""

import io
import logging
from collections.abc import Iterator
from uuid import UUID

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, text

from api.main import create_app
from tests.e2e.conftest import ticket_body
from tests.support.auth import bearer
from tests.support.fake_ollama import FakeOllama
from tests.support.webhook_receiver import webhook_receiver
from triage_pipeline.application.webhooks.delivery import DeliverCommand, DeliverDueWebhooks
from triage_pipeline.bootstrap import Container
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.job import triage_job
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres, free_port
from triage_pipeline.infrastructure.logging import JsonFormatter
from triage_pipeline.infrastructure.settings import Settings, SettingsError, get_settings, load_settings

DB_PASSWORD = "pw-Zq81-never-log-me"
WEBHOOK_KEY = "0sA5i6TQk7TCqG4hpYOkfXJ1bYd9XtRZ2Y1WuJy5m7c="
ADMIN_KEY = "admin-key-never-log-me-0123456789"
ROLE = "triage_secretive"


@pytest.fixture
def secret_url(pg_server: EmbeddedPostgres, database_url: str, clean_db: Engine) -> str:
    """The test database, reached as a role with a password (plain postgresql:// as users write it)."""
    with clean_db.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": ROLE}).first() is None:
            conn.execute(text(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'"))
    database = database_url.rsplit("/", 1)[1]
    return f"postgresql://{ROLE}:{DB_PASSWORD}@{pg_server.host}:{pg_server.port}/{database}"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the process, as the service writes them (JSON lines), at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_full_run_never_writes_a_password_or_key_to_logs_responses_or_events(
    secret_url: str,
    fake_ollama: FakeOllama,
    captured_logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", secret_url)
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("LLM_BASE_URL", fake_ollama.url)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("WEBHOOK_SECRETS_KEY", WEBHOOK_KEY)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    get_settings.cache_clear()
    responses: list[Response] = []
    secrets = [DB_PASSWORD, ADMIN_KEY, WEBHOOK_KEY]

    def keep(response: Response) -> Response:
        responses.append(response)
        return response

    container = Container(load_settings())
    try:
        with TestClient(create_app(container), headers=bearer(ADMIN_KEY)) as client, webhook_receiver() as receiver:
            owner = keep(client.post("/owners", json={"name": "Acme"})).json()
            extra = keep(client.post("/api-keys", json={"role": "admin", "name": "ops"})).json()
            owner_key, extra_key = owner["api_key"], extra["api_key"]
            secrets += [owner_key, owner_key.split("_", 2)[2], extra_key, extra_key.split("_", 2)[2]]
            for wrong in (ADMIN_KEY[:-1] + "X", owner_key[:-2] + "zz", f"tt_{DB_PASSWORD}_x", DB_PASSWORD):
                keep(client.get("/tickets", headers=bearer(wrong)))
            for i in range(3):
                keep(client.post("/tickets", json=ticket_body(f"S-{i}"), headers=bearer(owner_key)))
            keep(client.post("/tickets", json=ticket_body("S-0"), headers=bearer(owner_key)))  # a 409
            keep(client.post("/tickets", json=ticket_body("S-9", owner_id=str(UUID(int=1))), headers=bearer(owner_key)))
            hook = keep(
                client.post(
                    "/webhooks",
                    json={"url": receiver.url, "event_types": ["ticket.triaged", "batch.done"]},
                    headers=bearer(owner_key),
                )
            ).json()
            rotated = keep(client.post(f"/webhooks/{hook['id']}/rotate-secret", headers=bearer(owner_key))).json()
            receiver.secret = rotated["secret"]
            secrets += [hook["secret"], rotated["secret"]]
            queued = keep(client.post("/triage-jobs/batch", headers=bearer(extra_key))).json()

            # The pipeline, configured from the environment exactly as in production.
            services = TriageServices(database=DatabaseResource(), llm=LlmResource())
            config = {"batch_id": queued["batch"]["id"], "jobs_per_chunk": 2, "llm_concurrency": 2}
            with DagsterInstance.ephemeral() as instance:
                result = triage_job.execute_in_process(
                    run_config={"ops": {"plan_batch": {"config": config}, "triage_chunk": {"config": config}}},
                    resources={"services": services},
                    instance=instance,
                )
                assert result.success
                events = "\n".join(
                    str(entry.message) + str(entry.dagster_event) for entry in instance.all_logs(result.run_id)
                )

            for ticket in keep(client.get("/tickets", headers=bearer(owner_key))).json()["items"]:
                keep(client.get(f"/tickets/{ticket['id']}/logs", headers=bearer(owner_key)))
                assert ticket["triage_status"] == "COMPLETED"
            delivered = container.use(DeliverDueWebhooks).execute(DeliverCommand())
            assert delivered.delivered == 4 and len(receiver.delivered()) == 4  # 3 tickets triaged, 1 batch.done
            keep(client.get(f"/webhooks/{hook['id']}", headers=bearer(owner_key)))
            keep(client.get("/webhooks"))
            keep(client.get(f"/webhooks/{hook['id']}/deliveries", headers=bearer(owner_key)))
            keep(client.delete(f"/api-keys/{extra['id']}"))
            keep(client.get("/tickets", headers=bearer(extra_key)))  # revoked: 401
    finally:
        container.close()

    # The database unreachable: 503s, and their warnings, name no password.
    dead = Container(Settings(database_url=f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{free_port()}/x"))
    try:
        with TestClient(create_app(dead), headers=bearer(ADMIN_KEY)) as client:
            keep(client.get("/tickets"))
            keep(client.get("/health/ready"))
    finally:
        dead.close()
    # A malformed DATABASE_URL holding a password: the configuration error does not repeat it.
    monkeypatch.setenv("DATABASE_URL", f"mysql://u:{DB_PASSWORD}@db/x")
    with pytest.raises(SettingsError) as bad_config:
        load_settings()
    logging.getLogger("test").error(str(bad_config.value))
    get_settings.cache_clear()

    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200, 201, 202, 401, 403, 409, 503], statuses
    logs = captured_logs.getvalue()
    assert "api key rejected" in logs and "database unavailable" in logs and "triage job" in logs.lower()
    issued = [r for r in responses if r.status_code == 201 and "api_key" in r.json()]
    assert len(issued) == 2  # POST /owners and POST /api-keys hand a new key out, once
    issued += [r for r in responses if r.status_code in (200, 201) and "secret" in r.json()]
    assert len(issued) == 4  # and POST /webhooks and its rotate-secret a signing secret, once each
    haystacks = {
        "logs": logs,
        "responses": "\n".join(f"{r.headers}\n{r.text}" for r in responses if r not in issued),
        "dagster events": events,
        "configuration error": str(bad_config.value),
    }
    for where, haystack in haystacks.items():
        for secret in secrets:
            assert secret not in haystack, f"a secret ({secret[:6]}...) appears in the {where}"
    assert DB_PASSWORD not in "".join(r.text for r in issued) and ADMIN_KEY not in "".join(r.text for r in issued)
