"""API keys (admin only): issue one, revoke one."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response, status

from api.dependencies import provide
from api.problems import ApiProblem, field_error, problem_responses
from api.schemas.api_key import ApiKeyCreate, ApiKeyOut, IssuedApiKeyOut
from triage_pipeline.application.api_keys import IssueApiKey, RevokeApiKey, RevokeApiKeyCommand
from triage_pipeline.domain.exceptions import NotFound

router = APIRouter(prefix="/api-keys", tags=["api keys"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key (shown once)",
    description=(
        "An admin key (`role: admin`) or a key of one owner (`role: owner` with `owner_id`). The key is in"
        " `api_key` of this response only; the service keeps a salted hash of it."
    ),
    responses=problem_responses(400, 413, 422, 503),
)
def issue_api_key(
    body: ApiKeyCreate, use_case: Annotated[IssueApiKey, provide(IssueApiKey)], response: Response
) -> IssuedApiKeyOut:
    """Issue a key; 422 `unknown_owner` for an owner that does not exist."""
    try:
        issued = use_case.execute(body.to_command())
    except NotFound as exc:
        if exc.entity != "owner":
            raise
        message = f"owner {body.owner_id} does not exist"
        raise ApiProblem(
            422, "unknown_owner", message, errors=[field_error("owner_id", message, "unknown_owner")]
        ) from exc
    response.headers["Location"] = f"/api-keys/{issued.key.id}"
    return IssuedApiKeyOut.from_issued(issued)


@router.delete(
    "/{key_id}",
    summary="Revoke an API key",
    description="The key stops authenticating at once; revoking a revoked key answers 409.",
    responses=problem_responses(404, 409, 422, 503),
)
def revoke_api_key(key_id: UUID, use_case: Annotated[RevokeApiKey, provide(RevokeApiKey)]) -> ApiKeyOut:
    """The revoked key."""
    return ApiKeyOut.model_validate(use_case.execute(RevokeApiKeyCommand(key_id)))
