"""Owners (tenants): create one, read one."""

from uuid import UUID

from fastapi import APIRouter, Response, status

from api.dependencies import CreateOwnerDep, GetOwnerDep
from api.problems import problem_responses
from api.schemas.owner import OwnerCreate, OwnerOut
from triage_pipeline.application.owners import GetOwnerQuery

router = APIRouter(prefix="/owners", tags=["owners"])


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Create an owner", responses=problem_responses(400, 413, 422, 503)
)
def create_owner(body: OwnerCreate, use_case: CreateOwnerDep, response: Response) -> OwnerOut:
    """Create an owner."""
    owner = use_case.execute(body.to_command())
    response.headers["Location"] = f"/owners/{owner.id}"
    return OwnerOut.from_domain(owner)


@router.get("/{owner_id}", summary="Read an owner", responses=problem_responses(404, 422, 503))
def get_owner(owner_id: UUID, use_case: GetOwnerDep) -> OwnerOut:
    """The owner; 404 when unknown."""
    return OwnerOut.from_domain(use_case.execute(GetOwnerQuery(owner_id)))
