"""Webhook delivery from the transactional outbox to real receivers on loopback, verified on the receiving
side by the `standardwebhooks` library (real PostgreSQL, fake Ollama over HTTP)."""

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text

from tests.support.fake_ollama import FakeOllama
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand, FinishBatch, FinishBatchCommand
from triage_pipeline.application.corrections import CorrectTriage, CorrectTriageCommand
from triage_pipeline.application.intake import CreateTicket, CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.recovery import RecoverCommand, RecoverStuckWork
from triage_pipeline.application.ticket_queries import GetTicket, GetTicketQuery
from triage_pipeline.application.triage import TriageJobCommand, TriageJobs, TriageJobsCommand, TriageOneJob
from triage_pipeline.application.webhooks.delivery import DeliverCommand, DeliverDueWebhooks, DeliveryReport
from triage_pipeline.application.webhooks.subscriptions import (
    CreateWebhook,
    CreateWebhookCommand,
    DeliveryLogQuery,
    GetWebhook,
    ListDeliveries,
    RedeliverCommand,
    RedeliverEvent,
    RotateWebhookSecret,
    SendTestEvent,
    UpdateWebhook,
    UpdateWebhookCommand,
    WebhookRef,
)
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.exceptions import DeliveryInFlight, UnknownLabel
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.domain.statuses import TriageJobStatus
from triage_pipeline.domain.triage_answer import Priority
from triage_pipeline.domain.triage_job import MAX_ATTEMPTS
from triage_pipeline.domain.webhook import MAX_DELIVERY_ATTEMPTS, DeliveryStatus, EventType
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWork
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import Settings

ALL_TICKET_EVENTS = (
    EventType.TICKET_TRIAGED,
    EventType.TICKET_NEEDS_REVIEW,
    EventType.TICKET_TRIAGE_FAILED,
    EventType.TICKET_CORRECTED,
    EventType.BATCH_DONE,
)


class ShiftedClock:
    """The system clock moved forward on demand: retries come due without waiting for them."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.offset += delta


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


def make_container(database_url: str, fake_ollama: FakeOllama, clock: ShiftedClock, **settings: object) -> Container:
    llm = OllamaClient(base_url=fake_ollama.url, model="fake-model", read_timeout_s=5.0)
    options: dict[str, object] = {
        "webhook_allow_private_targets": True,
        "webhook_timeout_s": 1.0,
        "webhook_disable_min_failing_s": 0,
    }
    options.update(settings)
    return Container(Settings(**options), database_url=database_url, llm=llm, clock=clock)  # type: ignore[arg-type]


@pytest.fixture
def container(database_url: str, clean_db: object, fake_ollama: FakeOllama, clock: ShiftedClock) -> Iterator[Container]:
    built = make_container(database_url, fake_ollama, clock)
    yield built
    built.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


def subscribe(
    container: Container,
    receiver: WebhookReceiver,
    owner_id: UUID | None = DEFAULT_OWNER_ID,
    event_types: tuple[EventType, ...] = ALL_TICKET_EVENTS,
) -> UUID:
    created = container.use(CreateWebhook).execute(CreateWebhookCommand(owner_id, receiver.url, event_types))
    receiver.secret = created.secret
    return created.endpoint.id


def triage(container: Container, external_id: str, owner: UUID = DEFAULT_OWNER_ID) -> UUID:
    ticket = container.use(CreateTicket).execute(NewTicket(owner, external_id, "Refund missing", "Charged twice"))
    job = container.use(GetTicket).execute(GetTicketQuery(ticket.id)).job
    assert job is not None
    container.use(TriageOneJob).execute(TriageJobCommand(job.id))
    return ticket.id


def deliver(container: Container) -> DeliveryReport:
    return container.use(DeliverDueWebhooks).execute(DeliverCommand(time_budget=timedelta(seconds=30)))


def new_owner(container: Container) -> UUID:
    now = container.clock.now()
    owner = Owner(id=uuid4(), name="tenant", created_at=now, updated_at=now)
    with container.uow() as uow:
        uow.owners.add(owner)
        uow.commit()
    return owner.id


def test_a_triaged_ticket_reaches_the_receiver_signed_with_the_standard_headers(
    container: Container, receiver: WebhookReceiver
) -> None:
    subscribe(container, receiver)
    ticket_id = triage(container, "T-1")

    report = deliver(container)

    assert report.delivered == 1, report
    [got] = receiver.delivered()
    assert got.verified and got.webhook_id.startswith("msg_")
    assert got.payload is not None
    assert got.payload["type"] == "ticket.triaged"
    data = got.payload["data"]
    assert data["ticket_id"] == str(ticket_id) and data["external_id"] == "T-1"
    assert data["triage"]["category"] and 0.0 <= data["confidence"] <= 1.0
    assert data["review_status"] in ("AUTO_APPLIED", "NEEDS_REVIEW")
    assert data["status"] == "COMPLETED"


def test_a_forged_signature_fails_the_standard_library_check(container: Container, receiver: WebhookReceiver) -> None:
    subscribe(container, receiver)
    receiver.secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="  # not the endpoint's secret
    triage(container, "T-1")

    report = deliver(container)

    assert report.delivered == 0 and report.retrying == 1
    assert receiver.received and not receiver.received[0].verified


def test_an_event_commits_with_its_change_or_not_at_all(
    container: Container, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(container, receiver)
    ticket_id = triage(container, "T-1")
    deliver(container)

    def failing_commit(self: SqlUnitOfWork) -> None:
        self.session.flush()  # every row of the change and its event reached the database...
        raise RuntimeError("the commit failed")  # ...and the transaction then rolls back

    with monkeypatch.context() as patch:
        patch.setattr(SqlUnitOfWork, "commit", failing_commit)
        with pytest.raises(RuntimeError):
            container.use(CorrectTriage).execute(CorrectTriageCommand(ticket_id, "billing", Priority.LOW))
    assert count(container, "triage_corrections") == 0 and count_events(container, "ticket.corrected") == 0
    with pytest.raises(UnknownLabel):
        container.use(CorrectTriage).execute(CorrectTriageCommand(ticket_id, "not-a-category", Priority.HIGH))
    container.use(CorrectTriage).execute(CorrectTriageCommand(ticket_id, "billing", Priority.HIGH, actor="agent"))
    deliver(container)

    assert count(container, "triage_corrections") == 1 and count_events(container, "ticket.corrected") == 1
    corrected = receiver.delivered("ticket.corrected")
    assert len(corrected) == 1
    assert corrected[0].payload is not None and corrected[0].payload["data"]["category"] == "billing"


def count(container: Container, table: str) -> int:
    with container.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def count_events(container: Container, event_type: str) -> int:
    with container.engine.connect() as connection:
        query = text("SELECT count(*) FROM webhook_events WHERE type = :type")
        return int(connection.execute(query, {"type": event_type}).scalar_one())


def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_up(container: Container, clock: ShiftedClock) -> None:
    receiver = WebhookReceiver()
    subscribe(container, receiver)  # never started yet: connection refused
    for i in range(5):
        triage(container, f"T-{i}")

    first = deliver(container)
    assert first.retrying == 5 and first.delivered == 0
    receiver.start()
    try:
        assert deliver(container).attempted == 0  # not due yet: the first retry waits about 5 s
        clock.advance(timedelta(seconds=7))
        second = deliver(container)
    finally:
        receiver.stop()

    assert second.delivered == 5
    assert len({r.webhook_id for r in receiver.delivered("ticket.triaged")}) == 5


def test_a_receiver_slower_than_the_timeout_is_retried_with_the_same_webhook_id(
    container: Container, receiver: WebhookReceiver, clock: ShiftedClock
) -> None:
    endpoint_id = subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGED,))
    receiver.delay_s = 1.5  # the sender's timeout is 1 s
    triage(container, "T-1")

    assert deliver(container).retrying == 1
    receiver.delay_s = 0
    clock.advance(timedelta(seconds=7))
    assert deliver(container).delivered == 1

    ids = {r.webhook_id for r in receiver.received}
    assert len(ids) == 1
    log = container.use(ListDeliveries).execute(DeliveryLogQuery(endpoint_id, None))
    assert [entry.attempt.attempt for entry in log] == [2, 1]
    assert log[1].attempt.error is not None and log[1].attempt.error.startswith("timeout")
    assert log[0].attempt.status_code == 204 and log[0].delivery_status is DeliveryStatus.DELIVERED


def test_4xx_and_5xx_answers_are_retried_until_the_schedule_ends(
    container: Container, receiver: WebhookReceiver, clock: ShiftedClock
) -> None:
    endpoint_id = subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGED,))
    receiver.default_status = 500
    receiver.script = [400, 429, 503]
    triage(container, "T-1")

    for _ in range(MAX_DELIVERY_ATTEMPTS):
        deliver(container)
        clock.advance(timedelta(hours=13))  # past the longest wait, jitter included

    log = container.use(ListDeliveries).execute(DeliveryLogQuery(endpoint_id, None))
    assert [e.attempt.status_code for e in reversed(log)] == [400, 429, 503] + [500] * (MAX_DELIVERY_ATTEMPTS - 3)
    assert log[0].delivery_status is DeliveryStatus.FAILED and log[0].next_attempt_at is None
    assert deliver(container).attempted == 0


def test_410_gone_ends_the_delivery_and_disables_the_endpoint(container: Container, receiver: WebhookReceiver) -> None:
    endpoint_id = subscribe(container, receiver)
    receiver.default_status = 410
    triage(container, "T-1")

    report = deliver(container)

    assert report.failed == 1 and report.endpoints_disabled == 1
    endpoint = container.use(GetWebhook).execute(WebhookRef(endpoint_id, None))
    assert not endpoint.enabled and endpoint.disabled_reason and "410" in endpoint.disabled_reason


def test_a_run_of_failures_disables_the_endpoint_and_enabling_it_resumes_delivery(
    database_url: str, clean_db: object, fake_ollama: FakeOllama, clock: ShiftedClock
) -> None:
    container = make_container(database_url, fake_ollama, clock, webhook_disable_after_failures=3)
    try:
        with webhook_receiver(default_status=503) as receiver:
            endpoint_id = subscribe(container, receiver)
            for i in range(3):
                triage(container, f"T-{i}")
            report = deliver(container)
            assert report.endpoints_disabled == 1
            endpoint = container.use(GetWebhook).execute(WebhookRef(endpoint_id, None))
            assert not endpoint.enabled and endpoint.consecutive_failures == 3
            triage(container, "T-held")  # told while disabled: held for the endpoint, not sent

            receiver.default_status = 204
            clock.advance(timedelta(seconds=7))
            assert deliver(container).attempted == 0  # a disabled endpoint is not called
            enabled = container.use(UpdateWebhook).execute(UpdateWebhookCommand(endpoint_id, None, enabled=True))
            assert enabled.enabled and enabled.consecutive_failures == 0 and enabled.disabled_reason is None
            assert deliver(container).delivered == 4  # the three that failed and the one held meanwhile
    finally:
        container.close()


def test_each_owner_receives_only_its_own_events_and_an_all_owners_endpoint_receives_all(
    container: Container,
) -> None:
    other = new_owner(container)
    with webhook_receiver() as mine, webhook_receiver() as theirs, webhook_receiver() as admin:
        subscribe(container, mine, DEFAULT_OWNER_ID)
        subscribe(container, theirs, other)
        subscribe(container, admin, None)
        tickets = []
        for i, owner in enumerate((DEFAULT_OWNER_ID, other, other)):
            tickets.append(
                container.use(CreateTicket).execute(NewTicket(owner, f"T-{i}", "Login fails", "Error 500 at login"))
            )
        created = container.use(CreateBatch).execute(CreateBatchCommand())
        assert created is not None
        container.use(TriageJobs).execute(TriageJobsCommand(list(created.job_ids), created.batch.id))
        container.use(FinishBatch).execute(FinishBatchCommand(created.batch.id))

        deliver(container)

        def ticket_ids(receiver: WebhookReceiver) -> set[str]:
            return {r.payload["data"]["ticket_id"] for r in receiver.delivered("ticket.triaged") if r.payload}

        assert ticket_ids(mine) == {str(tickets[0].id)}
        assert ticket_ids(theirs) == {str(tickets[1].id), str(tickets[2].id)}
        assert ticket_ids(admin) == {str(t.id) for t in tickets}
        [mine_done] = mine.delivered("batch.done")
        [theirs_done] = theirs.delivered("batch.done")
        [admin_done] = admin.delivered("batch.done")
        assert mine_done.payload and mine_done.payload["data"]["total"] == 1
        assert theirs_done.payload and theirs_done.payload["data"]["total"] == 2
        assert admin_done.payload and admin_done.payload["data"]["total"] == 3
        assert admin_done.payload["data"]["counts"]["DONE"] == 3


def test_a_rotated_secret_signs_beside_the_previous_one_during_the_grace_period(
    container: Container, receiver: WebhookReceiver
) -> None:
    endpoint_id = subscribe(container, receiver)
    old_secret = receiver.secret
    rotated = container.use(RotateWebhookSecret).execute(WebhookRef(endpoint_id, None))
    assert rotated.secret != old_secret and rotated.secret.startswith("whsec_")
    triage(container, "T-1")

    deliver(container)

    [got] = receiver.delivered()  # verified with the old secret
    assert len(got.signature.split(" ")) == 2
    assert got.payload is not None
    receiver.secret = rotated.secret  # the receiver switches to the new secret: it verifies too
    container.use(SendTestEvent).execute(WebhookRef(endpoint_id, None))
    deliver(container)
    pings = receiver.delivered("ping")
    assert len(pings) == 1 and pings[0].payload is not None
    assert pings[0].payload["data"]["endpoint_id"] == str(endpoint_id)


def test_manual_redelivery_sends_the_same_event_again_with_its_webhook_id(
    container: Container, receiver: WebhookReceiver
) -> None:
    endpoint_id = subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGED,))
    triage(container, "T-1")
    deliver(container)
    [first] = receiver.delivered()
    event_id = UUID(first.webhook_id.removeprefix("msg_"))

    container.use(RedeliverEvent).execute(RedeliverCommand(endpoint_id, None, event_id))
    deliver(container)

    assert [r.webhook_id for r in receiver.delivered()] == [first.webhook_id, first.webhook_id]


def test_a_thousand_tickets_in_one_batch_give_a_thousand_triaged_events(
    container: Container, receiver: WebhookReceiver
) -> None:
    subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGED, EventType.BATCH_DONE))
    tickets = [NewTicket(DEFAULT_OWNER_ID, f"T-{i}", f"Ticket {i}", "Something broke") for i in range(1000)]
    container.use(CreateTickets).execute(CreateTicketsCommand(tickets))
    created = container.use(CreateBatch).execute(CreateBatchCommand(max_items=1000))
    assert created is not None and len(created.job_ids) == 1000
    container.use(TriageJobs).execute(TriageJobsCommand(list(created.job_ids), created.batch.id))
    container.use(FinishBatch).execute(FinishBatchCommand(created.batch.id))

    while deliver(container).attempted:
        pass

    triaged = receiver.delivered("ticket.triaged")
    assert len(triaged) == 1000
    assert len({r.payload["data"]["ticket_id"] for r in triaged if r.payload}) == 1000
    [done] = receiver.delivered("batch.done")
    assert done.payload is not None and done.payload["data"]["counts"]["DONE"] == 1000


DELIVER_ONCE = """
import sys
from triage_pipeline.application.webhooks.delivery import DeliverCommand, DeliverDueWebhooks
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.settings import Settings

settings = Settings(webhook_allow_private_targets=True, webhook_timeout_s=3.0)
container = Container(settings, database_url=sys.argv[1])
print("delivering", flush=True)
container.use(DeliverDueWebhooks).execute(DeliverCommand())
"""


def test_a_deliverer_killed_mid_delivery_leaves_the_event_to_the_next_with_the_same_webhook_id(
    database_url: str, clean_db: object, fake_ollama: FakeOllama, clock: ShiftedClock
) -> None:
    container = make_container(database_url, fake_ollama, clock, webhook_timeout_s=3.0)
    try:
        with webhook_receiver(delay_s=2.0) as receiver:
            endpoint_id = subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGED,))
            triage(container, "T-1")
            process = subprocess.Popen([sys.executable, "-c", DELIVER_ONCE, database_url])
            try:
                deadline = time.monotonic() + 30
                while not receiver.arrivals:  # the request is at the receiver, its answer 2 s away
                    assert process.poll() is None and time.monotonic() < deadline
                    time.sleep(0.02)
                process.send_signal(signal.SIGKILL)
            finally:
                process.wait(timeout=10)
            [first_id] = receiver.arrivals
            assert deliver(container).attempted == 0  # still leased by the dead deliverer
            receiver.delay_s = 0

            clock.advance(container.webhook_options.lease + timedelta(seconds=1))
            report = deliver(container)

            assert report.delivered == 1
            assert [r.webhook_id for r in receiver.delivered()][-1] == first_id
            log = container.use(ListDeliveries).execute(DeliveryLogQuery(endpoint_id, None))
            assert [(e.attempt.attempt, e.attempt.succeeded) for e in log] == [(1, True)]  # the dead one left none
    finally:
        container.close()


def test_a_last_attempt_recovered_from_an_expired_lease_tells_triage_failed(
    container: Container, receiver: WebhookReceiver, clock: ShiftedClock
) -> None:
    subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGE_FAILED,))
    ticket_id = container.use(CreateTicket).execute(NewTicket(DEFAULT_OWNER_ID, "T-1", "t", "d")).id
    now = container.clock.now()
    with container.uow() as uow:
        job = uow.jobs.latest_for_ticket(ticket_id)
        ticket = uow.tickets.get(ticket_id)
        assert job is not None and ticket is not None
        uow.jobs.update(replace(job, status=TriageJobStatus.RUNNING, attempts=MAX_ATTEMPTS, started_at=now))
        uow.tickets.update(ticket.start_triage(now))
        uow.commit()
    clock.advance(timedelta(hours=1))

    container.use(RecoverStuckWork).execute(RecoverCommand(lease=timedelta(minutes=10)))
    deliver(container)

    [failed] = receiver.delivered("ticket.triage_failed")
    assert failed.payload is not None
    assert failed.payload["data"]["error_class"] == "lease_expired"
    assert failed.payload["data"]["ticket_id"] == str(ticket_id)


def test_a_binary_answer_is_logged_as_readable_text(container: Container, receiver: WebhookReceiver) -> None:
    endpoint_id = subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGED,))
    receiver.default_status = 200
    receiver.response_body = b"\x1f\x8b\x08\x00binary\x00answer" + b"x" * 5_000
    triage(container, "T-1")

    assert deliver(container).delivered == 1

    [entry] = container.use(ListDeliveries).execute(DeliveryLogQuery(endpoint_id, None))
    excerpt = entry.attempt.response_excerpt
    assert excerpt is not None and "\x00" not in excerpt and "binaryanswer" in excerpt and len(excerpt) <= 1_000


def test_one_endpoints_backlog_leaves_room_in_a_claim_for_the_others(container: Container) -> None:
    with webhook_receiver() as busy, webhook_receiver() as quiet:
        other = new_owner(container)
        subscribe(container, busy, DEFAULT_OWNER_ID, (EventType.TICKET_TRIAGED,))
        subscribe(container, quiet, other, (EventType.TICKET_TRIAGED,))
        for i in range(6):
            triage(container, f"T-{i}")
        triage(container, "Q-1", other)
        with container.uow() as uow:
            claimed = uow.outbox.claim_due(container.clock.now(), 4, timedelta(seconds=30), uuid4(), per_endpoint=2)
            uow.commit()

    by_endpoint = Counter(due.endpoint_id for due in claimed)
    assert sorted(by_endpoint.values()) == [1, 2]  # the busy endpoint's 6 take 2 of the 4 places


def test_redelivering_an_event_being_sent_is_refused(container: Container, receiver: WebhookReceiver) -> None:
    endpoint_id = subscribe(container, receiver, event_types=(EventType.TICKET_TRIAGED,))
    triage(container, "T-1")
    with container.uow() as uow:
        [due] = uow.outbox.claim_due(container.clock.now(), 1, timedelta(seconds=30), uuid4(), per_endpoint=1)
        uow.commit()

    with pytest.raises(DeliveryInFlight):
        container.use(RedeliverEvent).execute(RedeliverCommand(endpoint_id, None, due.event.id))
