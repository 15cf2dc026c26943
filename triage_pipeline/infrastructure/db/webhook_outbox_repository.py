"""The webhook outbox: events (`webhook_events`), their deliveries to endpoints (`webhook_deliveries`) and the
delivery log (`webhook_delivery_attempts`). Events are added in the caller's transaction."""

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.exceptions import DeliveryInFlight
from triage_pipeline.domain.webhook import DeliveryStatus, EventType, WebhookEndpoint, WebhookEvent
from triage_pipeline.domain.webhook_ports import (
    DeliveryAttemptRecord,
    DeliveryLogEntry,
    DueDelivery,
    OutboxFigures,
    SealedSecrets,
)
from triage_pipeline.infrastructure.db.models import WebhookDeliveryAttemptRow, WebhookEventRow

_EVENTS = cast(Table, WebhookEventRow.__table__)
OUTBOX_CHANNEL = "webhook_outbox"
"""NOTIFY'd in the transaction that adds deliveries: a listening deliverer wakes when it commits."""
NOTIFY_OUTBOX = text(f"NOTIFY {OUTBOX_CHANNEL}")

_NEXT_DUE = text(
    """
    SELECT min(GREATEST(d.next_attempt_at, COALESCE(d.locked_until, d.next_attempt_at)))
    FROM webhook_deliveries d
    JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.enabled
    WHERE d.status = 'PENDING'
    """
)
_ATTEMPTS = cast(Table, WebhookDeliveryAttemptRow.__table__)

# Who receives an event: endpoints subscribed to its type, of its owner; all-owners endpoints (owner_id NULL)
# receive every owner's ticket events and the whole-batch batch.done, not the per-owner copies. A disabled
# endpoint gets its deliveries too: they wait (the claim skips it) and go out once it is enabled again.
# The events and their deliveries in one statement: it runs in every triage transaction.
_ADD = text(
    """
    WITH ev AS (
        INSERT INTO webhook_events (id, type, owner_id, payload, created_at, updated_at)
        SELECT id, type, owner_id, payload, created_at, created_at
        FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:owners AS uuid[]),
                    CAST(:payloads AS jsonb[]), CAST(:created AS timestamptz[]))
             AS e(id, type, owner_id, payload, created_at)
        RETURNING id, type, owner_id, created_at
    )
    INSERT INTO webhook_deliveries
        (id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
    SELECT gen_random_uuid(), ev.id, ep.id, 'PENDING', 0, ev.created_at, ev.created_at, ev.created_at
    FROM ev
    JOIN webhook_endpoints ep
      ON ev.type = ANY(ep.event_types)
     AND (ep.owner_id = ev.owner_id
          OR (ep.owner_id IS NULL AND (ev.type <> 'batch.done' OR ev.owner_id IS NULL)))
    ON CONFLICT DO NOTHING
    """
)

# At most :per_endpoint deliveries of one endpoint per claim: a backlog for one slow or unreachable receiver
# does not fill every request slot while other owners' events wait.
_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id, row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at) AS nth
        FROM webhook_deliveries d
        JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.enabled
        WHERE d.status = 'PENDING' AND d.next_attempt_at <= :now
          AND (d.locked_until IS NULL OR d.locked_until < :now)
    ),
    picked AS (
        SELECT d.id
        FROM webhook_deliveries d
        JOIN due ON due.id = d.id AND due.nth <= :per_endpoint
        WHERE d.status = 'PENDING' AND (d.locked_until IS NULL OR d.locked_until < :now)
        ORDER BY d.next_attempt_at
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET lease_token = :token, locked_until = :locked_until
    FROM picked
    WHERE d.id = picked.id
    RETURNING d.id, d.event_id, d.endpoint_id, d.attempts
    """
)

_DUE_DETAILS = text(
    """
    SELECT d.id AS delivery_id, d.attempts, ep.id AS endpoint_id, ep.url, ep.secret, ep.previous_secret,
           ep.previous_secret_expires_at, e.id AS event_id, e.type, e.owner_id, e.payload, e.created_at
    FROM webhook_deliveries d
    JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
    JOIN webhook_events e ON e.id = d.event_id
    WHERE d.id = ANY(:ids)
    ORDER BY d.next_attempt_at
    """
)

_MOVE = text(
    """
    UPDATE webhook_deliveries
    SET status = :status, attempts = :attempt, next_attempt_at = :next_attempt_at, lease_token = NULL,
        locked_until = NULL, last_status_code = :status_code, last_error = :error,
        delivered_at = CASE WHEN :delivered THEN :now ELSE delivered_at END, updated_at = :now
    WHERE id = :id AND lease_token = :token AND status = 'PENDING'
    """
)

# A failure extends the endpoint's run; the run disables it once it is long in count and in time, so a
# burst of events to a receiver down for a minute does not switch it off.
_FAILED = text(
    """
    UPDATE webhook_endpoints
    SET consecutive_failures = consecutive_failures + 1,
        failing_since = COALESCE(failing_since, :now),
        enabled = CASE WHEN consecutive_failures + 1 >= :disable_after
                        AND COALESCE(failing_since, :now) <= :now - :min_failing
                       THEN false ELSE enabled END,
        disabled_reason = CASE WHEN enabled AND consecutive_failures + 1 >= :disable_after
                                AND COALESCE(failing_since, :now) <= :now - :min_failing
                               THEN :reason ELSE disabled_reason END,
        updated_at = :now
    WHERE id = :id
    RETURNING enabled
    """
)

_SUCCEEDED = text(
    """
    UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL
    WHERE id = :id AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)
    """
)

_DISABLE = text(
    "UPDATE webhook_endpoints SET enabled = false, disabled_reason = :reason, updated_at = :now WHERE id = :id"
)

_REDELIVER = text(
    """
    INSERT INTO webhook_deliveries
        (id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
    SELECT gen_random_uuid(), e.id, :endpoint_id, 'PENDING', 0, :now, :now, :now
    FROM webhook_events e
    WHERE e.id = :event_id
      AND (CAST(:owner_id AS uuid) IS NULL OR e.owner_id = :owner_id)
    ON CONFLICT (event_id, endpoint_id) DO UPDATE
    SET status = 'PENDING', attempts = 0, next_attempt_at = :now, lease_token = NULL, locked_until = NULL,
        last_status_code = NULL, last_error = NULL, delivered_at = NULL, updated_at = :now
    WHERE webhook_deliveries.locked_until IS NULL OR webhook_deliveries.locked_until < :now
    RETURNING id
    """
)

_LOG = text(
    """
    SELECT a.id, a.delivery_id, a.endpoint_id, a.event_id, a.attempt, a.started_at, a.latency_ms, a.succeeded,
           a.status_code, a.error, a.response_excerpt, e.type, d.status AS delivery_status, d.next_attempt_at
    FROM webhook_delivery_attempts a
    JOIN webhook_deliveries d ON d.id = a.delivery_id
    JOIN webhook_events e ON e.id = a.event_id
    WHERE a.endpoint_id = :endpoint_id AND (CAST(:before AS timestamptz) IS NULL OR a.started_at < :before)
    ORDER BY a.started_at DESC, a.id
    LIMIT :limit
    """
)

_FIGURES = text(
    """
    SELECT
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING') AS pending,
      (SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.enabled
        WHERE d.status = 'PENDING' AND d.next_attempt_at <= :now) AS due,
      (SELECT min(d.next_attempt_at) FROM webhook_deliveries d
        JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.enabled
        WHERE d.status = 'PENDING' AND d.next_attempt_at <= :now) AS oldest_due,
      (SELECT count(*) FROM webhook_delivery_attempts WHERE NOT succeeded AND started_at > :hour_ago) AS failed,
      (SELECT count(*) FROM webhook_delivery_attempts WHERE succeeded AND started_at > :hour_ago) AS delivered,
      (SELECT count(*) FROM webhook_endpoints WHERE NOT enabled) AS disabled
    """
)


def _event_values(event: WebhookEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type.value,
        "owner_id": event.owner_id,
        "payload": event.payload(),
        "created_at": event.created_at,
        "updated_at": event.created_at,
    }


class SqlWebhookOutbox:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, events: Sequence[WebhookEvent]) -> None:
        if not events:
            return
        connection = self._session.connection()
        added = connection.execute(
            _ADD,
            {
                "ids": [event.id for event in events],
                "types": [event.type.value for event in events],
                "owners": [event.owner_id for event in events],
                "payloads": [json.dumps(event.payload()) for event in events],
                "created": [event.created_at for event in events],
            },
        )
        if added.rowcount:
            connection.execute(NOTIFY_OUTBOX)

    def add_for_endpoint(self, event: WebhookEvent, endpoint_id: UUID) -> UUID:
        connection = self._session.connection()
        connection.execute(insert(_EVENTS), [_event_values(event)])
        delivery_id = uuid4()
        connection.execute(
            text(
                "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts, next_attempt_at,"
                " created_at, updated_at) VALUES (:id, :event_id, :endpoint_id, 'PENDING', 0, :now, :now, :now)"
            ),
            {"id": delivery_id, "event_id": event.id, "endpoint_id": endpoint_id, "now": event.created_at},
        )
        connection.execute(NOTIFY_OUTBOX)
        return delivery_id

    def claim_due(
        self, now: datetime, limit: int, lease: timedelta, token: UUID, per_endpoint: int
    ) -> list[DueDelivery]:
        connection = self._session.connection()
        claimed = connection.execute(
            _CLAIM,
            {"now": now, "limit": limit, "token": token, "locked_until": now + lease, "per_endpoint": per_endpoint},
        ).all()
        if not claimed:
            return []
        rows = connection.execute(_DUE_DETAILS, {"ids": [row.id for row in claimed]}).mappings().all()
        due = []
        for row in rows:
            previous_alive = row["previous_secret"] is not None and (
                row["previous_secret_expires_at"] is None or row["previous_secret_expires_at"] > now
            )
            payload = row["payload"]
            due.append(
                DueDelivery(
                    delivery_id=row["delivery_id"],
                    endpoint_id=row["endpoint_id"],
                    url=row["url"],
                    attempts=row["attempts"],
                    event=WebhookEvent(
                        id=row["event_id"],
                        type=EventType(row["type"]),
                        owner_id=row["owner_id"],
                        data=payload.get("data", {}),
                        created_at=row["created_at"],
                    ),
                    secrets=SealedSecrets(
                        row["secret"],
                        row["previous_secret"] if previous_alive else None,
                        row["previous_secret_expires_at"] if previous_alive else None,
                    ),
                )
            )
        return due

    def record(
        self,
        attempt: DeliveryAttemptRecord,
        token: UUID,
        status: DeliveryStatus,
        next_attempt_at: datetime | None,
    ) -> bool:
        connection = self._session.connection()
        moved = connection.execute(
            _MOVE,
            {
                "id": attempt.delivery_id,
                "token": token,
                "status": status.value,
                "delivered": status is DeliveryStatus.DELIVERED,
                "attempt": attempt.attempt,
                "next_attempt_at": next_attempt_at,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "now": attempt.started_at + timedelta(milliseconds=attempt.latency_ms),
            },
        )
        if not moved.rowcount:
            return False
        connection.execute(
            insert(_ATTEMPTS),
            [
                {
                    "id": attempt.id,
                    "delivery_id": attempt.delivery_id,
                    "endpoint_id": attempt.endpoint_id,
                    "event_id": attempt.event_id,
                    "attempt": attempt.attempt,
                    "started_at": attempt.started_at,
                    "status_code": attempt.status_code,
                    "latency_ms": attempt.latency_ms,
                    "error": attempt.error,
                    "response_excerpt": attempt.response_excerpt,
                    "succeeded": attempt.succeeded,
                }
            ],
        )
        return True

    def endpoint_failed(self, endpoint_id: UUID, now: datetime, disable_after: int, min_failing: timedelta) -> bool:
        reason = (
            f"disabled after {disable_after} consecutive failed deliveries over at least {min_failing}; "
            "fix the receiver, then enable the endpoint again (PATCH enabled=true)"
        )
        connection = self._session.connection()
        locked = connection.execute(
            text("SELECT enabled FROM webhook_endpoints WHERE id = :id FOR UPDATE"), {"id": endpoint_id}
        )
        was_enabled = bool(locked.scalar())
        enabled_now = connection.execute(
            _FAILED,
            {
                "id": endpoint_id,
                "now": now,
                "disable_after": disable_after,
                "min_failing": min_failing,
                "reason": reason,
            },
        ).scalar()
        return was_enabled and enabled_now is False

    def endpoint_succeeded(self, endpoint_id: UUID) -> None:
        self._session.connection().execute(_SUCCEEDED, {"id": endpoint_id})

    def disable_endpoint(self, endpoint_id: UUID, reason: str, now: datetime) -> None:
        self._session.connection().execute(_DISABLE, {"id": endpoint_id, "reason": reason, "now": now})

    def redeliver(self, endpoint: WebhookEndpoint, event_id: UUID, now: datetime) -> bool:
        in_flight = self._session.connection().execute(
            text(
                "SELECT 1 FROM webhook_deliveries WHERE event_id = :event_id AND endpoint_id = :endpoint_id"
                " AND locked_until >= :now"
            ),
            {"event_id": event_id, "endpoint_id": endpoint.id, "now": now},
        )
        if in_flight.first() is not None:
            raise DeliveryInFlight(event_id, endpoint.id)
        row = (
            self._session.connection()
            .execute(
                _REDELIVER,
                {"endpoint_id": endpoint.id, "event_id": event_id, "owner_id": endpoint.owner_id, "now": now},
            )
            .first()
        )
        if row is not None:
            self._session.connection().execute(NOTIFY_OUTBOX)
        return row is not None

    def next_due_at(self) -> datetime | None:
        return cast(datetime | None, self._session.connection().execute(_NEXT_DUE).scalar())

    def log(self, endpoint_id: UUID, limit: int, before: datetime | None = None) -> list[DeliveryLogEntry]:
        rows = self._session.connection().execute(_LOG, {"endpoint_id": endpoint_id, "limit": limit, "before": before})
        return [
            DeliveryLogEntry(
                attempt=DeliveryAttemptRecord(
                    id=row.id,
                    delivery_id=row.delivery_id,
                    endpoint_id=row.endpoint_id,
                    event_id=row.event_id,
                    attempt=row.attempt,
                    started_at=row.started_at,
                    latency_ms=row.latency_ms,
                    succeeded=row.succeeded,
                    status_code=row.status_code,
                    error=row.error,
                    response_excerpt=row.response_excerpt,
                ),
                event_type=row.type,
                delivery_status=DeliveryStatus(row.delivery_status),
                next_attempt_at=row.next_attempt_at,
            )
            for row in rows
        ]

    def figures(self, now: datetime) -> OutboxFigures:
        row = self._session.connection().execute(_FIGURES, {"now": now, "hour_ago": now - timedelta(hours=1)}).one()
        return OutboxFigures(
            pending=row.pending,
            due=row.due,
            oldest_due_age=(now - row.oldest_due) if row.oldest_due is not None else None,
            failed_last_hour=row.failed,
            delivered_last_hour=row.delivered,
            disabled_endpoints=row.disabled,
        )
