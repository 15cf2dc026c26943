"""RFC 9457 problem details, the body of every error response."""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.field_error import FieldError

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An error: RFC 9457 members plus a stable machine-readable `code` and the request id."""

    type: str = Field(description="URI identifying the problem type (stable per `code`).")
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="Human-readable explanation of this occurrence.")
    instance: str = Field(description="The request path this problem occurred on.")
    code: str = Field(description="Stable machine-readable error code, e.g. `not_found`, `duplicate_ticket`.")
    request_id: str | None = Field(default=None, description="The request id, also sent as `X-Request-ID`.")


class ValidationProblem(Problem):
    """A request that failed validation, with one entry per bad field."""

    errors: list[FieldError] = Field(description="Every field that failed validation.")


class DuplicateTicketProblem(Problem):
    """A ticket with the same (owner_id, external_id) exists; retrying is safe."""

    existing_id: UUID | None = Field(description="Id of the ticket that already exists.")


class GateComparison(BaseModel):
    """One figure of the promotion gate: the candidate's and the active version's latest evaluation on one file."""

    dataset: str = Field(description="The labelled file both versions were evaluated on.")
    dataset_sha256: str
    figure: Literal["category_accuracy", "priority_accuracy"]
    candidate: float = Field(description="The figure of the version asked to become active.")
    active: float = Field(description="The figure of the active version.")
    worse: bool = Field(description="True when the candidate is lower: this comparison refuses the promotion.")
    candidate_run: str = Field(description="Id of the candidate's evaluation run.")
    active_run: str = Field(description="Id of the active version's evaluation run.")


class PromotionRefusedProblem(Problem):
    """The version evaluated worse than the active one on a file both were evaluated on; `force=true` overrides
    (and the override is recorded)."""

    comparisons: list[GateComparison] = Field(description="Every figure compared, the refusing ones `worse`.")
