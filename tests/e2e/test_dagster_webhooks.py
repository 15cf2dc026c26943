"""The webhook deliverer in Dagster: the `webhook_deliveries` sensor sends the outbox's due events in its tick to
a real receiver (verified with `standardwebhooks`), tells its figures in the skip reason, the cursor and an
observation of `webhook_outbox`, skips with a reason when WEBHOOK_SECRETS_KEY is missing, and an idle tick is
one query (real PostgreSQL, fake Ollama). Also the key file `triage run` makes for its processes."""

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from dagster import DagsterInstance, DefaultSensorStatus, Definitions, SensorDefinition, build_sensor_context
from sqlalchemy import event, text

from tests.support.fake_ollama import FakeOllama
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from triage_pipeline.application.intake import CreateTicket, CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.ticket_queries import GetTicket, GetTicketQuery
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.application.webhooks.subscriptions import CreateWebhook, CreateWebhookCommand
from triage_pipeline.bootstrap import Container
from triage_pipeline.defs import resources
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.job import triage_job
from triage_pipeline.defs.webhooks.sensors import (
    MAX_TICK,
    MIN_TICK,
    WEBHOOK_OUTBOX_ASSET,
    FiguresCursor,
    build_webhook_sensor,
    tick_budget,
)
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.webhook import EventType
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import Settings
from triage_pipeline.infrastructure.webhook_key import WebhookKeyFileError, ensure_local_webhook_key
from triage_pipeline.infrastructure.webhooks.secret_box import valid_secrets_key

SENSOR = build_webhook_sensor(Settings())


@pytest.fixture(autouse=True)
def fresh_tick_containers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ticks share a container built from the environment of the first tick: each test starts its own."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "2")

    def close_all() -> None:
        for container in resources._tick_containers.values():
            container.close()
        resources._tick_containers.clear()

    close_all()
    yield
    close_all()


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def services(database_url: str, fake_ollama: FakeOllama, clean_db: object) -> TriageServices:
    return TriageServices(
        database=DatabaseResource(url=database_url),
        llm=LlmResource(base_url=fake_ollama.url, model="fake-model", read_timeout_s=2.0),
    )


@pytest.fixture
def container(database_url: str, fake_ollama: FakeOllama, clean_db: object) -> Iterator[Container]:
    """Where the tests subscribe and triage, with the key of the environment (as the API would)."""
    llm = OllamaClient(base_url=fake_ollama.url, model="fake-model", read_timeout_s=5.0)
    built = Container(Settings(webhook_allow_private_targets=True), database_url=database_url, llm=llm)
    yield built
    built.close()


@pytest.fixture
def receiver(container: Container) -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        created = container.use(CreateWebhook).execute(
            CreateWebhookCommand(DEFAULT_OWNER_ID, running.url, (EventType.TICKET_TRIAGED,))
        )
        running.secret = created.secret
        yield running


def triage_a_ticket(container: Container, external_id: str) -> str:
    """A ticket triaged (COMPLETED): its `ticket.triaged` event waits in the outbox. Its id."""
    ticket = container.use(CreateTicket).execute(NewTicket(DEFAULT_OWNER_ID, external_id, "Refund", "Charged twice"))
    job = container.use(GetTicket).execute(GetTicketQuery(ticket.id)).job
    assert job is not None
    container.use(TriageOneJob).execute(TriageJobCommand(job.id))
    return str(ticket.id)


def tick(services: TriageServices, instance: DagsterInstance, cursor: str | None = None) -> Any:
    with build_sensor_context(instance=instance, resources={"services": services}, cursor=cursor) as context:
        return SENSOR.evaluate_tick(context)


def pending_deliveries(container: Container) -> list[tuple[str, bool]]:
    with container.engine.connect() as conn:
        rows = conn.execute(text("SELECT status, lease_token IS NOT NULL FROM webhook_deliveries")).all()
    return [(row[0], row[1]) for row in rows]


def test_the_definitions_load_with_the_deliverer_sensor_and_the_outbox_asset() -> None:
    from triage_pipeline.definitions import defs

    Definitions.validate_loadable(defs)
    sensor = next(s for s in defs.sensors or [] if s.name == "webhook_deliveries")
    assert isinstance(sensor, SensorDefinition)
    assert sensor.default_status is DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == Settings().webhook_sensor_interval_s == 60
    assert build_webhook_sensor(Settings(webhook_sensor_interval_s=7)).minimum_interval_seconds == 7
    assert WEBHOOK_OUTBOX_ASSET in {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


def test_a_tick_delivers_a_queued_event_and_reports_the_figures(
    services: TriageServices, instance: DagsterInstance, container: Container, receiver: WebhookReceiver
) -> None:
    ticket_id = triage_a_ticket(container, "W-1")

    result = tick(services, instance)

    [got] = receiver.delivered("ticket.triaged")
    assert got.payload is not None and got.payload["data"]["ticket_id"] == ticket_id
    assert result.run_requests == []
    reason = result.skip_message
    assert "sent 1: 1 delivered, 0 to retry, 0 given up, 0 endpoint(s) disabled" in reason, reason
    assert "0 due (none due), 0 pending, 0 endpoint(s) disabled; last hour 1 delivered, 0 failed" in reason, reason
    cursor = json.loads(result.cursor)
    assert (cursor["delivered_last_hour"], cursor["due"], cursor["pending"]) == (1, 0, 0)
    [observation] = result.asset_events
    assert observation.asset_key.to_user_string() == WEBHOOK_OUTBOX_ASSET
    metadata = {key: value.value for key, value in observation.metadata.items()}
    assert metadata["tick_delivered"] == 1 and metadata["delivered_last_hour"] == 1 and metadata["due"] == 0
    assert pending_deliveries(container) == [("DELIVERED", False)]


def test_an_idle_tick_sends_nothing_and_is_one_query(
    services: TriageServices, instance: DagsterInstance, container: Container, receiver: WebhookReceiver
) -> None:
    triage_a_ticket(container, "W-2")
    first = tick(services, instance)
    assert len(receiver.delivered()) == 1
    [shared] = resources._tick_containers.values()
    statements: list[str] = []
    event.listen(shared.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    idle = tick(services, instance, first.cursor)

    assert len(receiver.received) == 1
    assert idle.skip_message.startswith("nothing due; outbox at "), idle.skip_message
    assert "last hour 1 delivered" in idle.skip_message  # the figures of the cursor, not read again
    assert idle.cursor == first.cursor and idle.asset_events == []
    assert len(statements) == 1 and "FOR UPDATE OF d SKIP LOCKED" in statements[0], statements


def test_without_the_secrets_key_a_tick_skips_naming_the_setting_and_leaves_the_event_queued(
    services: TriageServices,
    instance: DagsterInstance,
    container: Container,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    triage_a_ticket(container, "W-3")
    monkeypatch.delenv("WEBHOOK_SECRETS_KEY")

    result = tick(services, instance, cursor="kept")

    assert "WEBHOOK_SECRETS_KEY is not set" in result.skip_message, result.skip_message
    assert result.cursor == "kept" and result.asset_events == []
    assert receiver.received == []
    assert pending_deliveries(container) == [("PENDING", False)]  # not even leased: the next key delivers it


def test_a_key_that_does_not_open_the_secrets_skips_with_the_reason(
    services: TriageServices,
    instance: DagsterInstance,
    container: Container,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    triage_a_ticket(container, "W-4")
    monkeypatch.setenv("WEBHOOK_SECRETS_KEY", Fernet.generate_key().decode())

    result = tick(services, instance)

    assert result.skip_message.startswith("webhook delivery stopped: "), result.skip_message
    assert "WEBHOOK_SECRETS_KEY" in result.skip_message
    assert receiver.received == []


def test_the_tick_budget_stays_under_the_sensor_timeout() -> None:
    assert tick_budget(Settings(), 60) == MAX_TICK  # 60 s timeout, 10 s requests: room to spare
    assert tick_budget(Settings(webhook_timeout_s=15), 40) == timedelta(seconds=5)  # 40 - 2 x 15 - 5
    assert tick_budget(Settings(webhook_timeout_s=60), 60) == MIN_TICK


def test_an_unreadable_cursor_is_read_as_none() -> None:
    assert FiguresCursor.parse("not json") == FiguresCursor()
    assert FiguresCursor.parse(json.dumps({"at": "yesterday"})) == FiguresCursor()
    assert FiguresCursor().dump() is None


def test_triage_run_makes_its_webhook_key_once_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / ".triage_webhook_key"
    unset = Settings(webhook_secrets_key=None)
    key = ensure_local_webhook_key(unset, path)
    assert valid_secrets_key(key) and path.stat().st_mode & 0o777 == 0o600
    assert ensure_local_webhook_key(unset, path) == key  # the sealed secrets outlive a restart
    given = Fernet.generate_key().decode()
    assert ensure_local_webhook_key(Settings(webhook_secrets_key=given), path) == given
    path.write_text("edited\n")
    with pytest.raises(WebhookKeyFileError, match="does not hold a Fernet key"):
        ensure_local_webhook_key(unset, path)


def test_a_thousand_tickets_through_the_triage_job_reach_the_receiver_through_the_sensor(
    services: TriageServices, instance: DagsterInstance, container: Container
) -> None:
    with webhook_receiver() as receiver:
        created = container.use(CreateWebhook).execute(
            CreateWebhookCommand(DEFAULT_OWNER_ID, receiver.url, (EventType.TICKET_TRIAGED, EventType.BATCH_DONE))
        )
        receiver.secret = created.secret
        items = [
            NewTicket(DEFAULT_OWNER_ID, f"K-{i}", f"Checkout broken {i}", "The pay button fails.") for i in range(1000)
        ]
        container.use(CreateTickets).execute(CreateTicketsCommand(items))

        config = {"max_items": 1000, "jobs_per_chunk": 250, "llm_concurrency": 16}
        result = triage_job.execute_in_process(
            run_config={"ops": {"plan_batch": {"config": config}, "triage_chunk": {"config": config}}},
            resources={"services": services},
            instance=instance,
        )
        assert result.success
        ticks = 0
        while len(receiver.delivered()) < 1001 and ticks < 20:  # each tick sends for at most its budget
            tick(services, instance)
            ticks += 1

    triaged = receiver.delivered("ticket.triaged")
    assert len({r.payload["data"]["external_id"] for r in triaged if r.payload}) == 1000
    assert len({r.webhook_id for r in triaged}) == 1000  # one event per ticket, none missing
    [done] = receiver.delivered("batch.done")
    assert done.payload is not None and done.payload["data"]["counts"] == {"DONE": 1000, "FAILED": 0, "PENDING": 0}
