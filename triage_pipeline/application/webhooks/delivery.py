"""The deliverer: lease due deliveries from the outbox, send them in parallel, record each attempt.

Any number of deliverers may run (the Dagster sensor, `triage webhooks deliver`): a lease hands each
delivery to one of them; a deliverer killed mid-request leaves its lease to expire and another sends the
event again, with the same `webhook-id`. An attempt is recorded only while its lease holds, in its own
transaction with the endpoint's failure run.
"""

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from statistics import median
from uuid import UUID, uuid4

from triage_pipeline.application.webhooks.options import WebhookOptions
from triage_pipeline.domain.exceptions import WebhooksNotConfigured
from triage_pipeline.domain.ports import Clock, UnitOfWorkFactory
from triage_pipeline.domain.webhook import (
    DeliveryStatus,
    ResponseVerdict,
    SigningSecrets,
    retry_delay,
    verdict_of,
)
from triage_pipeline.domain.webhook_ports import (
    DeliveryAttemptRecord,
    DueDelivery,
    OutboxFigures,
    SecretBox,
    SendResult,
    WebhookSender,
)

logger = logging.getLogger(__name__)

GONE_REASON = "the receiver answered 410 Gone: it no longer takes these events"


@dataclass(frozen=True, slots=True)
class DeliverCommand:
    """Deliver what is due, until nothing is or `time_budget` is spent (a sensor tick must end in time)."""

    time_budget: timedelta = timedelta(seconds=20)
    max_attempts: int = 5_000


@dataclass(slots=True)
class DeliveryReport:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    """Given up: out of attempts, or 410 Gone."""
    dropped: int = 0
    """Sent, but the lease had passed to another deliverer: not recorded (that one records its own)."""
    endpoints_disabled: int = 0
    unopened: int = 0
    """Left waiting: this process cannot open the endpoint's secret (another WEBHOOK_SECRETS_KEY sealed it)."""
    latencies_ms: list[int] = field(default_factory=list)

    def add(self, other: "DeliveryReport") -> None:
        """Count `other` in as well (a watcher's totals over its passes)."""
        self.attempted += other.attempted
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed
        self.dropped += other.dropped
        self.endpoints_disabled += other.endpoints_disabled
        self.unopened += other.unopened
        self.latencies_ms.extend(other.latencies_ms)

    def outcomes(self) -> str:
        """What became of the attempts, for a person: counts, then the latency of the requests."""
        text = (
            f"{self.delivered} delivered, {self.retrying} to retry, {self.failed} given up, "
            f"{self.endpoints_disabled} endpoint(s) disabled"
        )
        if self.dropped:
            text += f", {self.dropped} left to another deliverer (their lease had passed to it)"
        if self.unopened:
            text += f", {self.unopened} left waiting (secret not openable with this WEBHOOK_SECRETS_KEY)"
        if self.latencies_ms:
            text += f"; latency median {median(self.latencies_ms):.0f} ms, max {max(self.latencies_ms)} ms"
        return text

    def summary(self) -> str:
        return f"{self.attempted} attempted: {self.outcomes()}"


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: DeliveryStatus
    verdict: ResponseVerdict
    recorded: bool
    disabled: bool
    latency_ms: int
    unopened: bool = False


class DeliverDueWebhooks:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        webhook_sender: WebhookSender,
        secret_box: SecretBox,
        webhook_options: WebhookOptions,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._sender = webhook_sender
        self._box = secret_box
        self._options = webhook_options
        self._jitter: Callable[[], float] = lambda: random.uniform(-1.0, 1.0)

    def execute(self, command: DeliverCommand) -> DeliveryReport:
        report = DeliveryReport()
        token = uuid4()
        deadline = time.monotonic() + command.time_budget.total_seconds()
        # One wave per claim, as many as can be sent at once: a claimed delivery's lease starts when it is
        # claimed, so none waits for a free slot while its lease runs out.
        claim_size = self._options.concurrency
        per_endpoint = max(1, self._options.concurrency // 4)
        with ThreadPoolExecutor(self._options.concurrency, thread_name_prefix="webhook") as pool:
            while time.monotonic() < deadline and report.attempted < command.max_attempts:
                with self._uow() as uow:
                    due = uow.outbox.claim_due(
                        self._clock.now(),
                        min(claim_size, command.max_attempts - report.attempted),
                        self._options.lease,
                        token,
                        per_endpoint,
                    )
                    uow.commit()
                if not due:
                    break
                for outcome in pool.map(lambda d: self._deliver(d, token), due):
                    _count(report, outcome)
        if report.attempted:
            logger.info("webhooks delivered", extra={"fields": {"summary": report.summary()}})
        return report

    def _deliver(self, due: DueDelivery, token: UUID) -> _Outcome:
        try:
            secrets = SigningSecrets(
                self._box.open(due.secrets.current),
                self._box.open(due.secrets.previous) if due.secrets.previous else None,
            )
        except WebhooksNotConfigured as exc:
            # The service's configuration, not the receiver, is at fault: no attempt is counted against the
            # endpoint; the lease runs out and the event waits, still PENDING, for a deliverer with the key.
            logger.error(
                "webhook secret cannot be opened; the delivery waits",
                extra={"fields": {"endpoint_id": str(due.endpoint_id), "reason": str(exc)}},
            )
            return _Outcome(DeliveryStatus.PENDING, ResponseVerdict.RETRY, False, False, 0, unopened=True)
        result = self._sender.send(due.url, due.event, secrets)
        return self._record(due, token, result)

    def _record(self, due: DueDelivery, token: UUID, result: SendResult) -> _Outcome:
        now = self._clock.now()
        attempt = due.attempts + 1
        verdict = verdict_of(result.status_code)
        next_attempt_at = None
        if verdict is ResponseVerdict.DELIVERED:
            status = DeliveryStatus.DELIVERED
        elif verdict is ResponseVerdict.GONE:
            status = DeliveryStatus.FAILED
        else:
            delay = retry_delay(attempt, self._jitter())
            status = DeliveryStatus.PENDING if delay is not None else DeliveryStatus.FAILED
            next_attempt_at = now + delay if delay is not None else None
        record = DeliveryAttemptRecord(
            id=uuid4(),
            delivery_id=due.delivery_id,
            endpoint_id=due.endpoint_id,
            event_id=due.event.id,
            attempt=attempt,
            started_at=now - timedelta(milliseconds=result.latency_ms),
            latency_ms=result.latency_ms,
            succeeded=verdict is ResponseVerdict.DELIVERED,
            status_code=result.status_code,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        disabled = False
        with self._uow() as uow:
            recorded = uow.outbox.record(record, token, status, next_attempt_at)
            if recorded:
                if verdict is ResponseVerdict.DELIVERED:
                    uow.outbox.endpoint_succeeded(due.endpoint_id)
                elif verdict is ResponseVerdict.GONE:
                    uow.outbox.disable_endpoint(due.endpoint_id, GONE_REASON, now)
                    disabled = True
                else:
                    disabled = uow.outbox.endpoint_failed(
                        due.endpoint_id,
                        now,
                        self._options.disable_after_failures,
                        self._options.disable_min_failing,
                    )
            uow.commit()
        if not recorded:
            logger.warning(
                "webhook attempt outlived its lease; another deliverer records this event",
                extra={"fields": {"delivery_id": str(due.delivery_id), "webhook_id": due.event.webhook_id}},
            )
        elif verdict is not ResponseVerdict.DELIVERED:
            logger.info(
                "webhook attempt failed",
                extra={
                    "fields": {
                        "endpoint_id": str(due.endpoint_id),
                        "webhook_id": due.event.webhook_id,
                        "attempt": attempt,
                        "status_code": result.status_code,
                        "error": result.error,
                        "next": status.value,
                    }
                },
            )
        if disabled:
            logger.warning("webhook endpoint disabled", extra={"fields": {"endpoint_id": str(due.endpoint_id)}})
        return _Outcome(status, verdict, recorded, disabled, result.latency_ms)


def _count(report: DeliveryReport, outcome: _Outcome) -> None:
    if outcome.unopened:
        report.unopened += 1
        return
    report.attempted += 1
    if not outcome.recorded:
        report.dropped += 1
        return
    report.latencies_ms.append(outcome.latency_ms)
    if outcome.status is DeliveryStatus.DELIVERED:
        report.delivered += 1
    elif outcome.status is DeliveryStatus.FAILED:
        report.failed += 1
    else:
        report.retrying += 1
    report.endpoints_disabled += int(outcome.disabled)


@dataclass(frozen=True, slots=True)
class OutboxFiguresQuery:
    """No parameters: it exists so that every use case keeps the one `execute(command)` shape."""


class GetOutboxFigures:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: OutboxFiguresQuery) -> OutboxFigures:
        with self._uow() as uow:
            return uow.outbox.figures(self._clock.now())


@dataclass(frozen=True, slots=True)
class NextDueQuery:
    """No parameters: it exists so that every use case keeps the one `execute(command)` shape."""


class TimeToNextDue:
    """How long a deliverer may sleep before a retry comes due (None: nothing is pending)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: NextDueQuery) -> timedelta | None:
        with self._uow() as uow:
            due = uow.outbox.next_due_at()
        return max(timedelta(0), due - self._clock.now()) if due is not None else None
