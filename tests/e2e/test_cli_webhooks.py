"""`triage webhooks ...` against the real PostgreSQL, delivering to real receivers on loopback that verify every
request with the `standardwebhooks` library: the secret shown once, refusals as one line, the delivery log,
and the deliverer in one pass and in `--watch` (a real subprocess stopped by SIGTERM)."""

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from tests.support.fake_ollama import FakeOllama
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from triage_pipeline.application.intake import CreateTicket, NewTicket
from triage_pipeline.application.ticket_queries import GetTicket, GetTicketQuery
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.application.webhooks.delivery import DeliverCommand, DeliverDueWebhooks, DeliveryReport
from triage_pipeline.application.webhooks.subscriptions import ListWebhooks
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.main import main
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.infrastructure import webhook_key
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRIAGE = str(PROJECT_ROOT / ".venv" / "bin" / "triage")
UNKNOWN = "00000000-0000-4000-8000-00000000abcd"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str, clean_db: object, fake_ollama: FakeOllama) -> None:
    """The CLI on the test database; private targets refused unless a test allows them."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LLM_BASE_URL", fake_ollama.url)
    monkeypatch.setenv("LLM_MODEL", "fake-model")
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", raising=False)
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "2")


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers of these tests listen on 127.0.0.1, which the SSRF guard refuses by default."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")


@pytest.fixture
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables one row a line (rich reads COLUMNS), so a cell's text is not wrapped across lines."""
    monkeypatch.setenv("COLUMNS", "220")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`triage argv` in process: its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one error line of a command that must fail with exit code 2."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert "Traceback" not in err and "\n" not in err.strip(), err
    assert err.startswith("triage: error: "), err
    return err.strip().removeprefix("triage: error: ")


def add(capsys: pytest.CaptureFixture[str], url: str, *flags: str) -> tuple[UUID, str, str]:
    """`webhooks add`: the endpoint id, the secret and the whole output."""
    out = ok(capsys, "webhooks", "add", url, *(flags or ("--event", "ticket.triaged")))
    endpoint_id = re.search(r"created webhook ([0-9a-f-]{36})", out)
    secret = re.search(r"signing secret: (whsec_\S+)", out)
    assert endpoint_id and secret, out
    return UUID(endpoint_id.group(1)), secret.group(1), out


def listed(capsys: pytest.CaptureFixture[str], *flags: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(capsys, "webhooks", "list", "--json", *flags).splitlines()]


def log(capsys: pytest.CaptureFixture[str], endpoint_id: UUID) -> list[dict[str, Any]]:
    out = ok(capsys, "webhooks", "deliveries", str(endpoint_id), "--json")
    return [json.loads(line) for line in out.splitlines()]


def new_owner(uow_factory: SqlUnitOfWorkFactory) -> UUID:
    now = datetime.now(UTC)
    owner = Owner(id=uuid4(), name="Acme", created_at=now, updated_at=now)
    with uow_factory() as uow:
        uow.owners.add(owner)
        uow.commit()
    return owner.id


def triage_ticket(container: Container, external_id: str) -> UUID:
    """A ticket of the default owner, triaged (its events written to the outbox with the answer)."""
    ticket = container.use(CreateTicket).execute(NewTicket(DEFAULT_OWNER_ID, external_id, "Checkout fails", "Error"))
    job = container.use(GetTicket).execute(GetTicketQuery(ticket.id)).job
    assert job is not None
    container.use(TriageOneJob).execute(TriageJobCommand(job.id))
    return ticket.id


def test_add_prints_the_secret_once_and_list_never_shows_it(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, clean_db: Engine
) -> None:
    endpoint_id, secret, out = add(
        capsys,
        "http://127.0.0.1:9/hook",
        "--event",
        "ticket.triaged",
        "--event",
        "batch.done",
        "--description",
        "support desk",
    )
    assert "it will not be shown again" in out
    assert out.count(secret) == 1

    [endpoint] = listed(capsys)
    assert endpoint["id"] == str(endpoint_id) and endpoint["owner_id"] == str(DEFAULT_OWNER_ID)
    assert endpoint["event_types"] == ["ticket.triaged", "batch.done"]
    assert endpoint["enabled"] is True and endpoint["description"] == "support desk"
    table = ok(capsys, "webhooks", "list")
    assert str(endpoint_id) in table and "ticket.triaged" in table
    everything = json.dumps(endpoint) + table + ok(capsys, "webhooks", "deliveries", str(endpoint_id))
    assert secret not in everything and "whsec_" not in everything
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT row_to_json(e)::text FROM webhook_endpoints e")).scalar_one()
    assert secret not in stored and secret.removeprefix("whsec_") not in stored  # sealed at rest


def test_add_subscribes_one_owner_or_every_owner_and_list_filters_by_owner(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, uow_factory: SqlUnitOfWorkFactory
) -> None:
    owner_id = new_owner(uow_factory)
    acme, _, acme_out = add(capsys, "http://127.0.0.1:9/acme", "--event", "ticket.corrected", "--owner", str(owner_id))
    everyone, _, everyone_out = add(capsys, "http://127.0.0.1:9/all", "--event", "batch.done", "--all-owners")
    assert f"for the events of owner {owner_id}" in acme_out and "for the events of every owner" in everyone_out

    assert [e["id"] for e in listed(capsys)] == [str(acme), str(everyone)]
    assert [e["id"] for e in listed(capsys, "--owner", str(owner_id))] == [str(acme)]
    assert [e["owner_id"] for e in listed(capsys)] == [str(owner_id), None]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 resolves to a loopback, private, link-local or reserved address"),
        ("http://169.254.169.254/latest/meta-data", "resolves to a cloud metadata address"),
        ("http://10.1.2.3/hook", "10.1.2.3 resolves to a loopback, private"),
        ("http://localhost/hook", "a loopback, private, link-local or reserved address"),
        ("file:///etc/passwd", "the URL must be http or https, not 'file'"),
        ("http://user:pw@example.com/hook", "must not carry credentials"),
    ],
)
def test_add_refuses_an_unsafe_target_with_one_line_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], count_rows: Callable[[str], int], url: str, message: str
) -> None:
    assert message in refused(capsys, "webhooks", "add", url, "--event", "ticket.triaged")
    assert count_rows("webhook_endpoints") == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["add", "http://127.0.0.1:9/h", "--event", "ticket.closed"],
            "unknown event type(s) 'ticket.closed'; the event types are: ticket.triaged, ticket.needs_review",
        ),
        (["add", "http://127.0.0.1:9/h", "--event", "ping"], "ping cannot be subscribed to"),
        (["add", "http://127.0.0.1:9/h", "--event", ","], "give at least one --event"),
        (["add", "http://127.0.0.1:9/h", "--event", "batch.done", "--owner", "acme"], "owner id 'acme' is not a UUID"),
        (["add", "http://127.0.0.1:9/h", "--event", "batch.done", "--owner", UNKNOWN], f"owner {UNKNOWN} not found"),
        (["add", "http://127.0.0.1:9/h", "--event", "batch.done", "--description", "x" * 501], "longer than 500"),
        (["add", "http://127.0.0.1:9/" + "h" * 2000, "--event", "batch.done"], "longer than 2000 characters"),
        (["remove", "not-a-uuid"], "webhook id 'not-a-uuid' is not a UUID"),
        (["remove", UNKNOWN], f"webhook {UNKNOWN} not found"),
        (["enable", UNKNOWN], f"webhook {UNKNOWN} not found"),
        (["disable", "123"], "webhook id '123' is not a UUID"),
        (["rotate-secret", UNKNOWN], f"webhook {UNKNOWN} not found"),
        (["test", UNKNOWN], f"webhook {UNKNOWN} not found"),
        (["deliveries", UNKNOWN], f"webhook {UNKNOWN} not found"),
        (["deliveries", "zz"], "webhook id 'zz' is not a UUID"),
        (["redeliver", UNKNOWN, "nope"], "event id 'nope' is not a UUID"),
        (["redeliver", UNKNOWN, UNKNOWN], f"webhook {UNKNOWN} not found"),
        (["list", "--owner", "acme"], "owner id 'acme' is not a UUID"),
    ],
)
def test_bad_input_gives_one_line_naming_the_problem_exit_2_and_stores_nothing(
    capsys: pytest.CaptureFixture[str],
    allow_loopback: None,
    count_rows: Callable[[str], int],
    argv: list[str],
    message: str,
) -> None:
    assert message in refused(capsys, "webhooks", *argv)
    assert count_rows("webhook_endpoints") == 0 and count_rows("webhook_events") == 0


def test_an_unknown_event_or_a_bad_limit_of_a_real_endpoint_is_refused_with_one_line(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, count_rows: Callable[[str], int]
) -> None:
    endpoint_id, _, _ = add(capsys, "http://127.0.0.1:9/hook")
    assert refused(capsys, "webhooks", "redeliver", str(endpoint_id), UNKNOWN) == f"event {UNKNOWN} not found"
    assert refused(capsys, "webhooks", "deliveries", str(endpoint_id), "--limit", "0") == (
        "limit must be between 1 and 500"
    )
    assert count_rows("webhook_deliveries") == 0


def test_without_webhook_secrets_key_add_rotate_and_deliver_name_the_setting_and_store_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    allow_loopback: None,
    monkeypatch: pytest.MonkeyPatch,
    count_rows: Callable[[str], int],
) -> None:
    endpoint_id, _, _ = add(capsys, "http://127.0.0.1:9/hook")
    monkeypatch.delenv("WEBHOOK_SECRETS_KEY")
    monkeypatch.setattr(webhook_key, "WEBHOOK_KEY_FILE", tmp_path / "no-key-here")  # nor a local key file

    for argv in (
        ["add", "http://127.0.0.1:9/other", "--event", "ticket.triaged"],
        ["rotate-secret", str(endpoint_id)],
        ["deliver"],
    ):
        assert refused(capsys, "webhooks", *argv).startswith("WEBHOOK_SECRETS_KEY is not set in this process")
    assert count_rows("webhook_endpoints") == 1
    assert [e["previous_secret_expires_at"] for e in listed(capsys)] == [None]  # not rotated


def test_deliver_sends_a_queued_test_ping_to_a_real_receiver_and_the_log_shows_it(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, receiver: WebhookReceiver
) -> None:
    endpoint_id, receiver.secret, _ = add(capsys, receiver.url)
    out = ok(capsys, "webhooks", "test", str(endpoint_id))
    event_id = re.search(r"event ([0-9a-f-]{36})", out)
    assert event_id and "queued a ping" in out

    assert ok(capsys, "webhooks", "deliver").startswith("1 attempted: 1 delivered, 0 to retry, 0 given up")

    [got] = receiver.delivered("ping")
    assert got.payload is not None and got.payload["data"] == {"endpoint_id": str(endpoint_id)}
    assert got.webhook_id == f"msg_{UUID(event_id.group(1)).hex}"
    [attempt] = log(capsys, endpoint_id)
    assert attempt["event_id"] == event_id.group(1) and attempt["event_type"] == "ping"
    assert (attempt["attempt"], attempt["status_code"], attempt["delivery_status"]) == (1, 204, "DELIVERED")
    assert attempt["error"] is None and attempt["next_attempt_at"] is None and attempt["latency_ms"] >= 0
    table = ok(capsys, "webhooks", "deliveries", str(endpoint_id))
    assert event_id.group(1) in table and "DELIVERED" in table and "204" in table
    assert ok(capsys, "webhooks", "deliver").strip() == "nothing due"


def test_deliver_sends_a_triaged_tickets_event_and_redeliver_sends_it_again_with_the_same_webhook_id(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, receiver: WebhookReceiver, container: Container
) -> None:
    endpoint_id, receiver.secret, _ = add(capsys, receiver.url, "--event", "ticket.triaged")
    ticket_id = triage_ticket(container, "T-1")

    assert "1 delivered" in ok(capsys, "webhooks", "deliver")
    [first] = receiver.delivered("ticket.triaged")
    assert first.payload is not None and first.payload["data"]["ticket_id"] == str(ticket_id)
    [attempt] = log(capsys, endpoint_id)

    out = ok(capsys, "webhooks", "redeliver", str(endpoint_id), attempt["event_id"])
    assert f"queued event {attempt['event_id']}" in out
    assert "1 delivered" in ok(capsys, "webhooks", "deliver")
    assert [r.webhook_id for r in receiver.delivered("ticket.triaged")] == [first.webhook_id] * 2


def test_a_failing_receiver_shows_in_the_log_with_its_next_attempt_and_in_the_list_as_a_failure_run(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, receiver: WebhookReceiver, wide_tables: None
) -> None:
    endpoint_id, receiver.secret, _ = add(capsys, receiver.url)
    receiver.default_status = 503
    ok(capsys, "webhooks", "test", str(endpoint_id))

    assert ok(capsys, "webhooks", "deliver").startswith("1 attempted: 0 delivered, 1 to retry")

    [attempt] = log(capsys, endpoint_id)
    assert (attempt["status_code"], attempt["delivery_status"]) == (503, "PENDING")
    assert attempt["next_attempt_at"] is not None and attempt["response_excerpt"] == "nope"
    [endpoint] = listed(capsys)
    assert endpoint["consecutive_failures"] == 1 and endpoint["failing_since"] is not None
    assert "enabled; 1 failed attempt(s) in a row since" in ok(capsys, "webhooks", "list")
    table = ok(capsys, "webhooks", "deliveries", str(endpoint_id))
    assert "503" in table and "PENDING" in table and attempt["event_id"] in table


def test_a_disabled_endpoint_gets_no_events_until_enabled_then_gets_those_held_for_it(
    capsys: pytest.CaptureFixture[str],
    allow_loopback: None,
    receiver: WebhookReceiver,
    container: Container,
    wide_tables: None,
) -> None:
    endpoint_id, receiver.secret, _ = add(capsys, receiver.url, "--event", "ticket.triaged")
    assert "disabled" in ok(capsys, "webhooks", "disable", str(endpoint_id))
    [endpoint] = listed(capsys)
    assert endpoint["enabled"] is False and endpoint["disabled_reason"] == "disabled on request"
    assert "disabled: disabled on request" in ok(capsys, "webhooks", "list")

    triage_ticket(container, "T-1")
    assert ok(capsys, "webhooks", "deliver").strip() == "nothing due"

    assert "enabled" in ok(capsys, "webhooks", "enable", str(endpoint_id))
    assert [(e["enabled"], e["disabled_reason"]) for e in listed(capsys)] == [(True, None)]
    triage_ticket(container, "T-2")
    assert "2 delivered" in ok(capsys, "webhooks", "deliver")
    assert sorted(r.payload["data"]["external_id"] for r in receiver.delivered() if r.payload) == ["T-1", "T-2"]


def test_rotate_secret_prints_the_new_secret_once_and_both_secrets_verify_during_the_grace_period(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, receiver: WebhookReceiver
) -> None:
    endpoint_id, old_secret, _ = add(capsys, receiver.url)
    out = ok(capsys, "webhooks", "rotate-secret", str(endpoint_id))
    found = re.search(r"new signing secret of webhook \S+: (whsec_\S+)", out)
    assert found and found.group(1) != old_secret and "the previous secret also signs until" in out
    assert out.count(found.group(1)) == 1 and old_secret not in out

    for secret in (found.group(1), old_secret):
        receiver.secret = secret
        ok(capsys, "webhooks", "test", str(endpoint_id))
        assert "1 delivered" in ok(capsys, "webhooks", "deliver")
    assert len(receiver.delivered("ping")) == 2
    assert found.group(1) not in json.dumps(listed(capsys))


def test_remove_deletes_the_endpoint_and_its_log(
    capsys: pytest.CaptureFixture[str],
    allow_loopback: None,
    receiver: WebhookReceiver,
    count_rows: Callable[[str], int],
) -> None:
    endpoint_id, receiver.secret, _ = add(capsys, receiver.url)
    ok(capsys, "webhooks", "test", str(endpoint_id))
    ok(capsys, "webhooks", "deliver")

    assert f"removed webhook {endpoint_id}" in ok(capsys, "webhooks", "remove", str(endpoint_id))
    assert listed(capsys) == []
    assert count_rows("webhook_deliveries") == 0 and count_rows("webhook_delivery_attempts") == 0
    assert refused(capsys, "webhooks", "remove", str(endpoint_id)) == f"webhook {endpoint_id} not found"


def _lines(stream: Any) -> "queue.Queue[str]":
    """The stream's lines as they come, read on a thread (so a silent process cannot hang the test)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next_line(lines: "queue.Queue[str]", containing: str, deadline: float) -> str:
    while True:
        line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if containing in line:
            return line


def test_deliver_watch_is_woken_by_a_new_delivery_and_stops_cleanly_on_sigterm(
    capsys: pytest.CaptureFixture[str], allow_loopback: None, receiver: WebhookReceiver, database_url: str
) -> None:
    endpoint_id, receiver.secret, _ = add(capsys, receiver.url)
    env = {**os.environ, "DATABASE_URL": database_url, "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    process = subprocess.Popen(
        [TRIAGE, "webhooks", "deliver", "--watch", "--interval", "60"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 12
        lines = _lines(process.stdout)
        assert "Ctrl-C or SIGTERM stops" in _next_line(lines, "at least every 60 s", deadline)
        time.sleep(0.5)  # the watcher's first pass is over: it waits for the outbox's NOTIFY
        queued_at = time.monotonic()
        ok(capsys, "webhooks", "test", str(endpoint_id))  # its commit NOTIFYs: woken long before 60 s
        assert "1 delivered" in _next_line(lines, "attempted", deadline)
        assert time.monotonic() - queued_at < 5
        assert len(receiver.delivered("ping")) == 1

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=max(1.0, deadline - time.monotonic())) == 0
        assert "1 attempted: 1 delivered" in _next_line(lines, "stopped after", deadline)
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_deliver_watch_rides_out_a_database_outage_and_a_signal_restores_the_handlers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def flaky(self: DeliverDueWebhooks, command: DeliverCommand) -> DeliveryReport:
        calls.append(command)
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill` would, during the second pass: it still ends cleanly
        return DeliveryReport(attempted=1, delivered=1, latencies_ms=[7])

    monkeypatch.setattr(DeliverDueWebhooks, "execute", flaky)
    before = signal.getsignal(signal.SIGTERM)

    code, out, err = run(capsys, "webhooks", "deliver", "--watch", "--interval", "0.05")

    assert code == 0, err
    assert err.strip().splitlines() == [
        "triage: delivery pass failed: (builtins.Exception) connection refused; trying again in 0.1 s"
    ]
    assert "1 attempted: 1 delivered" in out.splitlines()[1]
    assert out.splitlines()[-1] == (
        "stopped after 2 pass(es): 1 attempted: 1 delivered, 0 to retry, 0 given up, 0 endpoint(s) disabled;"
        " latency median 7 ms, max 7 ms"
    )
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_database_failing_mid_command_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(self: ListWebhooks, query: object) -> None:
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(ListWebhooks, "execute", down)
    message = refused(capsys, "webhooks", "list")
    assert message == "the database failed: (builtins.Exception) server closed the connection unexpectedly"


def test_without_webhook_secrets_key_the_cli_uses_the_key_triage_run_stored(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    allow_loopback: None,
    monkeypatch: pytest.MonkeyPatch,
    count_rows: Callable[[str], int],
) -> None:
    key_file = tmp_path / ".triage_webhook_key"
    key_file.write_text(os.environ["WEBHOOK_SECRETS_KEY"] + "\n")
    monkeypatch.delenv("WEBHOOK_SECRETS_KEY")
    monkeypatch.setattr(webhook_key, "WEBHOOK_KEY_FILE", key_file)

    add(capsys, "http://127.0.0.1:9/hook")

    assert count_rows("webhook_endpoints") == 1
