"""Ticket intake (one, or many with a result per item) and ticket reads."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from api.dependencies import provide
from api.errors import validation_errors
from api.problems import ApiProblem, field_error, problem_responses
from api.schemas.ticket import TicketCreate, TicketOut
from api.schemas.ticket_batch import (
    MAX_BATCH_ITEMS,
    CreatedItem,
    DuplicateItem,
    InvalidItem,
    ItemResult,
    TicketBatchResult,
)
from api.schemas.ticket_detail import TicketDetail
from api.schemas.ticket_log import TriageAttemptOut
from api.schemas.ticket_page import TicketPageOut
from api.security import PrincipalDep, owner_access
from triage_pipeline.application.intake import CreateTicket, CreateTickets, CreateTicketsCommand, ItemStatus
from triage_pipeline.application.intake import ItemResult as ItemOutcome
from triage_pipeline.application.ticket_queries import (
    MAX_PAGE_SIZE,
    GetTicket,
    GetTicketLogs,
    GetTicketQuery,
    ListTickets,
    ListTicketsQuery,
    TicketLogsQuery,
)
from triage_pipeline.domain.api_key import Principal
from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus

router = APIRouter(prefix="/tickets", tags=["tickets"])

_ITEM = TypeAdapter(TicketCreate)
_UUID = TypeAdapter(UUID)
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    # Any item is accepted into the request: one that is not a valid TicketCreate is
                    # reported INVALID in the 207, it does not fail the request.
                    "items": {"anyOf": [{"$ref": "#/components/schemas/TicketCreate"}, {}]},
                    "maxItems": MAX_BATCH_ITEMS,
                    "description": (
                        f"Up to {MAX_BATCH_ITEMS} tickets (TicketCreate), each validated on its own: an item that"
                        " is not a valid TicketCreate is reported INVALID instead of failing the request."
                    ),
                }
            }
        },
    }
}


def _unknown_owner(owner_id: UUID) -> str:
    return f"owner {owner_id} does not exist"


_FOREIGN_OWNER = "an owner API key may only create tickets of its own owner"


def _for_caller(ticket: TicketCreate, caller: Principal) -> TicketCreate:
    """An owner key's ticket without `owner_id` belongs to the key's owner (the default owner otherwise)."""
    if "owner_id" not in ticket.model_fields_set and caller.owner_id is not None:
        return ticket.model_copy(update={"owner_id": caller.owner_id})
    return ticket


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a ticket",
    responses=problem_responses(400, 409, 413, 422, 503),
)
@owner_access
async def create_ticket(
    body: TicketCreate,
    use_case: Annotated[CreateTicket, provide(CreateTicket)],
    response: Response,
    caller: PrincipalDep,
) -> TicketOut:
    """Create a ticket and its PENDING triage job in one transaction; 409 names the existing ticket.

    With an owner key, `owner_id` defaults to the key's owner and any other owner answers 403.
    """
    # The hot path of intake is `async def` so that the use case (the only blocking call) is the request's one
    # trip to a worker thread: a sync endpoint costs two, as FastAPI then validates its return value on one too.
    body = _for_caller(body, caller)
    if not caller.may_act_for(body.owner_id):
        raise ApiProblem(403, "forbidden", f"{_FOREIGN_OWNER}.")
    try:
        ticket = await run_in_threadpool(use_case.execute, body.to_command())
    except NotFound as exc:
        if exc.entity != "owner":
            raise
        message = _unknown_owner(body.owner_id)
        raise ApiProblem(
            422, "unknown_owner", message, errors=[field_error("owner_id", message, "unknown_owner")]
        ) from exc
    response.headers["Location"] = f"/tickets/{ticket.id}"
    return TicketOut.model_validate(ticket)


@router.post(
    "/batch",
    status_code=status.HTTP_207_MULTI_STATUS,
    summary="Create many tickets, with one result per item",
    description=(
        f"Takes a JSON array of up to {MAX_BATCH_ITEMS} tickets (more answers 413 `too_many_items`). Each item is"
        " validated on its own: valid items are created (ticket + PENDING job, in one transaction for the whole"
        " call) even when others are invalid. `results` holds one entry per item, in request order, with status"
        " CREATED, DUPLICATE (with the existing `ticket_id`) or INVALID (with `errors`; an unknown owner is an"
        " `owner_id` error)."
    ),
    responses=problem_responses(400, 413, 422, 503),
    openapi_extra=_BATCH_BODY,
)
@owner_access
def create_tickets(
    items: Annotated[list[Any], Body()],
    use_case: Annotated[CreateTickets, provide(CreateTickets)],
    caller: PrincipalDep,
) -> TicketBatchResult:
    """Validate every item separately, create the valid ones in one call, and report each in order.

    With an owner key, an item without `owner_id` belongs to the key's owner; an item of another owner is
    INVALID (`forbidden_owner`).
    """
    if len(items) > MAX_BATCH_ITEMS:
        raise ApiProblem(
            413,
            "too_many_items",
            f"A batch holds at most {MAX_BATCH_ITEMS} items; this one has {len(items)}.",
            max_items=MAX_BATCH_ITEMS,
        )
    results: list[ItemResult | None] = [None] * len(items)
    valid: list[tuple[int, TicketCreate]] = []
    for index, raw in enumerate(items):
        try:
            item = _for_caller(_ITEM.validate_python(raw), caller)
        except ValidationError as exc:
            results[index] = _invalid_item(index, raw, exc)
            continue
        if caller.may_act_for(item.owner_id):
            valid.append((index, item))
        else:
            results[index] = InvalidItem(
                index=index,
                errors=[field_error("owner_id", _FOREIGN_OWNER, "forbidden_owner")],
                external_id=item.external_id,
                owner_id=item.owner_id,
            )
    if valid:
        outcomes = use_case.execute(CreateTicketsCommand([item.to_command() for _, item in valid]))
        for (index, _), outcome in zip(valid, outcomes, strict=True):
            results[index] = _item_result(index, outcome)
    missing = [index for index, result in enumerate(results) if result is None]
    if missing:  # never drop an item silently
        raise RuntimeError(f"no result for batch items {missing[:10]}")
    return TicketBatchResult(results=[r for r in results if r is not None])


def _item_result(index: int, outcome: ItemOutcome) -> ItemResult:
    """The 207 entry of an item the use case processed."""
    if outcome.status is ItemStatus.CREATED and outcome.ticket_id is not None:
        return CreatedItem(
            index=index, ticket_id=outcome.ticket_id, external_id=outcome.external_id, owner_id=outcome.owner_id
        )
    if outcome.status is ItemStatus.DUPLICATE and outcome.ticket_id is not None:
        return DuplicateItem(
            index=index, ticket_id=outcome.ticket_id, external_id=outcome.external_id, owner_id=outcome.owner_id
        )
    if outcome.status is ItemStatus.UNKNOWN_OWNER:
        message = _unknown_owner(outcome.owner_id)
        return InvalidItem(
            index=index,
            errors=[field_error("owner_id", message, "unknown_owner")],
            external_id=outcome.external_id,
            owner_id=outcome.owner_id,
        )
    raise RuntimeError(f"unexpected outcome {outcome.status} for batch item {index}")


def _invalid_item(index: int, raw: object, exc: ValidationError) -> InvalidItem:
    """An INVALID result, echoing external_id and owner_id when those fields themselves were valid."""
    errors = exc.errors()
    bad = {str(e["loc"][0]) for e in errors if e["loc"]}
    external_id: str | None = None
    owner_id: UUID | None = None
    if isinstance(raw, dict):
        candidate = raw.get("external_id")
        if "external_id" not in bad and isinstance(candidate, str):
            external_id = candidate
        if "owner_id" not in bad:
            owner_id = _UUID.validate_python(raw["owner_id"]) if "owner_id" in raw else DEFAULT_OWNER_ID
    return InvalidItem(
        index=index,
        errors=validation_errors(errors, in_request=False, root="item"),
        external_id=external_id,
        owner_id=owner_id,
    )


class TicketFilters(BaseModel):
    """Query parameters of the ticket list; an unknown one (a typo such as `stauts`) answers 422, not all tickets."""

    model_config = ConfigDict(extra="forbid")

    status: TicketStatus | None = Field(default=None, description="Only tickets in this triage status.")
    owner_id: UUID | None = Field(default=None, description="Only tickets of this owner.")
    review_status: ReviewStatus | None = Field(
        default=None, description="Only tickets in this review status (`NEEDS_REVIEW`: the review queue)."
    )
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    cursor: str | None = Field(default=None, max_length=256, description="`next_cursor` of the previous page (opaque).")


@router.get("", summary="List tickets, newest first", responses=problem_responses(400, 422, 503))
@owner_access
def list_tickets(
    use_case: Annotated[ListTickets, provide(ListTickets)],
    caller: PrincipalDep,
    filters: Annotated[TicketFilters, Query()],
) -> TicketPageOut:
    """One page of tickets; a cursor this service did not issue answers 400 `invalid_cursor`.

    An owner key sees only its owner's tickets (filtering on another owner gives an empty page).
    """
    visible = caller.visible_owner()
    if visible is not None and filters.owner_id not in (None, visible):
        return TicketPageOut(items=[], next_cursor=None)
    query = ListTicketsQuery(
        status=filters.status,
        owner_id=visible if visible is not None else filters.owner_id,
        limit=filters.limit,
        cursor=filters.cursor,
        review_status=filters.review_status,
    )
    return TicketPageOut.model_validate(use_case.execute(query))


@router.get("/{ticket_id}", summary="Read a ticket", responses=problem_responses(404, 422, 503))
@owner_access
def get_ticket(
    ticket_id: UUID, use_case: Annotated[GetTicket, provide(GetTicket)], caller: PrincipalDep
) -> TicketDetail:
    """The ticket with its triage answer (null until triaged) and its job's status; another owner's is a 404."""
    return TicketDetail.from_view(use_case.execute(GetTicketQuery(ticket_id, visible_to=caller.visible_owner())))


@router.get("/{ticket_id}/logs", summary="A ticket's triage attempts", responses=problem_responses(404, 422, 503))
@owner_access
def get_ticket_logs(
    ticket_id: UUID, use_case: Annotated[GetTicketLogs, provide(GetTicketLogs)], caller: PrincipalDep
) -> list[TriageAttemptOut]:
    """Every triage attempt of the ticket, oldest first; another owner's ticket is a 404."""
    logs = use_case.execute(TicketLogsQuery(ticket_id, visible_to=caller.visible_owner()))
    return [TriageAttemptOut.model_validate(log) for log in logs]
