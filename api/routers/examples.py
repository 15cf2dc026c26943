"""Labelled examples: bulk import (one result per item), list, read, delete; each owner sees its bank and the shared
one, never another owner's."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.dependencies import provide
from api.errors import validation_errors
from api.problems import ApiProblem, field_error, problem_responses
from api.schemas.example import (
    MAX_EXAMPLE_ITEMS,
    CreatedExample,
    DuplicateExample,
    ExampleCreate,
    ExampleImport,
    ExampleImportResult,
    ExampleItemResult,
    ExampleOut,
    ExamplePageOut,
    InvalidExample,
)
from api.schemas.field_error import FieldError
from api.security import PrincipalDep, owner_access
from triage_pipeline.application.examples import (
    DeleteExample,
    DeleteExampleCommand,
    ExampleItemStatus,
    GetExample,
    GetExampleQuery,
    ImportExamples,
    ImportExamplesCommand,
    ListExamples,
    ListExamplesQuery,
)
from triage_pipeline.application.examples import ExampleItemResult as ExampleOutcome
from triage_pipeline.application.ticket_queries import MAX_PAGE_SIZE
from triage_pipeline.domain.api_key import Principal
from triage_pipeline.domain.exceptions import NotFound

router = APIRouter(prefix="/examples", tags=["examples"])

_ITEM = TypeAdapter(ExampleCreate)
_FOREIGN_BANK = "an owner API key may only add examples to its own owner's bank"
_ERROR_TYPES = {
    "category": "unknown_label",
    "priority": "unknown_label",
    "sentiment": "unknown_label",
    "title": "empty_text",
    "language": "invalid_language",
}


def _bank(body: ExampleImport, caller: Principal) -> UUID | None:
    """The bank the examples go to: absent `owner_id` is the caller's (an admin's is the shared one)."""
    owner_id = body.owner_id if "owner_id" in body.model_fields_set else caller.visible_owner()
    if not caller.is_admin and owner_id != caller.owner_id:
        raise ApiProblem(403, "forbidden", f"{_FOREIGN_BANK}.")
    return owner_id


@router.post(
    "",
    status_code=status.HTTP_207_MULTI_STATUS,
    summary="Add labelled examples, with one result per item",
    description=(
        f"Takes `items`, up to {MAX_EXAMPLE_ITEMS} examples (more answers 413 `too_many_items`; a body over the"
        " size limit 413 `payload_too_large`), for one bank (`owner_id`). Each item is validated on its own, its"
        " labels against the active prompt's vocabulary: the valid new ones are stored (in one transaction for the"
        " whole call) even when others are invalid. `results` holds one entry per item, in request order: CREATED"
        " (with `example_id`), DUPLICATE (the bank already holds the same text; `example_id` is that example) or"
        " INVALID (with `errors`). An unknown `owner_id` answers 422 `unknown_owner`. Which bank: without"
        " `owner_id` an owner key adds to its own and an admin to the shared one; `owner_id: null` is the shared"
        " bank (admins only); an owner key naming another owner's bank, or the shared one, answers 403."
    ),
    responses=problem_responses(400, 403, 409, 413, 422, 503),
)
@owner_access
def import_examples(
    body: ExampleImport,
    use_case: Annotated[ImportExamples, provide(ImportExamples)],
    caller: PrincipalDep,
) -> ExampleImportResult:
    """Validate every item separately, store the valid ones in one call, and report each in order.

    An owner key adds to its own bank (403 for another `owner_id` or the shared bank); an admin adds to the
    shared bank unless it names an owner.
    """
    if len(body.items) > MAX_EXAMPLE_ITEMS:
        raise ApiProblem(
            413,
            "too_many_items",
            f"An import holds at most {MAX_EXAMPLE_ITEMS} items; this one has {len(body.items)}.",
            max_items=MAX_EXAMPLE_ITEMS,
        )
    owner_id = _bank(body, caller)
    results: list[ExampleItemResult | None] = [None] * len(body.items)
    valid: list[tuple[int, ExampleCreate]] = []
    for index, raw in enumerate(body.items):
        if isinstance(raw, ExampleCreate):
            valid.append((index, raw))
            continue
        try:
            valid.append((index, _ITEM.validate_python(raw)))
        except ValidationError as exc:
            errors = validation_errors(exc.errors(), in_request=False, root="item")
            results[index] = InvalidExample(index=index, errors=errors)
    if valid:
        try:
            outcomes = use_case.execute(ImportExamplesCommand([item.to_new() for _, item in valid], owner_id))
        except NotFound as exc:
            if exc.entity != "owner":
                raise
            message = f"owner {owner_id} does not exist"
            raise ApiProblem(
                422, "unknown_owner", message, errors=[field_error("owner_id", message, "unknown_owner")]
            ) from exc
        for (index, _), outcome in zip(valid, outcomes, strict=True):
            results[index] = _item_result(index, outcome)
    missing = [index for index, result in enumerate(results) if result is None]
    if missing:  # never drop an item silently
        raise RuntimeError(f"no result for example items {missing[:10]}")
    return ExampleImportResult(owner_id=owner_id, results=[r for r in results if r is not None])


def _item_result(index: int, outcome: ExampleOutcome) -> ExampleItemResult:
    """The 207 entry of an item the use case processed."""
    if outcome.status is ExampleItemStatus.CREATED and outcome.example_id is not None:
        return CreatedExample(index=index, example_id=outcome.example_id)
    if outcome.status is ExampleItemStatus.DUPLICATE and outcome.example_id is not None:
        return DuplicateExample(index=index, example_id=outcome.example_id)
    if outcome.status is ExampleItemStatus.INVALID:
        field = outcome.field or "item"
        error = FieldError(field=field, message=outcome.error or "invalid", type=_ERROR_TYPES.get(field, "invalid"))
        return InvalidExample(index=index, errors=[error])
    raise RuntimeError(f"unexpected outcome {outcome.status} for example item {index}")


class ExampleFilters(BaseModel):
    """Query parameters of the example list; an unknown one answers 422, not every example."""

    model_config = ConfigDict(extra="forbid")

    owner_id: UUID | None = Field(
        default=None, description="Only the examples this owner's prompts may be shown: its own and the shared ones."
    )
    shared: bool = Field(default=False, description="Only the shared examples (those of no owner).")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    cursor: str | None = Field(default=None, max_length=256, description="`next_cursor` of the previous page (opaque).")


@router.get("", summary="List labelled examples, newest first", responses=problem_responses(400, 422, 503))
@owner_access
def list_examples(
    use_case: Annotated[ListExamples, provide(ListExamples)],
    caller: PrincipalDep,
    filters: Annotated[ExampleFilters, Query()],
) -> ExamplePageOut:
    """One page of examples; a cursor this service did not issue answers 400 `invalid_cursor`.

    An owner key sees its own and the shared examples (filtering on another owner gives an empty page); an
    admin sees every example unless it filters. `owner_id` and `shared=true` together answer 422.
    """
    if filters.shared and filters.owner_id is not None:
        message = "owner_id and shared=true exclude each other"
        raise ApiProblem(422, "validation_error", f"{message}.", errors=[field_error("shared", message, "conflict")])
    visible = caller.visible_owner()
    if visible is not None and filters.owner_id not in (None, visible):
        return ExamplePageOut(items=[], next_cursor=None)
    owner_id = None if filters.shared else (visible if visible is not None else filters.owner_id)
    page = use_case.execute(
        ListExamplesQuery(owner_id=owner_id, shared_only=filters.shared, limit=filters.limit, cursor=filters.cursor)
    )
    return ExamplePageOut(items=[ExampleOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/{example_id}", summary="Read a labelled example", responses=problem_responses(404, 422, 503))
@owner_access
def get_example(
    example_id: UUID, use_case: Annotated[GetExample, provide(GetExample)], caller: PrincipalDep
) -> ExampleOut:
    """An example of the caller's bank or the shared one; another owner's is a 404."""
    return ExampleOut.model_validate(use_case.execute(GetExampleQuery(example_id, visible_to=caller.visible_owner())))


@router.delete(
    "/{example_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a labelled example",
    responses=problem_responses(404, 422, 503),
)
@owner_access
def delete_example(
    example_id: UUID, use_case: Annotated[DeleteExample, provide(DeleteExample)], caller: PrincipalDep
) -> Response:
    """Gone from the bank at once (the next prompts no longer show it). An owner key deletes only its own
    examples: another owner's, or a shared one, is a 404."""
    use_case.execute(DeleteExampleCommand(example_id, caller_owner_id=caller.visible_owner()))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
