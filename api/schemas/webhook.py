"""Webhook subscriptions as requested and returned, their delivery log, and the events receivers get.

The signing secret is in two responses only (`WebhookCreatedOut`, `RotatedSecretOut`); every other model
leaves it out, so a list or a read can never disclose it.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from api.schemas.text import NO_CONTROL_CHARACTERS, NO_CONTROL_CHARACTERS_PATTERN, NUL_FREE_PATTERN, STORABLE
from api.schemas.ticket_detail import TriageAnswerOut
from triage_pipeline.application.webhooks.subscriptions import MAX_LOG_PAGE, CreatedWebhook, RotatedSecret
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.triage_answer import Priority
from triage_pipeline.domain.webhook import (
    DESCRIPTION_MAX_LENGTH,
    SUBSCRIBABLE_EVENT_TYPES,
    URL_MAX_LENGTH,
    DeliveryStatus,
    EventType,
)
from triage_pipeline.domain.webhook_ports import DeliveryLogEntry

DEFAULT_LOG_PAGE = 50
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")
_SUBSCRIBABLE = ", ".join(f"`{t.value}`" for t in SUBSCRIBABLE_EVENT_TYPES)


def _parsable_url(value: str) -> str:
    """Refuse what cannot be split into scheme, host and port; the SSRF policy then judges the target itself."""
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        raise PydanticCustomError("invalid_url", "is not a valid URL: {reason}", {"reason": str(exc)}) from None
    return value


def _subscribable(value: EventType) -> EventType:
    if value not in SUBSCRIBABLE_EVENT_TYPES:
        raise PydanticCustomError(
            "not_subscribable",
            "{value} cannot be subscribed to (POST /webhooks/<id>/test sends it); the event types are: {types}",
            {"value": value.value, "types": ", ".join(SUBSCRIBABLE_EVENT_TYPES)},
        )
    return value


WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX_LENGTH,
        description=(
            f"Where the events are posted: an http(s) URL, up to {URL_MAX_LENGTH} characters, without credentials."
            " Its host must resolve to public addresses only (422 `unsafe_webhook_target` for loopback, private,"
            " link-local, metadata or unresolvable targets) unless the service runs with"
            " WEBHOOK_ALLOW_PRIVATE_TARGETS=true. Redirects are not followed."
        ),
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_PATTERN},
    ),
    STORABLE,
    NO_CONTROL_CHARACTERS,
    AfterValidator(_parsable_url),
]
SubscribableEventType = Annotated[
    EventType,
    AfterValidator(_subscribable),
    WithJsonSchema({"type": "string", "enum": [t.value for t in SUBSCRIBABLE_EVENT_TYPES]}),
]
EventTypes = Annotated[
    list[SubscribableEventType],
    Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE_EVENT_TYPES),
        description=f"The events to receive, at least one of {_SUBSCRIBABLE} (a repeated one counts once).",
    ),
]
WebhookDescription = Annotated[
    str,
    Field(
        max_length=DESCRIPTION_MAX_LENGTH,
        description=f"A note for people (which system receives), up to {DESCRIPTION_MAX_LENGTH} characters.",
        json_schema_extra={"pattern": NUL_FREE_PATTERN},
    ),
    STORABLE,
]


class WebhookCreate(BaseModel):
    """A subscription; unknown fields are rejected."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://support.example.com/hooks/triage",
                    "event_types": ["ticket.triaged", "ticket.needs_review"],
                    "description": "helpdesk sync",
                }
            ]
        },
    )

    url: WebhookUrl
    event_types: EventTypes
    description: WebhookDescription = ""
    owner_id: UUID | None = Field(
        default=None,
        description=(
            "Whose events the endpoint receives. An owner key: absent or its own owner (any other value answers"
            " 403). An admin key: an owner's id, or absent / null for every owner's events (an owner's"
            " `batch.done` counts only its tickets; an all-owners endpoint gets one for the whole batch)."
            " An unknown owner answers 422 `unknown_owner`."
        ),
    )


def _not_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "leave the field out to keep its value; null is not a value")
    return value


class WebhookUpdate(BaseModel):
    """The fields to change (at least one); the others keep their values. Unknown fields are rejected."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"minProperties": 1, "examples": [{"enabled": True}, {"event_types": ["batch.done"]}]},
    )

    url: WebhookUrl | SkipJsonSchema[None] = None
    event_types: EventTypes | SkipJsonSchema[None] = None
    description: WebhookDescription | SkipJsonSchema[None] = None
    enabled: bool | SkipJsonSchema[None] = Field(
        default=None,
        description=(
            "false stops deliveries to the endpoint (events of the meantime are not queued for it; redeliver them"
            " if needed); true resumes them and clears a disabling after failures, with its failure count."
        ),
    )

    _present = field_validator("url", "event_types", "description", "enabled", mode="before")(_not_null)

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise PydanticCustomError("empty_update", "name at least one of url, event_types, description, enabled")
        return self


class WebhookOut(BaseModel):
    """A subscription as stored: never its secret."""

    # `WebhookOut.model_validate(endpoint)` reads a domain `WebhookEndpoint`.
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    owner_id: UUID | None = Field(description="Whose events it receives; null: every owner's.")
    url: str
    event_types: list[EventType]
    description: str
    enabled: bool = Field(description="false: nothing is delivered (see `disabled_reason`).")
    disabled_reason: str | None = Field(
        description="Why it was disabled: on request, after a run of failures, or a 410 Gone answer."
    )
    consecutive_failures: int = Field(description="Failed attempts since the last success.")
    failing_since: datetime | None = Field(description="When the current run of failures began.")
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, the previous secret also signs until then (a second `v1,` signature)."
    )
    created_at: datetime
    updated_at: datetime


class WebhookListOut(BaseModel):
    """The caller's subscriptions (an admin's: every one), oldest first."""

    items: list[WebhookOut]


SECRET_DESCRIPTION = (
    "The signing secret (`whsec_` + base64), shown in this response only: verify every request's"
    " `webhook-signature` with it (Standard Webhooks). It is stored sealed and never returned again; a lost"
    " secret is replaced with `POST /webhooks/{id}/rotate-secret`."
)


class WebhookCreatedOut(WebhookOut):
    """The new subscription and its signing secret."""

    secret: str = Field(description=SECRET_DESCRIPTION)

    @classmethod
    def of(cls, created: CreatedWebhook) -> Self:
        return cls(**dict(WebhookOut.model_validate(created.endpoint)), secret=created.secret)


class RotatedSecretOut(WebhookOut):
    """The subscription and its new signing secret."""

    secret: str = Field(description=SECRET_DESCRIPTION)
    previous_secret_valid_until: datetime = Field(
        description="Until then requests carry two signatures, by the new and the previous secret."
    )

    @classmethod
    def of(cls, rotated: RotatedSecret) -> Self:
        endpoint = WebhookOut.model_validate(rotated.endpoint)
        return cls(**dict(endpoint), secret=rotated.secret, previous_secret_valid_until=rotated.previous_valid_until)


class QueuedEventOut(BaseModel):
    """An event queued for the endpoint; the deliverer sends it shortly (see the delivery log)."""

    event_id: UUID
    webhook_id: str = Field(
        description="The `webhook-id` header the receiver gets (`msg_` + the event id), the same on every attempt."
    )


class DeliveryFilters(BaseModel):
    """Query parameters of the delivery log; an unknown one answers 422."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LOG_PAGE, ge=1, le=MAX_LOG_PAGE, description="Page size.")
    before: AwareDatetime | None = Field(
        default=None,
        description="Only attempts started before this instant (with its UTC offset): `next_before` of the previous"
        " page.",
    )

    @field_validator("before", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> object:
        """Only the documented form: pydantic would also read a number such as `0.5` as Unix seconds."""
        if isinstance(value, str) and not _ISO_DATE.match(value):
            raise PydanticCustomError(
                "datetime_format", "must be an ISO 8601 date-time with its UTC offset, e.g. 2025-03-01T12:00:00Z"
            )
        return value

    @field_validator("before")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """In UTC, as the database compares it (an offset like +23:00 is valid ISO 8601, not a PostgreSQL one)."""
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise PydanticCustomError("datetime_out_of_range", "is out of the supported range") from None


class DeliveryOut(BaseModel):
    """One request sent to the endpoint (an attempt), with its event and where that event's delivery stands."""

    attempt: int = Field(description="1 for the first attempt of this delivery, 2 for its first retry, ...")
    event_id: UUID
    event_type: EventType
    started_at: datetime
    status_code: int | None = Field(description="The receiver's answer; null when none came (see `error`).")
    latency_ms: int
    error: str | None = Field(description="Why no answer came (timeout, refused connection, unsafe target).")
    response_excerpt: str | None = Field(description="The start of the receiver's answer.")
    succeeded: bool
    delivery_status: DeliveryStatus = Field(
        description="The event's delivery now: PENDING (another attempt at `next_attempt_at`), DELIVERED, FAILED."
    )
    next_attempt_at: datetime | None

    @classmethod
    def of(cls, entry: DeliveryLogEntry) -> Self:
        attempt = entry.attempt
        return cls(
            attempt=attempt.attempt,
            event_id=attempt.event_id,
            event_type=EventType(entry.event_type),
            started_at=attempt.started_at,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
            response_excerpt=attempt.response_excerpt,
            succeeded=attempt.succeeded,
            delivery_status=entry.delivery_status,
            next_attempt_at=entry.next_attempt_at,
        )


class DeliveryPageOut(BaseModel):
    """Attempts newest first, and the cursor of the next page."""

    items: list[DeliveryOut]
    next_before: datetime | None = Field(
        description="Pass as `before` for the next (older) page; null when this page is the last."
    )


# The events receivers get: the body of every request is `{type, timestamp, data}`.


class TicketRef(BaseModel):
    ticket_id: UUID
    external_id: str = Field(description="The client's own id of the ticket.")
    owner_id: UUID


class TriagedData(TicketRef):
    status: TicketStatus = Field(description="COMPLETED.")
    job_id: UUID
    batch_id: UUID | None = Field(description="The batch that triaged it; null for a single ticket's triage.")
    attempt: int = Field(description="The attempt that answered.")
    triage: TriageAnswerOut
    confidence: float
    review_status: ReviewStatus | None = Field(description="NEEDS_REVIEW when a person must look at the answer.")
    prompt_version: int | None
    model: str


class TriageFailedData(TicketRef):
    status: TicketStatus = Field(description="FAILED.")
    job_id: UUID
    batch_id: UUID | None
    attempts: int = Field(description="Attempts made, the last one included.")
    error_class: str = Field(description="What the last attempt failed with, e.g. `LlmTimeout`.")


class CorrectedData(TicketRef):
    correction_id: UUID
    category: str = Field(description="The person's category.")
    priority: Priority = Field(description="The person's priority.")
    model_category: str | None = Field(description="What the model had answered.")
    model_priority: Priority | None
    corrected_by: str


class BatchCounts(BaseModel):
    DONE: int
    FAILED: int
    PENDING: int = Field(description="Items never started: the batch was abandoned.")


class BatchDoneData(BaseModel):
    batch_id: UUID
    abandoned: bool
    total: int = Field(description="Items counted: the owner's own, or the whole batch's for an all-owners endpoint.")
    counts: BatchCounts


class PingData(BaseModel):
    endpoint_id: UUID


class _Envelope(BaseModel):
    timestamp: datetime = Field(description="When the event happened (not when this attempt was sent).")


class TicketTriagedEvent(_Envelope):
    type: Literal["ticket.triaged"]
    data: TriagedData


class TicketNeedsReviewEvent(_Envelope):
    type: Literal["ticket.needs_review"]
    data: TriagedData


class TicketTriageFailedEvent(_Envelope):
    type: Literal["ticket.triage_failed"]
    data: TriageFailedData


class TicketCorrectedEvent(_Envelope):
    type: Literal["ticket.corrected"]
    data: CorrectedData


class BatchDoneEvent(_Envelope):
    type: Literal["batch.done"]
    data: BatchDoneData


class PingEvent(_Envelope):
    type: Literal["ping"]
    data: PingData
