"""Webhook subscriptions: create (the secret is shown once), read, change, delete, rotate the secret, test.

`visible_owner` is what the caller may see: an owner's id (its own endpoints only), or None for an admin
(every endpoint, the all-owners ones included). Someone else's endpoint is NotFound, never Forbidden, so
its existence is not disclosed.
"""

import base64
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID, uuid4

from triage_pipeline.application.webhooks.options import WebhookOptions
from triage_pipeline.domain.exceptions import InvalidWebhook, NotFound
from triage_pipeline.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from triage_pipeline.domain.webhook import (
    DESCRIPTION_MAX_LENGTH,
    SUBSCRIBABLE_EVENT_TYPES,
    URL_MAX_LENGTH,
    EventType,
    WebhookEndpoint,
    ping_event,
)
from triage_pipeline.domain.webhook_ports import DeliveryLogEntry, SealedSecrets, SecretBox, TargetPolicy

SECRET_BYTES = 32
MAX_LOG_PAGE = 500


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _checked_types(event_types: tuple[EventType, ...]) -> tuple[EventType, ...]:
    if not event_types:
        raise InvalidWebhook("a subscription needs at least one event type")
    refused = [t for t in event_types if t not in SUBSCRIBABLE_EVENT_TYPES]
    if refused:
        raise InvalidWebhook(
            f"{', '.join(refused)} cannot be subscribed to; the event types are: " + ", ".join(SUBSCRIBABLE_EVENT_TYPES)
        )
    return tuple(dict.fromkeys(event_types))


def _checked_url(url: str, policy: TargetPolicy) -> str:
    if len(url) > URL_MAX_LENGTH:
        raise InvalidWebhook(f"the URL is longer than {URL_MAX_LENGTH} characters", field="url")
    policy.check(url)
    return url


def _visible(
    uow: UnitOfWork, endpoint_id: UUID, visible_owner: UUID | None, *, for_update: bool = False
) -> WebhookEndpoint:
    endpoint = uow.webhooks.get(endpoint_id, for_update=for_update)
    if endpoint is None or (visible_owner is not None and endpoint.owner_id != visible_owner):
        raise NotFound("webhook", endpoint_id)
    return endpoint


@dataclass(frozen=True, slots=True)
class CreateWebhookCommand:
    """`owner_id` None subscribes to every owner's events (an admin's choice; the driver enforces who may)."""

    owner_id: UUID | None
    url: str
    event_types: tuple[EventType, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    endpoint: WebhookEndpoint
    secret: str = field(repr=False)
    """Shown this once; the service keeps it sealed and never returns it again."""


class CreateWebhook:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, secret_box: SecretBox, target_policy: TargetPolicy
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._box = secret_box
        self._policy = target_policy

    def execute(self, command: CreateWebhookCommand) -> CreatedWebhook:
        """NotFound for an unknown owner; UnsafeWebhookTarget, InvalidWebhook for bad values."""
        event_types = _checked_types(command.event_types)
        url = _checked_url(command.url, self._policy)
        secret = new_secret()
        sealed = SealedSecrets(self._box.seal(secret))
        now = self._clock.now()
        endpoint = WebhookEndpoint(
            id=uuid4(),
            owner_id=command.owner_id,
            url=url,
            event_types=event_types,
            description=command.description[:DESCRIPTION_MAX_LENGTH],
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        with self._uow() as uow:
            if command.owner_id is not None and uow.owners.get(command.owner_id) is None:
                raise NotFound("owner", command.owner_id)
            uow.webhooks.add(endpoint, sealed)
            uow.commit()
        return CreatedWebhook(endpoint, secret)


@dataclass(frozen=True, slots=True)
class ListWebhooksQuery:
    visible_owner: UUID | None


class ListWebhooks:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: ListWebhooksQuery) -> list[WebhookEndpoint]:
        """An owner's own endpoints; every endpoint for an admin."""
        with self._uow() as uow:
            return uow.webhooks.list(command.visible_owner, every_owner=command.visible_owner is None)


@dataclass(frozen=True, slots=True)
class WebhookRef:
    endpoint_id: UUID
    visible_owner: UUID | None


class GetWebhook:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: WebhookRef) -> WebhookEndpoint:
        with self._uow() as uow:
            return _visible(uow, command.endpoint_id, command.visible_owner)


@dataclass(frozen=True, slots=True)
class UpdateWebhookCommand:
    """Only the fields given (not None) change. Enabling again ends the failure run and its reason."""

    endpoint_id: UUID
    visible_owner: UUID | None
    url: str | None = None
    event_types: tuple[EventType, ...] | None = None
    description: str | None = None
    enabled: bool | None = None


class UpdateWebhook:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, target_policy: TargetPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = target_policy

    def execute(self, command: UpdateWebhookCommand) -> WebhookEndpoint:
        url = _checked_url(command.url, self._policy) if command.url is not None else None
        event_types = _checked_types(command.event_types) if command.event_types is not None else None
        now = self._clock.now()
        with self._uow() as uow:
            # Locked: a deliverer disabling the endpoint meanwhile is not undone by this write.
            endpoint = _visible(uow, command.endpoint_id, command.visible_owner, for_update=True)
            changed = replace(
                endpoint,
                url=url if url is not None else endpoint.url,
                event_types=event_types if event_types is not None else endpoint.event_types,
                description=(
                    command.description[:DESCRIPTION_MAX_LENGTH]
                    if command.description is not None
                    else endpoint.description
                ),
                updated_at=now,
            )
            if command.enabled is True and not endpoint.enabled:
                changed = replace(
                    changed, enabled=True, disabled_reason=None, consecutive_failures=0, failing_since=None
                )
            elif command.enabled is False and endpoint.enabled:
                changed = replace(changed, enabled=False, disabled_reason="disabled on request")
            uow.webhooks.update(changed)
            uow.commit()
        return changed


class DeleteWebhook:
    """The endpoint, its pending deliveries and its delivery log go; the events stay (other endpoints')."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: WebhookRef) -> None:
        with self._uow() as uow:
            _visible(uow, command.endpoint_id, command.visible_owner)
            uow.webhooks.delete(command.endpoint_id)
            uow.commit()


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    endpoint: WebhookEndpoint
    secret: str = field(repr=False)
    previous_valid_until: datetime


class RotateWebhookSecret:
    """A new secret signs from now on; the previous one also signs until the grace period ends."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, secret_box: SecretBox, webhook_options: WebhookOptions
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._box = secret_box
        self._grace = webhook_options.secret_grace

    def execute(self, command: WebhookRef) -> RotatedSecret:
        secret = new_secret()
        sealed_new = self._box.seal(secret)
        now = self._clock.now()
        until = now + self._grace
        with self._uow() as uow:
            # Locked: of two rotations at once, the second sees the first's secret as the previous one.
            endpoint = _visible(uow, command.endpoint_id, command.visible_owner, for_update=True)
            current = uow.webhooks.secrets(endpoint.id)
            if current is None:
                raise NotFound("webhook", command.endpoint_id)
            uow.webhooks.set_secrets(endpoint.id, SealedSecrets(sealed_new, current.current, until), now)
            uow.commit()
        return RotatedSecret(replace(endpoint, previous_secret_expires_at=until, updated_at=now), secret, until)


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    event_id: UUID
    webhook_id: str


class SendTestEvent:
    """Queue a `ping` to this endpoint alone; the deliverer sends it like any event (see its delivery log)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: WebhookRef) -> QueuedEvent:
        with self._uow() as uow:
            endpoint = _visible(uow, command.endpoint_id, command.visible_owner)
            event = ping_event(endpoint, self._clock.now())
            uow.outbox.add_for_endpoint(event, endpoint.id)
            uow.commit()
        return QueuedEvent(event.id, event.webhook_id)


@dataclass(frozen=True, slots=True)
class RedeliverCommand:
    endpoint_id: UUID
    visible_owner: UUID | None
    event_id: UUID


class RedeliverEvent:
    """Send one event to this endpoint again, on a fresh retry schedule (also one it never had a delivery of,
    say from before it subscribed or while it was disabled, as long as its owner may receive it)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: RedeliverCommand) -> QueuedEvent:
        with self._uow() as uow:
            endpoint = _visible(uow, command.endpoint_id, command.visible_owner)
            if not uow.outbox.redeliver(endpoint, command.event_id, self._clock.now()):
                raise NotFound("event", command.event_id)
            uow.commit()
        return QueuedEvent(command.event_id, f"msg_{command.event_id.hex}")


@dataclass(frozen=True, slots=True)
class DeliveryLogQuery:
    endpoint_id: UUID
    visible_owner: UUID | None
    limit: int = 50
    before: datetime | None = None


class ListDeliveries:
    """An endpoint's delivery log, newest attempt first; page on with `before` = the last `started_at`."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: DeliveryLogQuery) -> list[DeliveryLogEntry]:
        if not 1 <= command.limit <= MAX_LOG_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_LOG_PAGE}")
        with self._uow() as uow:
            _visible(uow, command.endpoint_id, command.visible_owner)
            return uow.outbox.log(command.endpoint_id, command.limit, command.before)
