"""Webhook subscriptions in table `webhook_endpoints` (secrets stored sealed, never read into the entity)."""

from datetime import datetime
from typing import cast
from uuid import UUID

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from triage_pipeline.domain.webhook import EventType, WebhookEndpoint
from triage_pipeline.domain.webhook_ports import SealedSecrets
from triage_pipeline.infrastructure.db.models import WebhookEndpointRow
from triage_pipeline.infrastructure.db.webhook_outbox_repository import NOTIFY_OUTBOX

_ENDPOINTS = cast(Table, WebhookEndpointRow.__table__)
_PUBLIC = [c for c in _ENDPOINTS.c if c.name not in ("secret", "previous_secret")]


def endpoint_from_row(row: object) -> WebhookEndpoint:
    """The entity from a row holding the public columns (the secrets stay in the database)."""
    r = cast(WebhookEndpointRow, row)
    return WebhookEndpoint(
        id=r.id,
        owner_id=r.owner_id,
        url=r.url,
        event_types=tuple(EventType(t) for t in r.event_types),
        description=r.description,
        enabled=r.enabled,
        created_at=r.created_at,
        updated_at=r.updated_at,
        disabled_reason=r.disabled_reason,
        consecutive_failures=r.consecutive_failures,
        failing_since=r.failing_since,
        previous_secret_expires_at=r.previous_secret_expires_at,
    )


class SqlWebhookRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, endpoint: WebhookEndpoint, secrets: SealedSecrets) -> None:
        self._session.connection().execute(
            _ENDPOINTS.insert().values(
                id=endpoint.id,
                owner_id=endpoint.owner_id,
                url=endpoint.url,
                event_types=[t.value for t in endpoint.event_types],
                description=endpoint.description,
                enabled=endpoint.enabled,
                disabled_reason=endpoint.disabled_reason,
                consecutive_failures=endpoint.consecutive_failures,
                failing_since=endpoint.failing_since,
                secret=secrets.current,
                previous_secret=secrets.previous,
                previous_secret_expires_at=secrets.previous_expires_at,
                created_at=endpoint.created_at,
                updated_at=endpoint.updated_at,
            )
        )

    def get(self, endpoint_id: UUID, *, for_update: bool = False) -> WebhookEndpoint | None:
        query = select(*_PUBLIC).where(_ENDPOINTS.c.id == endpoint_id)
        row = self._session.connection().execute(query.with_for_update() if for_update else query).first()
        return endpoint_from_row(row) if row is not None else None

    def list(self, owner_id: UUID | None, *, every_owner: bool) -> list[WebhookEndpoint]:
        query = select(*_PUBLIC).order_by(_ENDPOINTS.c.created_at, _ENDPOINTS.c.id)
        if not every_owner:
            column = _ENDPOINTS.c.owner_id
            query = query.where(column.is_(None) if owner_id is None else column == owner_id)
        return [endpoint_from_row(row) for row in self._session.connection().execute(query)]

    def update(self, endpoint: WebhookEndpoint) -> None:
        if endpoint.enabled:  # enabled (again): its held deliveries are due, wake a listening deliverer
            self._session.connection().execute(NOTIFY_OUTBOX)
        self._session.connection().execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint.id)
            .values(
                url=endpoint.url,
                event_types=[t.value for t in endpoint.event_types],
                description=endpoint.description,
                enabled=endpoint.enabled,
                disabled_reason=endpoint.disabled_reason,
                consecutive_failures=endpoint.consecutive_failures,
                failing_since=endpoint.failing_since,
                updated_at=endpoint.updated_at,
            )
        )

    def delete(self, endpoint_id: UUID) -> bool:
        result = self._session.connection().execute(delete(_ENDPOINTS).where(_ENDPOINTS.c.id == endpoint_id))
        return bool(result.rowcount)

    def secrets(self, endpoint_id: UUID) -> SealedSecrets | None:
        row = (
            self._session.connection()
            .execute(
                select(
                    _ENDPOINTS.c.secret, _ENDPOINTS.c.previous_secret, _ENDPOINTS.c.previous_secret_expires_at
                ).where(_ENDPOINTS.c.id == endpoint_id)
            )
            .first()
        )
        return SealedSecrets(row[0], row[1], row[2]) if row is not None else None

    def set_secrets(self, endpoint_id: UUID, secrets: SealedSecrets, now: datetime) -> None:
        self._session.connection().execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint_id)
            .values(
                secret=secrets.current,
                previous_secret=secrets.previous,
                previous_secret_expires_at=secrets.previous_expires_at,
                updated_at=now,
            )
        )
