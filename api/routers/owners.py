"""Owners (tenants): create one with its first API key (admin), read one (admin, or the owner's own key)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response, status

from api.dependencies import provide
from api.problems import problem_responses
from api.schemas.api_key import OwnerCreated
from api.schemas.owner import OwnerCreate, OwnerOut
from api.security import PrincipalDep, owner_access
from triage_pipeline.application.api_keys import RegisterOwner, RegisterOwnerCommand
from triage_pipeline.application.owners import GetOwner, GetOwnerQuery
from triage_pipeline.domain.exceptions import NotFound

router = APIRouter(prefix="/owners", tags=["owners"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an owner and its first API key (admin)",
    description=(
        "Creates the owner and an owner key in one transaction. The key is in `api_key` of this response only;"
        " issue more with `POST /api-keys`."
    ),
    responses=problem_responses(400, 413, 422, 503),
)
def create_owner(
    body: OwnerCreate, use_case: Annotated[RegisterOwner, provide(RegisterOwner)], response: Response
) -> OwnerCreated:
    """Create an owner with its key."""
    registered = use_case.execute(RegisterOwnerCommand(name=body.name))
    response.headers["Location"] = f"/owners/{registered.owner.id}"
    return OwnerCreated.from_registered(registered)


@router.get("/{owner_id}", summary="Read an owner", responses=problem_responses(404, 422, 503))
@owner_access
def get_owner(owner_id: UUID, use_case: Annotated[GetOwner, provide(GetOwner)], caller: PrincipalDep) -> OwnerOut:
    """The owner; 404 when unknown, or when an owner key asks for another owner."""
    if not caller.may_act_for(owner_id):
        raise NotFound("owner", owner_id)
    return OwnerOut.model_validate(use_case.execute(GetOwnerQuery(owner_id)))
