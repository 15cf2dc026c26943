"""Webhooks: what a subscription is, which events exist and what they carry, and the delivery rules.

Events are facts written to an outbox in the transaction of the change they tell of (see the event
constructors below and where they are called); delivery is at least once, and every attempt of one
event carries the same `webhook_id`, so a receiver drops duplicates by it (Standard Webhooks).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_job import TriageJob

URL_MAX_LENGTH = 2_000
DESCRIPTION_MAX_LENGTH = 500
ERROR_MAX_LENGTH = 500
RESPONSE_EXCERPT_MAX_LENGTH = 1_000


class EventType(StrEnum):
    TICKET_TRIAGED = "ticket.triaged"
    """A ticket's answer is stored (COMPLETED), whatever its review status."""
    TICKET_NEEDS_REVIEW = "ticket.needs_review"
    """A stored answer waits for a person (its confidence is below the prompt version's threshold)."""
    TICKET_TRIAGE_FAILED = "ticket.triage_failed"
    """The last allowed attempt failed: nothing more will be tried unless the ticket is re-triaged."""
    TICKET_CORRECTED = "ticket.corrected"
    """A person corrected the answer."""
    BATCH_DONE = "batch.done"
    """A batch ended; an owner's event counts its own tickets, an all-owners subscription gets the whole batch."""
    PING = "ping"
    """Sent by `POST /webhooks/{id}/test` to that endpoint only."""


SUBSCRIBABLE_EVENT_TYPES: tuple[EventType, ...] = tuple(t for t in EventType if t is not EventType.PING)


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # out of attempts, or the endpoint answered 410 Gone


# Waits after attempt 1, 2, ... (Standard Webhooks' suggested schedule: immediately, 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h): the last of 8 attempts comes about 27.6 h after the first, then the delivery FAILED.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_DELIVERY_ATTEMPTS = len(RETRY_SCHEDULE) + 1
RETRY_JITTER = 0.2
"""Each wait is stretched or shrunk by up to this share, so retries of a burst do not all come at once."""


def retry_delay(attempts_made: int, jitter: float) -> timedelta | None:
    """The wait before the next attempt after `attempts_made` failed ones, or None when none is left.

    `jitter` in [-1, 1] is the caller's random draw (kept out so the rule stays pure and testable).
    """
    if attempts_made < 1:
        raise ValueError("attempts_made counts the attempts already made, from 1")
    if attempts_made >= MAX_DELIVERY_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[attempts_made - 1]
    return base * (1 + RETRY_JITTER * max(-1.0, min(1.0, jitter)))


class ResponseVerdict(StrEnum):
    DELIVERED = "DELIVERED"
    RETRY = "RETRY"
    GONE = "GONE"  # the receiver says the endpoint no longer exists: stop, and disable the endpoint


def verdict_of(status_code: int | None) -> ResponseVerdict:
    """2xx delivers; 410 Gone ends the endpoint; anything else (no answer, a redirect, 4xx, 5xx) is retried.

    Redirects are not followed: the target was checked, the place it points to was not.
    """
    if status_code is not None and 200 <= status_code < 300:
        return ResponseVerdict.DELIVERED
    if status_code == 410:
        return ResponseVerdict.GONE
    return ResponseVerdict.RETRY


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A subscription: where to send which events. `owner_id` None receives every owner's events (admins)."""

    id: UUID
    owner_id: UUID | None
    url: str
    event_types: tuple[EventType, ...]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    """While set and in the future, the secret before the last rotation also signs."""

    def receives(self, event_type: EventType) -> bool:
        return event_type in self.event_types


@dataclass(frozen=True, slots=True)
class SigningSecrets:
    """The secrets that sign an endpoint's requests now: the current one, and during a rotation's grace
    period the previous one too (so a receiver may switch secrets at its own pace)."""

    current: str = field(repr=False)
    previous: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One fact for receivers. `owner_id` is whose ticket it concerns; None only for an all-owners batch.done."""

    id: UUID
    type: EventType
    owner_id: UUID | None
    data: Mapping[str, Any]
    created_at: datetime

    @property
    def webhook_id(self) -> str:
        """The `webhook-id` header: the same on every attempt of this event, to every endpoint."""
        return f"msg_{self.id.hex}"

    def payload(self) -> dict[str, Any]:
        """The body receivers get: `{type, timestamp, data}`."""
        return {"type": self.type.value, "timestamp": self.created_at.isoformat(), "data": dict(self.data)}


def _event(event_type: EventType, owner_id: UUID | None, data: Mapping[str, Any], now: datetime) -> WebhookEvent:
    return WebhookEvent(id=uuid4(), type=event_type, owner_id=owner_id, data=data, created_at=now)


def _ticket_data(ticket: Ticket) -> dict[str, Any]:
    return {"ticket_id": str(ticket.id), "external_id": ticket.external_id, "owner_id": str(ticket.owner_id)}


def triaged_events(
    ticket: Ticket,
    job: TriageJob,
    *,
    batch_id: UUID | None,
    prompt_version: int | None,
    model: str,
    now: datetime,
) -> list[WebhookEvent]:
    """`ticket.triaged` for a COMPLETED ticket, and `ticket.needs_review` beside it when a person must look."""
    if ticket.answer is None:
        raise ValueError(f"ticket {ticket.id} has no answer to tell of")
    data = {
        **_ticket_data(ticket),
        "status": ticket.status.value,
        "job_id": str(job.id),
        "batch_id": str(batch_id) if batch_id else None,
        "attempt": job.attempts,
        "triage": ticket.answer.as_dict(),
        "confidence": ticket.answer.confidence,
        "review_status": ticket.review_status.value if ticket.review_status else None,
        "prompt_version": prompt_version,
        "model": model,
    }
    events = [_event(EventType.TICKET_TRIAGED, ticket.owner_id, data, now)]
    if ticket.review_status is ReviewStatus.NEEDS_REVIEW:
        events.append(_event(EventType.TICKET_NEEDS_REVIEW, ticket.owner_id, data, now))
    return events


def triage_failed_event(
    ticket: Ticket, job: TriageJob, *, batch_id: UUID | None, error_class: str, now: datetime
) -> WebhookEvent:
    """`ticket.triage_failed`: call it only for a job that is final (its last allowed attempt failed)."""
    data = {
        **_ticket_data(ticket),
        "status": ticket.status.value,
        "job_id": str(job.id),
        "batch_id": str(batch_id) if batch_id else None,
        "attempts": job.attempts,
        "error_class": error_class,
    }
    return _event(EventType.TICKET_TRIAGE_FAILED, ticket.owner_id, data, now)


def corrected_event(
    ticket: Ticket, *, correction_id: UUID, category: str, priority: str, corrected_by: str, now: datetime
) -> WebhookEvent:
    """`ticket.corrected`, with the person's labels beside the model's."""
    data = {
        **_ticket_data(ticket),
        "correction_id": str(correction_id),
        "category": category,
        "priority": priority,
        "model_category": ticket.answer.category if ticket.answer else None,
        "model_priority": ticket.answer.priority.value if ticket.answer else None,
        "corrected_by": corrected_by,
    }
    return _event(EventType.TICKET_CORRECTED, ticket.owner_id, data, now)


def batch_done_events(
    batch_id: UUID, counts_by_owner: Mapping[UUID, Mapping[str, int]], *, abandoned: bool, now: datetime
) -> list[WebhookEvent]:
    """One `batch.done` per owner with tickets in the batch (its own counts), and one for all-owners subscriptions.

    Counts are by item outcome: DONE, FAILED, and PENDING (never started: the batch was abandoned).
    """

    def data(counts: Mapping[str, int]) -> dict[str, Any]:
        return {
            "batch_id": str(batch_id),
            "abandoned": abandoned,
            "total": sum(counts.values()),
            "counts": {status: counts.get(status, 0) for status in ("DONE", "FAILED", "PENDING")},
        }

    everything: dict[str, int] = {}
    for counts in counts_by_owner.values():
        for status, count in counts.items():
            everything[status] = everything.get(status, 0) + count
    events = [_event(EventType.BATCH_DONE, None, data(everything), now)]
    events.extend(_event(EventType.BATCH_DONE, owner, data(counts), now) for owner, counts in counts_by_owner.items())
    return events


def ping_event(endpoint: WebhookEndpoint, now: datetime) -> WebhookEvent:
    """A `ping` for one endpoint (the test button); never fanned out to others."""
    return _event(EventType.PING, endpoint.owner_id, {"endpoint_id": str(endpoint.id)}, now)
