"""What the webhook use cases need from the outside world: storage of subscriptions and of the outbox,
a sender that signs and posts, a box that seals signing secrets, and the check of a target URL."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from triage_pipeline.domain.webhook import DeliveryStatus, SigningSecrets, WebhookEndpoint, WebhookEvent


@dataclass(frozen=True, slots=True)
class SealedSecrets:
    """An endpoint's secrets as stored (sealed by the `SecretBox`)."""

    current: str
    previous: str | None = None
    previous_expires_at: datetime | None = None


class WebhookRepository(Protocol):
    """Subscriptions."""

    def add(self, endpoint: WebhookEndpoint, secrets: SealedSecrets) -> None: ...

    def get(self, endpoint_id: UUID, *, for_update: bool = False) -> WebhookEndpoint | None:
        """`for_update` locks the row until the transaction ends (a change must not undo a concurrent one)."""
        ...

    def list(self, owner_id: UUID | None, *, every_owner: bool) -> list[WebhookEndpoint]:
        """Oldest first: every endpoint when `every_owner`, else those of `owner_id` (None: the all-owners ones)."""
        ...

    def update(self, endpoint: WebhookEndpoint) -> None:
        """Save url, event types, description, enabled, disabled reason and the failure run."""
        ...

    def delete(self, endpoint_id: UUID) -> bool: ...

    def secrets(self, endpoint_id: UUID) -> SealedSecrets | None: ...

    def set_secrets(self, endpoint_id: UUID, secrets: SealedSecrets, now: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery: the event, where it goes, and the (sealed) secrets that sign it now."""

    delivery_id: UUID
    endpoint_id: UUID
    url: str
    attempts: int
    """Attempts already made."""
    event: WebhookEvent
    secrets: SealedSecrets


@dataclass(frozen=True, slots=True)
class DeliveryAttemptRecord:
    """One request sent, as the delivery log keeps it."""

    id: UUID
    delivery_id: UUID
    endpoint_id: UUID
    event_id: UUID
    attempt: int
    started_at: datetime
    latency_ms: int
    succeeded: bool
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryLogEntry:
    """An attempt with its event and its delivery's state, for `GET /webhooks/{id}/deliveries`."""

    attempt: DeliveryAttemptRecord
    event_type: str
    delivery_status: DeliveryStatus
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxFigures:
    """The deliverer's view of the outbox, for the Dagster UI and the health of delivery."""

    pending: int
    due: int
    oldest_due_age: timedelta | None
    failed_last_hour: int
    delivered_last_hour: int
    disabled_endpoints: int


class WebhookOutbox(Protocol):
    """Events and their deliveries. `add` runs in the caller's transaction: that is what makes it an outbox."""

    def add(self, events: Sequence[WebhookEvent]) -> None:
        """Store the events and a PENDING delivery to every enabled endpoint that receives each (its type, and
        its owner or an all-owners endpoint; an owner's batch.done goes to its owner's endpoints only)."""
        ...

    def add_for_endpoint(self, event: WebhookEvent, endpoint_id: UUID) -> UUID:
        """Store an event for this one endpoint (a ping); the delivery's id."""
        ...

    def claim_due(
        self, now: datetime, limit: int, lease: timedelta, token: UUID, per_endpoint: int
    ) -> list[DueDelivery]:
        """Lease up to `limit` due PENDING deliveries of enabled endpoints, at most `per_endpoint` of one
        endpoint (oldest due first, rows another deliverer holds skipped); a lease left by a dead deliverer is
        taken over once it expired."""
        ...

    def record(
        self,
        attempt: DeliveryAttemptRecord,
        token: UUID,
        status: DeliveryStatus,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Log the attempt and move the delivery, only while this deliverer's lease (`token`) holds it."""
        ...

    def endpoint_failed(self, endpoint_id: UUID, now: datetime, disable_after: int, min_failing: timedelta) -> bool:
        """Count a failure in the endpoint's run; disable it once the run is long enough. True if disabled now."""
        ...

    def endpoint_succeeded(self, endpoint_id: UUID) -> None:
        """End the endpoint's run of failures."""
        ...

    def disable_endpoint(self, endpoint_id: UUID, reason: str, now: datetime) -> None: ...

    def redeliver(self, endpoint: WebhookEndpoint, event_id: UUID, now: datetime) -> bool:
        """Queue the event again for this endpoint (a fresh schedule); False if the event is not one this
        endpoint's owner may receive; DeliveryInFlight while a deliverer is sending it."""
        ...

    def next_due_at(self) -> datetime | None:
        """When the next PENDING delivery of an enabled endpoint comes due (a leased one: when its lease ends)."""
        ...

    def log(self, endpoint_id: UUID, limit: int, before: datetime | None = None) -> list[DeliveryLogEntry]:
        """The endpoint's attempts, newest first."""
        ...

    def figures(self, now: datetime) -> OutboxFigures: ...


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    response_excerpt: str | None = None


class WebhookSender(Protocol):
    """Posts one signed event (Standard Webhooks headers) with bounded timeouts; never raises for the
    receiver's failure: it is in the result."""

    def send(self, url: str, event: WebhookEvent, secrets: SigningSecrets) -> SendResult: ...


class SecretBox(Protocol):
    """Seals signing secrets for storage; raises `WebhooksNotConfigured` when it has no key."""

    def seal(self, secret: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class OutboxListener(Protocol):
    """Waits for the outbox to get deliveries (PostgreSQL LISTEN/NOTIFY)."""

    def wait(self, timeout_s: float) -> bool:
        """True when woken by new deliveries, False after `timeout_s`."""
        ...


class TargetPolicy(Protocol):
    """Refuses a webhook URL that is not http(s) or that resolves to a non-public address (SSRF), unless
    private targets are allowed; raises `UnsafeWebhookTarget` naming why."""

    def check(self, url: str) -> None: ...
