"""Ticket intake (one, or many with a result per item) and ticket reads."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import TypeAdapter, ValidationError

from api.dependencies import CreateTicketDep, CreateTicketsDep, GetTicketDep, ListTicketsDep, TicketLogsDep
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
from triage_pipeline.application.intake import CreateTicketsCommand, ItemStatus
from triage_pipeline.application.intake import ItemResult as ItemOutcome
from triage_pipeline.application.ticket_queries import MAX_PAGE_SIZE, GetTicketQuery, ListTicketsQuery, TicketLogsQuery
from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a ticket",
    responses=problem_responses(400, 409, 413, 422, 503),
)
def create_ticket(body: TicketCreate, use_case: CreateTicketDep, response: Response) -> TicketOut:
    """Create a ticket and its PENDING triage job in one transaction; 409 names the existing ticket."""
    try:
        ticket = use_case.execute(body.to_command())
    except NotFound as exc:
        if exc.entity != "owner":
            raise
        message = _unknown_owner(body.owner_id)
        raise ApiProblem(
            422, "unknown_owner", message, errors=[field_error("owner_id", message, "unknown_owner")]
        ) from exc
    response.headers["Location"] = f"/tickets/{ticket.id}"
    return TicketOut.from_domain(ticket)


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
def create_tickets(items: Annotated[list[Any], Body()], use_case: CreateTicketsDep) -> TicketBatchResult:
    """Validate every item separately, create the valid ones in one call, and report each in order."""
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
            valid.append((index, _ITEM.validate_python(raw)))
        except ValidationError as exc:
            results[index] = _invalid_item(index, raw, exc)
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


@router.get("", summary="List tickets, newest first", responses=problem_responses(400, 422, 503))
def list_tickets(
    use_case: ListTicketsDep,
    status: Annotated[TicketStatus | None, Query(description="Only tickets in this triage status.")] = None,
    owner_id: Annotated[UUID | None, Query(description="Only tickets of this owner.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=256, description="`next_cursor` of the previous page (opaque).")
    ] = None,
) -> TicketPageOut:
    """One page of tickets; a cursor this service did not issue answers 400 `invalid_cursor`."""
    page = use_case.execute(ListTicketsQuery(status=status, owner_id=owner_id, limit=limit, cursor=cursor))
    return TicketPageOut.from_domain(page)


@router.get("/{ticket_id}", summary="Read a ticket", responses=problem_responses(404, 422, 503))
def get_ticket(ticket_id: UUID, use_case: GetTicketDep) -> TicketDetail:
    """The ticket with its triage answer (null until triaged) and its job's status."""
    return TicketDetail.from_view(use_case.execute(GetTicketQuery(ticket_id)))


@router.get("/{ticket_id}/logs", summary="A ticket's triage attempts", responses=problem_responses(404, 422, 503))
def get_ticket_logs(ticket_id: UUID, use_case: TicketLogsDep) -> list[TriageAttemptOut]:
    """Every triage attempt of the ticket, oldest first."""
    return [TriageAttemptOut.from_domain(log) for log in use_case.execute(TicketLogsQuery(ticket_id))]
