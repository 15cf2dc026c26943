"""A human correction of a ticket's triage, as sent and as returned."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.text import NUL_FREE_PATTERN, STORABLE
from triage_pipeline.domain.correction import REASON_MAX_LENGTH
from triage_pipeline.domain.triage_answer import Priority


class CorrectionIn(BaseModel):
    """What an agent says the category and priority should be, and why."""

    model_config = ConfigDict(extra="forbid")

    category: Annotated[str, Field(min_length=1, max_length=64, description="One of the prompt's categories.")]
    priority: Priority
    reason: Annotated[
        str,
        Field(default="", max_length=REASON_MAX_LENGTH, json_schema_extra={"pattern": NUL_FREE_PATTERN}),
        STORABLE,
    ]
    corrected_by: Annotated[
        str, Field(default="", max_length=200, json_schema_extra={"pattern": NUL_FREE_PATTERN}), STORABLE
    ]


class CorrectionOut(BaseModel):
    """A stored correction, beside the model's answer."""

    # `CorrectionOut.model_validate(correction)` reads a domain `TriageCorrection`.
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    ticket_id: UUID
    category: str
    priority: Priority
    reason: str
    model_category: str | None
    model_priority: str | None
    prompt_version: int | None
    corrected_by: str
    created_at: datetime


class RetriageOut(BaseModel):
    """The requeued ticket and its new job."""

    ticket_id: UUID
    triage_status: str
    job_id: UUID
    job_status: str


class ReviewIn(BaseModel):
    """Who accepted the answer (optional; logged)."""

    model_config = ConfigDict(extra="forbid")

    reviewed_by: Annotated[
        str, Field(default="", max_length=200, json_schema_extra={"pattern": NUL_FREE_PATTERN}), STORABLE
    ]
