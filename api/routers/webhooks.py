"""Webhook subscriptions: subscribe (the signing secret is shown once), read, change, delete, rotate the secret,
send a test event, read the delivery log, redeliver an event; and, for the OpenAPI page, the events receivers get.

An owner key manages only its owner's endpoints (another owner's is a 404); an admin manages every endpoint,
the all-owners ones included. Nothing here sends a request: events are queued in the outbox and the deliverer
(the Dagster sensor, or `triage webhooks deliver`) posts them.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from api.dependencies import provide
from api.problems import ApiProblem, field_error, problem_responses
from api.schemas.problem import Problem
from api.schemas.webhook import (
    BatchDoneEvent,
    DeliveryFilters,
    DeliveryOut,
    DeliveryPageOut,
    PingEvent,
    QueuedEventOut,
    RotatedSecretOut,
    TicketCorrectedEvent,
    TicketNeedsReviewEvent,
    TicketTriagedEvent,
    TicketTriageFailedEvent,
    WebhookCreate,
    WebhookCreatedOut,
    WebhookListOut,
    WebhookOut,
    WebhookUpdate,
)
from api.security import PrincipalDep, owner_access
from triage_pipeline.application.webhooks.subscriptions import (
    CreateWebhook,
    CreateWebhookCommand,
    DeleteWebhook,
    DeliveryLogQuery,
    GetWebhook,
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
from triage_pipeline.domain.api_key import Principal
from triage_pipeline.domain.exceptions import NotFound

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

EndpointId = Annotated[UUID, Path(description="The endpoint's `id` (from `POST /webhooks`).")]

_FOREIGN_OWNER = (
    "an owner API key may only subscribe to its own owner's events (leave owner_id out, or give its own id)"
)
_NOT_CONFIGURED = {
    503: (
        "The database is unavailable (`database_unavailable`; retry later), or webhook signing is not configured"
        " on the service (`webhooks_not_configured`: its operator must set WEBHOOK_SECRETS_KEY)."
    )
}
_UNSAFE = {
    422: (
        "Validation failed (`validation_error`), the URL is refused (`unsafe_webhook_target`: not http(s), with"
        " credentials, or resolving to a loopback, private, link-local, metadata or unresolvable address), or"
        " the subscription breaks a rule (`invalid_webhook`); `errors` names the field."
    )
}
_LOCATION = {"Location": {"description": "The new endpoint: `/webhooks/{id}`.", "schema": {"type": "string"}}}


def _subscriber(body: WebhookCreate, caller: Principal) -> UUID | None:
    """Whose events the endpoint gets: an owner key's own (403 for anything else), or an admin's choice, where
    an absent or null `owner_id` means every owner's."""
    if caller.is_admin:
        return body.owner_id
    if "owner_id" in body.model_fields_set and body.owner_id != caller.owner_id:
        raise ApiProblem(403, "forbidden", f"{_FOREIGN_OWNER}.")
    return caller.owner_id


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe an endpoint to events; the signing secret is in this response only",
    description=(
        "Stores the subscription and answers with its signing `secret`, which is never shown again (keep it where"
        " the receiver verifies signatures). The URL is checked against the SSRF policy here and again before"
        " every request. Events are then posted as they happen, signed per Standard Webhooks (see the"
        " `webhooks` section of this document); `POST /webhooks/{id}/test` sends a `ping`."
    ),
    responses={
        **problem_responses(400, 403, 413, 422, 503, descriptions={**_NOT_CONFIGURED, **_UNSAFE}),
        201: {"headers": _LOCATION},
    },
)
@owner_access
def create_webhook(
    body: WebhookCreate,
    use_case: Annotated[CreateWebhook, provide(CreateWebhook)],
    caller: PrincipalDep,
    response: Response,
) -> WebhookCreatedOut:
    """An owner key subscribes for its own owner; an admin for one owner or, without `owner_id`, for all."""
    owner_id = _subscriber(body, caller)
    command = CreateWebhookCommand(owner_id, body.url, tuple(body.event_types), body.description)
    try:
        created = use_case.execute(command)
    except NotFound as exc:
        if exc.entity != "owner":
            raise
        message = f"owner {owner_id} does not exist"
        raise ApiProblem(
            422, "unknown_owner", message, errors=[field_error("owner_id", message, "unknown_owner")]
        ) from exc
    response.headers["Location"] = f"/webhooks/{created.endpoint.id}"
    return WebhookCreatedOut.of(created)


@router.get("", summary="List webhook endpoints (never their secrets)", responses=problem_responses(422, 503))
@owner_access
def list_webhooks(use_case: Annotated[ListWebhooks, provide(ListWebhooks)], caller: PrincipalDep) -> WebhookListOut:
    """An owner key sees its owner's endpoints; an admin sees every endpoint, the all-owners ones included."""
    endpoints = use_case.execute(ListWebhooksQuery(caller.visible_owner()))
    return WebhookListOut(items=[WebhookOut.model_validate(e) for e in endpoints])


@router.get("/{endpoint_id}", summary="Read a webhook endpoint", responses=problem_responses(404, 422, 503))
@owner_access
def get_webhook(
    endpoint_id: EndpointId, use_case: Annotated[GetWebhook, provide(GetWebhook)], caller: PrincipalDep
) -> WebhookOut:
    """Another owner's endpoint is a 404."""
    return WebhookOut.model_validate(use_case.execute(WebhookRef(endpoint_id, caller.visible_owner())))


@router.patch(
    "/{endpoint_id}",
    summary="Change a webhook endpoint",
    description=(
        "Changes only the fields given (at least one; null is not a value). `enabled: true` resumes an endpoint"
        " that was disabled (on request, after a run of failures, or by a 410 Gone answer) and clears its failure"
        " count; events of the disabled time were not queued for it (redeliver those needed). A new `url` is"
        " checked like at creation."
    ),
    responses=problem_responses(400, 404, 413, 422, 503, descriptions=_UNSAFE),
)
@owner_access
def update_webhook(
    endpoint_id: EndpointId,
    body: WebhookUpdate,
    use_case: Annotated[UpdateWebhook, provide(UpdateWebhook)],
    caller: PrincipalDep,
) -> WebhookOut:
    """The endpoint as changed; another owner's is a 404."""
    command = UpdateWebhookCommand(
        endpoint_id,
        caller.visible_owner(),
        url=body.url,
        event_types=tuple(body.event_types) if body.event_types is not None else None,
        description=body.description,
        enabled=body.enabled,
    )
    return WebhookOut.model_validate(use_case.execute(command))


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook endpoint",
    responses=problem_responses(404, 422, 503),
)
@owner_access
def delete_webhook(
    endpoint_id: EndpointId, use_case: Annotated[DeleteWebhook, provide(DeleteWebhook)], caller: PrincipalDep
) -> Response:
    """Its pending deliveries and its delivery log go with it; nothing more is sent to it."""
    use_case.execute(WebhookRef(endpoint_id, caller.visible_owner()))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="Replace the signing secret; the new one is in this response only",
    description=(
        "Requests are signed with the new secret from now on, and also with the previous one until"
        " `previous_secret_valid_until` (two `v1,` signatures in `webhook-signature`), so the receiver can switch"
        " secrets without losing an event."
    ),
    responses=problem_responses(404, 422, 503, descriptions=_NOT_CONFIGURED),
)
@owner_access
def rotate_secret(
    endpoint_id: EndpointId,
    use_case: Annotated[RotateWebhookSecret, provide(RotateWebhookSecret)],
    caller: PrincipalDep,
) -> RotatedSecretOut:
    """The endpoint with its new secret; another owner's is a 404."""
    return RotatedSecretOut.of(use_case.execute(WebhookRef(endpoint_id, caller.visible_owner())))


@router.post(
    "/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a ping event to this endpoint",
    description=(
        "Queues a `ping` for this endpoint alone (even a disabled one keeps it until enabled); the deliverer"
        " sends it like any event. Its attempts appear in `GET /webhooks/{id}/deliveries`."
    ),
    responses=problem_responses(404, 422, 503),
)
@owner_access
def send_test_event(
    endpoint_id: EndpointId, use_case: Annotated[SendTestEvent, provide(SendTestEvent)], caller: PrincipalDep
) -> QueuedEventOut:
    """The queued ping; another owner's endpoint is a 404."""
    queued = use_case.execute(WebhookRef(endpoint_id, caller.visible_owner()))
    return QueuedEventOut.model_validate(queued, from_attributes=True)


@router.get(
    "/{endpoint_id}/deliveries",
    summary="Read the delivery log of a webhook endpoint, newest attempt first",
    description=(
        "One entry per request sent: the answer (status, latency, an excerpt) or the error, and where that"
        " event's delivery stands (PENDING with its next attempt, DELIVERED, FAILED). Page on with"
        " `before=<next_before>`."
    ),
    responses=problem_responses(404, 422, 503),
)
@owner_access
def list_deliveries(
    endpoint_id: EndpointId,
    use_case: Annotated[ListDeliveries, provide(ListDeliveries)],
    caller: PrincipalDep,
    filters: Annotated[DeliveryFilters, Query()],
) -> DeliveryPageOut:
    """A page of attempts; `next_before` is set when the page is full (an older one may follow)."""
    query = DeliveryLogQuery(endpoint_id, caller.visible_owner(), filters.limit, filters.before)
    entries = use_case.execute(query)
    next_before = entries[-1].attempt.started_at if len(entries) == filters.limit else None
    return DeliveryPageOut(items=[DeliveryOut.of(entry) for entry in entries], next_before=next_before)


@router.post(
    "/{endpoint_id}/events/{event_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send an event to this endpoint again",
    description=(
        "Queues the event for this endpoint on a fresh retry schedule, with its original `webhook-id` (so a"
        " receiver that had it drops the copy). Any event the endpoint's owner may receive qualifies, also one"
        " from before the endpoint subscribed or while it was disabled; another event is a 404. While a"
        " deliverer is sending that very event to this endpoint the answer is 409 `delivery_in_flight`."
    ),
    responses=problem_responses(
        404,
        409,
        422,
        503,
        models={409: Problem},
        descriptions={409: "The event is being sent to this endpoint right now (`delivery_in_flight`)."},
    ),
)
@owner_access
def redeliver_event(
    endpoint_id: EndpointId,
    event_id: Annotated[UUID, Path(description="The event's id (`event_id` in the delivery log).")],
    use_case: Annotated[RedeliverEvent, provide(RedeliverEvent)],
    caller: PrincipalDep,
) -> QueuedEventOut:
    """The queued event; an unknown event, or one of another owner, is a 404."""
    queued = use_case.execute(RedeliverCommand(endpoint_id, caller.visible_owner(), event_id))
    return QueuedEventOut.model_validate(queued, from_attributes=True)


# What receivers get, for the `webhooks` section of the OpenAPI document (`app.webhooks`): nothing here is served.


def _signed(
    webhook_id: Annotated[
        str,
        Header(
            alias="webhook-id",
            description="`msg_` + the event id: the same on every attempt of the event; drop a repeated one.",
        ),
    ],
    webhook_timestamp: Annotated[
        int,
        Header(
            alias="webhook-timestamp",
            description="Unix seconds when this attempt was signed; refuse one far from your clock (replays).",
        ),
    ],
    webhook_signature: Annotated[
        str,
        Header(
            alias="webhook-signature",
            description=(
                "Space-separated `v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` keyed with"
                " the base64-decoded secret (after `whsec_`); two during a rotation's grace period. Verify with any"
                " Standard Webhooks library before trusting the body."
            ),
        ),
    ],
) -> None:
    """The Standard Webhooks headers of every request."""


events = APIRouter(
    tags=["webhook events"],
    dependencies=[Depends(_signed)],
    responses={
        410: {"description": "The endpoint is gone: the delivery ends and the endpoint is disabled."},
        "default": {
            "description": (
                "Anything else (no answer within the timeout, a redirect, another 4xx, a 5xx) is retried: after"
                " 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, then the delivery FAILED. A long run of failures"
                " disables the endpoint."
            )
        },
    },
)
_RECEIVED = "Any 2xx: delivered (answer quickly; the sender times out)."


@events.post("ticket.triaged", summary="A ticket's answer is stored", response_description=_RECEIVED)
def ticket_triaged(payload: TicketTriagedEvent) -> None:
    """Sent when a ticket is COMPLETED with its triage answer, whatever its review status."""


@events.post("ticket.needs_review", summary="A stored answer waits for a person", response_description=_RECEIVED)
def ticket_needs_review(payload: TicketNeedsReviewEvent) -> None:
    """Sent beside `ticket.triaged` (with the same data) when the answer's confidence is below the prompt version's
    review threshold."""


@events.post("ticket.triage_failed", summary="A ticket's triage failed for good", response_description=_RECEIVED)
def ticket_triage_failed(payload: TicketTriageFailedEvent) -> None:
    """Sent when the last allowed attempt failed: nothing more is tried unless the ticket is triaged again."""


@events.post("ticket.corrected", summary="A person corrected an answer", response_description=_RECEIVED)
def ticket_corrected(payload: TicketCorrectedEvent) -> None:
    """Sent when a person corrects a ticket's category and priority, with the model's labels beside theirs."""


@events.post("batch.done", summary="A triage batch ended", response_description=_RECEIVED)
def batch_done(payload: BatchDoneEvent) -> None:
    """Sent once a batch ended (or was abandoned): an owner's endpoint counts its own tickets, an all-owners
    endpoint the whole batch."""


@events.post("ping", summary="A test event", response_description=_RECEIVED)
def ping(payload: PingEvent) -> None:
    """Sent by `POST /webhooks/{id}/test` to that endpoint only; it cannot be subscribed to."""
