"""RFC 9457 problem details, the body of every error response."""

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
