"""The webhook deliverer: a sensor that sends the outbox's due deliveries inside its own tick.

Why a sensor that delivers, and not a job: a run launch costs seconds (benchmark 2: queue and run worker
start), per event or per burst; a tick runs in the long-lived code server on its shared connection pool,
so an event waits only for the next tick. Dagster's sensor daemon evaluates the sensors one after another
every 5 s at most, whatever `minimum_interval_seconds` says (WEBHOOK_SENSOR_INTERVAL_S cannot make it
faster): an event waits 0-5 s for its tick, then is sent (benchmark 10 measures it).

A tick delivers until nothing is due or its time budget is spent. The budget keeps the tick under
Dagster's sensor gRPC timeout, and keeps the other sensors of the same daemon loop (which launch the
triage runs) from waiting long behind a backlog of deliveries. An idle tick is one query: the claim.

What a data engineer sees in the UI: every tick's skip reason tells what it sent (delivered, to retry,
given up, endpoints disabled) and the outbox's figures (due backlog, oldest due age, pending, disabled
endpoints, the last hour's deliveries and failures); the cursor keeps those figures as JSON; and the
`webhook_outbox` asset gets an observation with them when they change, which the UI plots. The figures
are read after a tick that sent something and at most every FIGURES_REFRESH otherwise, so an idle tick
stays one query.

Several deliverers may run at once (a second daemon, `triage webhooks deliver`): a lease hands each
delivery to one of them.
"""

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from triage_pipeline.application.webhooks.delivery import (
    DeliverCommand,
    DeliverDueWebhooks,
    DeliveryReport,
    GetOutboxFigures,
    OutboxFiguresQuery,
)
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.domain.webhook_ports import OutboxFigures
from triage_pipeline.infrastructure.settings import Settings

WEBHOOK_OUTBOX_ASSET = "webhook_outbox"
FIGURES_REFRESH = timedelta(seconds=60)
"""When no tick sends anything, the outbox's figures are read again this often (a second query)."""
MAX_TICK = timedelta(seconds=10)
"""The longest a tick keeps delivering: the other sensors of the daemon's loop wait behind it."""
MIN_TICK = timedelta(seconds=1)
TIMEOUT_MARGIN_S = 5.0

NO_KEY = (
    "WEBHOOK_SECRETS_KEY is not set in the Dagster code server: webhook signing secrets cannot be read, "
    "so nothing is delivered (`triage run` sets one; elsewhere set the same key as the API's)"
)

webhook_outbox = AssetSpec(
    key=WEBHOOK_OUTBOX_ASSET,
    group_name="webhooks",
    description=(
        "The webhook outbox (tables webhook_events, webhook_deliveries, webhook_delivery_attempts), written in "
        "the transaction of each change it tells of. The `webhook_deliveries` sensor sends what is due and "
        "records an observation with the outbox's figures whenever they change: due backlog, oldest due age, "
        "pending, disabled endpoints, the last hour's deliveries and failed attempts, and what its tick sent."
    ),
)


def sensor_timeout_s() -> float:
    """How long the daemon waits for a sensor tick (Dagster's DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS, else
    DAGSTER_GRPC_TIMEOUT_SECONDS, else 60 s, as Dagster reads them)."""
    raw = os.getenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS") or os.getenv("DAGSTER_GRPC_TIMEOUT_SECONDS")
    return float(raw) if raw else 60.0


def tick_budget(settings: Settings, timeout_s: float) -> timedelta:
    """The time a tick may start new deliveries in: at most MAX_TICK, and short enough that the tick ends
    before the daemon's timeout `timeout_s`.

    The budget is checked before each claim, and a claim takes 2 x WEBHOOK_CONCURRENCY deliveries sent
    WEBHOOK_CONCURRENCY at a time: after its last check a tick may still wait two request timeouts.
    """
    room = timeout_s - 2 * settings.webhook_timeout_s - TIMEOUT_MARGIN_S
    return max(MIN_TICK, min(MAX_TICK, timedelta(seconds=room)))


@dataclass(frozen=True)
class FiguresCursor:
    """The outbox's figures as last read, and when (the sensor's cursor)."""

    at: datetime | None = None
    figures: OutboxFigures | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "FiguresCursor":
        """Read a cursor written by `dump`; an unreadable one is as none (the figures are read again)."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            age = data["oldest_due_age_s"]
            figures = OutboxFigures(
                pending=int(data["pending"]),
                due=int(data["due"]),
                oldest_due_age=timedelta(seconds=float(age)) if age is not None else None,
                failed_last_hour=int(data["failed_last_hour"]),
                delivered_last_hour=int(data["delivered_last_hour"]),
                disabled_endpoints=int(data["disabled_endpoints"]),
            )
            return cls(datetime.fromisoformat(data["at"]), figures)
        except (ValueError, KeyError, TypeError):
            return cls()

    def dump(self) -> str | None:
        """What `parse` reads back; None before the figures were first read."""
        if self.at is None or self.figures is None:
            return None
        f = self.figures
        return json.dumps(
            {
                "at": self.at.isoformat(),
                "due": f.due,
                "oldest_due_age_s": round(f.oldest_due_age.total_seconds(), 3) if f.oldest_due_age else None,
                "pending": f.pending,
                "disabled_endpoints": f.disabled_endpoints,
                "delivered_last_hour": f.delivered_last_hour,
                "failed_last_hour": f.failed_last_hour,
            }
        )


def describe_tick(report: DeliveryReport) -> str:
    """What one tick sent, for its skip reason."""
    return f"sent {report.attempted}: {report.outcomes()}"


def describe_outbox(figures: OutboxFigures, at: datetime) -> str:
    """The outbox's figures, for a skip reason."""
    age = f"oldest due for {figures.oldest_due_age.total_seconds():.1f} s" if figures.oldest_due_age else "none due"
    return (
        f"outbox at {at.astimezone(UTC):%H:%M:%S} UTC: {figures.due} due ({age}), {figures.pending} pending, "
        f"{figures.disabled_endpoints} endpoint(s) disabled; last hour {figures.delivered_last_hour} delivered, "
        f"{figures.failed_last_hour} failed attempt(s)"
    )


def observation(report: DeliveryReport, figures: OutboxFigures) -> AssetObservation:
    """The figures as numbers on the `webhook_outbox` asset (the UI plots them over time)."""
    return AssetObservation(
        asset_key=AssetKey(WEBHOOK_OUTBOX_ASSET),
        metadata={
            "due": figures.due,
            "oldest_due_age_s": round(figures.oldest_due_age.total_seconds(), 3) if figures.oldest_due_age else 0.0,
            "pending": figures.pending,
            "disabled_endpoints": figures.disabled_endpoints,
            "delivered_last_hour": figures.delivered_last_hour,
            "failed_attempts_last_hour": figures.failed_last_hour,
            "tick_sent": report.attempted,
            "tick_delivered": report.delivered,
            "tick_to_retry": report.retrying,
            "tick_given_up": report.failed,
            "tick_endpoints_disabled": report.endpoints_disabled,
        },
    )


def deliver_tick(services: TriageServices, cursor: str | None, budget: timedelta) -> SensorResult:
    """One tick: deliver what is due within `budget`, then tell what was sent and the outbox's figures.

    Never raises for the webhooks' configuration: without WEBHOOK_SECRETS_KEY, or with a key that does
    not open a stored secret, the tick is skipped with a reason saying so (it fails only when the database
    does, as every sensor would).
    """
    if services.settings.webhook_secrets_key is None:
        return SensorResult(skip_reason=SkipReason(NO_KEY), cursor=cursor)
    last = FiguresCursor.parse(cursor)
    # A secret this process cannot open does not raise: its delivery waits and is counted as `unopened`.
    report = services.use(DeliverDueWebhooks).execute(DeliverCommand(time_budget=budget))
    if report.unopened and not report.attempted:
        return SensorResult(
            skip_reason=SkipReason(
                f"webhook delivery stopped: {report.unopened} due delivery(ies) wait because their endpoint's secret "
                "does not open with this process's WEBHOOK_SECRETS_KEY (set the key that sealed them, or rotate "
                "the endpoints' secrets)"
            ),
            cursor=cursor,
        )
    now = services.container.clock.now()
    if not report.attempted and last.at and last.figures and now - last.at < FIGURES_REFRESH:
        return SensorResult(
            skip_reason=SkipReason(f"nothing due; {describe_outbox(last.figures, last.at)}"), cursor=cursor
        )
    figures = services.use(GetOutboxFigures).execute(OutboxFiguresQuery())
    changed = report.attempted > 0 or figures != last.figures
    told = describe_tick(report) if report.attempted else "nothing due"
    return SensorResult(
        skip_reason=SkipReason(f"{told}; {describe_outbox(figures, now)}"),
        cursor=FiguresCursor(now, figures).dump(),
        asset_events=[observation(report, figures)] if changed else [],
    )


def build_webhook_sensor(settings: Settings) -> SensorDefinition:
    """The deliverer sensor; its interval and time budget come from the settings."""
    budget = tick_budget(settings, sensor_timeout_s())

    @sensor(
        name="webhook_deliveries",
        minimum_interval_seconds=settings.webhook_sensor_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Sends the webhook outbox's due deliveries, signed, inside its own tick (no run launch), for up to "
            f"{budget.total_seconds():.0f} s a tick. Each tick tells what it sent and the outbox's figures; "
            "the webhook_outbox asset records them."
        ),
    )
    def webhook_deliveries(context: SensorEvaluationContext, services: TriageServices) -> SensorResult:
        return deliver_tick(services, context.cursor, budget)

    return webhook_deliveries
