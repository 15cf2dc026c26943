"""`triage webhooks ...`: the operator's view of webhook subscriptions, their delivery log, and a deliverer.

The CLI acts as an admin: it sees every endpoint (all owners'), and may create all-owners subscriptions.
A signing secret is printed twice in an endpoint's life at most: by `add` and by `rotate-secret`, each the
moment it is made; nothing else ever prints one (the service keeps it sealed with WEBHOOK_SECRETS_KEY).

`deliver` is one more deliverer beside the Dagster sensor: deliveries are leased, so both may run at once
without sending an event twice at the same time. `deliver --watch` finishes the pass in progress when it
gets Ctrl-C or SIGTERM and exits 0; a second signal stops at once (the leases it held expire, and the
events go out again later with the same `webhook-id`).

Every failure the user can act on (a bad id, an unknown event type, an unsafe URL, a missing key, an
unreachable database) is raised as a `ValueError` or a `DomainError`, which `triage` prints as one line.
"""

import argparse
import functools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any
from uuid import UUID

from rich import box
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from triage_pipeline.application.webhooks.delivery import (
    DeliverCommand,
    DeliverDueWebhooks,
    DeliveryReport,
    NextDueQuery,
    TimeToNextDue,
)
from triage_pipeline.application.webhooks.subscriptions import (
    MAX_LOG_PAGE,
    CreateWebhook,
    CreateWebhookCommand,
    DeleteWebhook,
    DeliveryLogQuery,
    ListDeliveries,
    ListWebhooks,
    ListWebhooksQuery,
    RedeliverCommand,
    RedeliverEvent,
    RotateWebhookSecret,
    SendTestEvent,
    UpdateWebhook,
    UpdateWebhookCommand,
    WebhookRef,
)
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.output import console
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.webhook import DESCRIPTION_MAX_LENGTH, SUBSCRIBABLE_EVENT_TYPES, EventType, WebhookEndpoint
from triage_pipeline.domain.webhook_ports import DeliveryLogEntry

DEFAULT_TIME_BUDGET_S = DeliverCommand().time_budget.total_seconds()
"""How long one pass of `deliver` may go on sending (the Dagster sensor's budget too)."""
MAX_RETRY_PAUSE_S = 60.0
"""`deliver --watch` with the database unreachable tries again after 2, 4, 8 ... intervals, at most this long."""
DEFAULT_WATCH_INTERVAL_S = 30.0
"""`deliver --watch` passes at least this often (new deliveries and due retries wake it sooner)."""

type ContainerHandler = Callable[[Container, argparse.Namespace], int]


def _database_errors_as_one_line(handler: ContainerHandler) -> ContainerHandler:
    """The database failing mid-command is one line (`triage` prints ValueError), never a traceback."""

    @functools.wraps(handler)
    def run(container: Container, args: argparse.Namespace) -> int:
        try:
            return handler(container, args)
        except SQLAlchemyError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"the database failed: {reason}") from None

    return run


def parse_uuid(value: str, what: str) -> UUID:
    """The UUID in `value`; a ValueError naming `what` (say "webhook id") when it is not one."""
    try:
        return UUID(value.strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a UUID") from None


def parse_event_types(values: list[str]) -> tuple[EventType, ...]:
    """`--event` values (each may also be comma-separated) as event types; ValueError naming an unknown one.

    `ping` parses here; the use case refuses it (only `webhooks test` sends one).
    """
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    known = {t.value: t for t in EventType}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown event type(s) {', '.join(repr(n) for n in unknown)}; the event types are: "
            + ", ".join(SUBSCRIBABLE_EVENT_TYPES)
        )
    if not names:
        raise ValueError("give at least one --event; the event types are: " + ", ".join(SUBSCRIBABLE_EVENT_TYPES))
    return tuple(known[name] for name in names)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""


def _short(moment: datetime) -> str:
    """Month-day over the time, in UTC: the log spans a day or so (the retries of one event take 27 h at most)."""
    return moment.astimezone(UTC).strftime("%m-%d\n%H:%M:%S")


def _owner(owner_id: UUID | None) -> str:
    """An endpoint's owner in a table cell."""
    if owner_id is None:
        return "all"
    return "default" if owner_id == DEFAULT_OWNER_ID else str(owner_id)


def _whose(owner_id: UUID | None) -> str:
    """Whose events an endpoint receives, in a sentence."""
    if owner_id is None:
        return "every owner"
    return "the default owner" if owner_id == DEFAULT_OWNER_ID else f"owner {owner_id}"


def _state(endpoint: WebhookEndpoint) -> str:
    """enabled or disabled (and why), then the run of failed attempts, if one is going on."""
    state = "enabled" if endpoint.enabled else f"disabled: {endpoint.disabled_reason or 'no reason recorded'}"
    if endpoint.consecutive_failures:
        since = f" since {endpoint.failing_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if endpoint.failing_since else ""
        state += f"; {endpoint.consecutive_failures} failed attempt(s) in a row{since}"
    return state


def endpoint_record(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as JSON (`list --json`): every public field; there is no secret on an endpoint."""
    return {
        "id": str(endpoint.id),
        "owner_id": str(endpoint.owner_id) if endpoint.owner_id else None,
        "url": endpoint.url,
        "event_types": [t.value for t in endpoint.event_types],
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "consecutive_failures": endpoint.consecutive_failures,
        "failing_since": _when(endpoint.failing_since) or None,
        "previous_secret_expires_at": _when(endpoint.previous_secret_expires_at) or None,
        "created_at": _when(endpoint.created_at),
        "updated_at": _when(endpoint.updated_at),
    }


def log_record(entry: DeliveryLogEntry) -> dict[str, Any]:
    """One attempt of the delivery log as JSON (`deliveries --json`)."""
    attempt = entry.attempt
    return {
        "attempt_id": str(attempt.id),
        "delivery_id": str(attempt.delivery_id),
        "event_id": str(attempt.event_id),
        "event_type": entry.event_type,
        "attempt": attempt.attempt,
        "started_at": _when(attempt.started_at),
        "latency_ms": attempt.latency_ms,
        "succeeded": attempt.succeeded,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "response_excerpt": attempt.response_excerpt,
        "delivery_status": entry.delivery_status.value,
        "next_attempt_at": _when(entry.next_attempt_at) or None,
    }


def _print_json(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


def cmd_list(container: Container, args: argparse.Namespace) -> int:
    """Every endpoint (or one owner's), oldest first: a table, or JSON lines with --json. Never a secret."""
    owner_id = parse_uuid(args.owner_id, "owner id") if args.owner_id else None
    endpoints = container.use(ListWebhooks).execute(ListWebhooksQuery(visible_owner=owner_id))
    if args.json:
        for endpoint in endpoints:
            _print_json(endpoint_record(endpoint))
        return 0
    # The ids stay whole (to be pasted into the other commands); the rest wraps, so 80 columns still read.
    table = Table(
        title=f"webhooks of {'owner ' + str(owner_id) if owner_id else 'every owner'}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("id\nowner", no_wrap=True, min_width=36)
    table.add_column("url\nevents", overflow="fold")
    table.add_column("state")
    for e in endpoints:
        table.add_row(f"{e.id}\n{_owner(e.owner_id)}", f"{e.url}\n{', '.join(e.event_types)}", _state(e))
    console.print(table)
    if not endpoints:
        console.print("no webhook endpoint yet: `triage webhooks add URL --event TYPE` creates one")
    return 0


def cmd_add(container: Container, args: argparse.Namespace) -> int:
    """Create an endpoint and print its signing secret, this once."""
    event_types = parse_event_types(args.event_types)
    if args.all_owners:
        owner_id = None
    elif args.owner_id:
        owner_id = parse_uuid(args.owner_id, "owner id")
    else:
        owner_id = DEFAULT_OWNER_ID
    description = args.description or ""
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ValueError(f"the description is longer than {DESCRIPTION_MAX_LENGTH} characters")
    created = container.use(CreateWebhook).execute(CreateWebhookCommand(owner_id, args.url, event_types, description))
    endpoint = created.endpoint
    if args.json:
        _print_json({**endpoint_record(endpoint), "secret": created.secret})
        return 0
    print(f"created webhook {endpoint.id} for the events of {_whose(endpoint.owner_id)}: {endpoint.url}")
    print(f"events: {', '.join(endpoint.event_types)}")
    print(f"signing secret: {created.secret}")
    print(
        "store this secret now: it will not be shown again "
        f"(`triage webhooks rotate-secret {endpoint.id}` makes a new one)"
    )
    return 0


def cmd_remove(container: Container, args: argparse.Namespace) -> int:
    endpoint_id = parse_uuid(args.endpoint_id, "webhook id")
    container.use(DeleteWebhook).execute(WebhookRef(endpoint_id, visible_owner=None))
    print(f"removed webhook {endpoint_id} with its pending deliveries and its delivery log")
    return 0


def cmd_enable(container: Container, args: argparse.Namespace) -> int:
    """Enabling ends the failure run; events that came while it was disabled are not sent (see `redeliver`)."""
    endpoint_id = parse_uuid(args.endpoint_id, "webhook id")
    container.use(UpdateWebhook).execute(UpdateWebhookCommand(endpoint_id, visible_owner=None, enabled=True))
    print(f"webhook {endpoint_id} enabled")
    return 0


def cmd_disable(container: Container, args: argparse.Namespace) -> int:
    endpoint_id = parse_uuid(args.endpoint_id, "webhook id")
    container.use(UpdateWebhook).execute(UpdateWebhookCommand(endpoint_id, visible_owner=None, enabled=False))
    print(f"webhook {endpoint_id} disabled: it gets no new events until `triage webhooks enable {endpoint_id}`")
    return 0


def cmd_rotate_secret(container: Container, args: argparse.Namespace) -> int:
    """Print the new secret, this once, and until when the previous one still signs."""
    endpoint_id = parse_uuid(args.endpoint_id, "webhook id")
    rotated = container.use(RotateWebhookSecret).execute(WebhookRef(endpoint_id, visible_owner=None))
    print(f"new signing secret of webhook {endpoint_id}: {rotated.secret}")
    print(
        f"store this secret now: it will not be shown again; the previous secret also signs until "
        f"{_when(rotated.previous_valid_until)}"
    )
    return 0


def cmd_test(container: Container, args: argparse.Namespace) -> int:
    endpoint_id = parse_uuid(args.endpoint_id, "webhook id")
    queued = container.use(SendTestEvent).execute(WebhookRef(endpoint_id, visible_owner=None))
    print(
        f"queued a ping to webhook {endpoint_id}: event {queued.event_id} (webhook-id {queued.webhook_id}); "
        "the running service sends it within seconds, or `triage webhooks deliver` now"
    )
    return 0


def cmd_deliveries(container: Container, args: argparse.Namespace) -> int:
    """The endpoint's delivery log, newest attempt first."""
    endpoint_id = parse_uuid(args.endpoint_id, "webhook id")
    log = container.use(ListDeliveries).execute(DeliveryLogQuery(endpoint_id, visible_owner=None, limit=args.limit))
    if args.json:
        for entry in log:
            _print_json(log_record(entry))
        return 0
    # The event ids stay whole (for `triage webhooks redeliver`); the rest wraps, so 80 columns still read.
    table = Table(title=f"deliveries of webhook {endpoint_id}, newest first", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("started\n(UTC)", min_width=8)
    table.add_column("#", justify="right")
    table.add_column("event\nevent id", no_wrap=True, min_width=36)
    table.add_column("answer", overflow="fold")
    table.add_column("ms", justify="right")
    table.add_column("delivery\nnext attempt", min_width=9)
    for entry in log:
        a = entry.attempt
        answer = str(a.status_code) if a.status_code is not None else ""
        if a.error:
            answer = f"{answer} {a.error}".strip()
        delivery = entry.delivery_status.value
        if entry.next_attempt_at is not None:
            delivery += f"\n{_short(entry.next_attempt_at)}"
        table.add_row(
            _short(a.started_at),
            str(a.attempt),
            f"{entry.event_type}\n{a.event_id}",
            answer,
            str(a.latency_ms),
            delivery,
        )
    console.print(table)
    if not log:
        console.print("no attempt yet")
    return 0


def cmd_redeliver(container: Container, args: argparse.Namespace) -> int:
    endpoint_id = parse_uuid(args.endpoint_id, "webhook id")
    event_id = parse_uuid(args.event_id, "event id")
    queued = container.use(RedeliverEvent).execute(RedeliverCommand(endpoint_id, None, event_id))
    print(
        f"queued event {queued.event_id} (webhook-id {queued.webhook_id}) again for webhook {endpoint_id}, "
        "on a fresh retry schedule"
    )
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside: the first SIGINT/SIGTERM sets `stop`, a second raises KeyboardInterrupt (stop now)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; a caller off it stops by setting `stop` itself
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pause(container: Container, interval: float) -> float:
    """Until the next retry is due, at most `interval`: new deliveries wake the watcher before that."""
    due_in = container.use(TimeToNextDue).execute(NextDueQuery())
    return interval if due_in is None else min(interval, due_in.total_seconds())


def _wait(container: Container, stop: threading.Event, seconds: float) -> None:
    """Sleep up to `seconds`, woken early by the outbox's NOTIFY or a stop (looked at every second)."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if container.outbox_listener.wait(min(1.0, left)):
            return


def cmd_deliver(container: Container, args: argparse.Namespace) -> int:
    """One pass (the default) or, with --watch, passes until a signal, each when deliveries were added or a
    retry came due (at least every --interval seconds); prints each that sent something."""
    container.secret_box.seal("")  # WebhooksNotConfigured now, before any delivery is leased, when there is no key
    budget = timedelta(seconds=args.time_budget)
    deliver = container.use(DeliverDueWebhooks)
    if not args.watch:
        report = deliver.execute(DeliverCommand(time_budget=budget))
        print(report.summary() if report.attempted else "nothing due", flush=True)
        return 0
    interval = args.interval if args.interval is not None else DEFAULT_WATCH_INTERVAL_S
    stop = threading.Event()
    total = DeliveryReport()
    passes = failures_in_a_row = 0
    with _stop_on_signals(stop):
        print(
            f"delivering webhooks as they come (and at least every {interval:g} s); "
            "Ctrl-C or SIGTERM stops after the current pass (a second one: at once)",
            flush=True,
        )
        while not stop.is_set():
            started = time.monotonic()
            pause = interval
            try:
                report = deliver.execute(DeliverCommand(time_budget=budget))
                pause = _pause(container, interval)
                failures_in_a_row = 0
            except SQLAlchemyError as exc:  # the database away for a while: say so, and try again, less often
                failures_in_a_row += 1
                pause = min(interval * 2**failures_in_a_row, MAX_RETRY_PAUSE_S)
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                message = f"triage: delivery pass failed: {reason}; trying again in {pause:g} s"
                print(message, file=sys.stderr, flush=True)
                report = DeliveryReport()
            passes += 1
            total.add(report)
            if report.attempted:
                print(f"{_when(container.clock.now())} {report.summary()}", flush=True)
            if time.monotonic() - started < args.time_budget:  # a pass cut by its budget goes on at once
                if failures_in_a_row:
                    stop.wait(pause)
                else:
                    _wait(container, stop, pause)
    print(f"stopped after {passes} pass(es): {total.summary()}", flush=True)
    return 0


def _positive_seconds(value: str) -> float:
    number = float(value)
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return number


def _endpoint_parser(actions: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, help_text: str) -> None:
    parser = actions.add_parser(name, help=help_text)
    parser.add_argument("endpoint_id", metavar="ID", help="the webhook's id (see `triage webhooks list`)")
    handlers: dict[str, ContainerHandler] = {
        "remove": cmd_remove,
        "enable": cmd_enable,
        "disable": cmd_disable,
        "rotate-secret": cmd_rotate_secret,
        "test": cmd_test,
    }
    parser.set_defaults(container_handler=_database_errors_as_one_line(handlers[name]))


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `webhooks list|add|remove|enable|disable|rotate-secret|test|deliveries|redeliver|deliver`."""
    webhooks = sub.add_parser(
        "webhooks", help="webhook subscriptions: list | add URL | remove ID | deliveries ID | redeliver | deliver"
    )
    actions = webhooks.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("list", help="endpoints, oldest first, with their state (never their secrets)")
    listing.add_argument("--owner", "--owner-id", dest="owner_id", default=None, help="only this owner's endpoints")
    listing.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    listing.set_defaults(container_handler=_database_errors_as_one_line(cmd_list))

    add = actions.add_parser("add", help="subscribe URL to events; prints the signing secret once")
    add.add_argument("url", metavar="URL", help="http(s) URL of the receiver; private addresses are refused")
    add.add_argument(
        "--event",
        dest="event_types",
        action="append",
        required=True,
        metavar="TYPE",
        help="an event type to receive (repeat, or comma-separate): " + ", ".join(SUBSCRIBABLE_EVENT_TYPES),
    )
    whose = add.add_mutually_exclusive_group()
    whose.add_argument(
        "--owner", "--owner-id", dest="owner_id", default=None, help="events of this owner (default: the default owner)"
    )
    whose.add_argument("--all-owners", action="store_true", help="events of every owner, and whole-batch batch.done")
    add.add_argument("--description", default="", help=f"a note for people, at most {DESCRIPTION_MAX_LENGTH} chars")
    add.add_argument("--json", action="store_true", help="print the endpoint and its secret as one JSON object")
    add.set_defaults(container_handler=_database_errors_as_one_line(cmd_add))

    _endpoint_parser(actions, "remove", "delete an endpoint, its pending deliveries and its delivery log")
    _endpoint_parser(actions, "enable", "enable an endpoint again (ends its failure run)")
    _endpoint_parser(actions, "disable", "stop sending to an endpoint (its events are not queued while disabled)")
    _endpoint_parser(actions, "rotate-secret", "new signing secret, printed once; the old one signs for a grace time")
    _endpoint_parser(actions, "test", "queue a ping to this endpoint alone")

    deliveries = actions.add_parser("deliveries", help="an endpoint's delivery log, newest attempt first")
    deliveries.add_argument("endpoint_id", metavar="ID")
    deliveries.add_argument("--limit", type=int, default=50, help=f"attempts to show, 1 to {MAX_LOG_PAGE} (default 50)")
    deliveries.add_argument("--json", action="store_true", help="one JSON object per attempt instead of a table")
    deliveries.set_defaults(container_handler=_database_errors_as_one_line(cmd_deliveries))

    redeliver = actions.add_parser("redeliver", help="send one event to an endpoint again, on a fresh schedule")
    redeliver.add_argument("endpoint_id", metavar="ID")
    redeliver.add_argument("event_id", metavar="EVENT_ID", help="the event's id (see `triage webhooks deliveries`)")
    redeliver.set_defaults(container_handler=_database_errors_as_one_line(cmd_redeliver))

    deliver = actions.add_parser(
        "deliver", help="send what is due now (one pass), or keep delivering with --watch until Ctrl-C / SIGTERM"
    )
    deliver.add_argument(
        "--watch",
        action="store_true",
        help="keep delivering until stopped: woken by new deliveries (PostgreSQL NOTIFY) and when a retry is due",
    )
    deliver.add_argument(
        "--interval",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help=f"--watch: the longest pause between passes (default {DEFAULT_WATCH_INTERVAL_S:g})",
    )
    deliver.add_argument(
        "--time-budget",
        type=_positive_seconds,
        default=DEFAULT_TIME_BUDGET_S,
        metavar="SECONDS",
        help=f"how long one pass may go on sending (default {DEFAULT_TIME_BUDGET_S:g})",
    )
    deliver.set_defaults(container_handler=_database_errors_as_one_line(cmd_deliver))
