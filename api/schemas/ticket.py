"""A ticket as created by a client and as returned by the API."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AliasPath, BaseModel, ConfigDict, Field

from api.schemas.text import NO_CONTROL_CHARACTERS, NO_CONTROL_CHARACTERS_PATTERN, NUL_FREE_PATTERN, STORABLE
from triage_pipeline.application.intake import NewTicket
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.ticket import DESCRIPTION_MAX_LENGTH, EXTERNAL_ID_MAX_LENGTH, TITLE_MAX_LENGTH

Title = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TITLE_MAX_LENGTH,
        description=f"Subject line, 1 to {TITLE_MAX_LENGTH} characters, no NUL; stored verbatim.",
        json_schema_extra={"pattern": NUL_FREE_PATTERN},
    ),
    STORABLE,
]
Description = Annotated[
    str,
    Field(
        max_length=DESCRIPTION_MAX_LENGTH,
        description=f"Body of the ticket, up to {DESCRIPTION_MAX_LENGTH} characters, no NUL; stored verbatim.",
        json_schema_extra={"pattern": NUL_FREE_PATTERN},
    ),
    STORABLE,
]
ExternalId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=EXTERNAL_ID_MAX_LENGTH,
        description=(
            f"The ticket's id in the client's system, 1 to {EXTERNAL_ID_MAX_LENGTH} characters without control"
            " characters; unique per owner, which makes a create safe to retry."
        ),
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_PATTERN},
    ),
    STORABLE,
    NO_CONTROL_CHARACTERS,
]


class TicketCreate(BaseModel):
    """A ticket posted by a support tool; unknown fields are rejected."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Checkout fails with error 500",
                    "description": "Since this morning every payment attempt ends with an error page.",
                    "external_id": "ZD-48213",
                }
            ]
        },
    )

    title: Title
    description: Description
    external_id: ExternalId
    owner_id: UUID = Field(
        default=DEFAULT_OWNER_ID, description=f"The owning tenant; defaults to the default owner {DEFAULT_OWNER_ID}."
    )

    def to_command(self) -> NewTicket:
        """The use-case input."""
        return NewTicket(
            owner_id=self.owner_id, external_id=self.external_id, title=self.title, description=self.description
        )


class TicketOut(BaseModel):
    """A ticket as stored, with its triage status."""

    # `TicketOut.model_validate(ticket)` reads a domain `Ticket`; `triage_status` is its `status` (the alias is
    # for reading only: the JSON field stays `triage_status`, and the field can still be set by its name).
    model_config = ConfigDict(from_attributes=True, validate_by_name=True)

    id: UUID
    title: str
    description: str
    external_id: str
    owner_id: UUID
    triage_status: TicketStatus = Field(validation_alias="status")
    review_status: ReviewStatus | None = Field(
        default=None,
        description=(
            "Null until the ticket has an answer; then NEEDS_REVIEW (its confidence is below the prompt version's"
            " `review_threshold`), AUTO_APPLIED, or REVIEWED (a person accepted or corrected it)."
        ),
    )
    confidence: float | None = Field(
        default=None,
        validation_alias=AliasPath("answer", "confidence"),
        description="The confidence (0..1) of the ticket's triage answer; null until it has one.",
    )
    created_at: datetime = Field(description="ISO 8601 with UTC offset.")
    updated_at: datetime = Field(description="ISO 8601 with UTC offset.")
