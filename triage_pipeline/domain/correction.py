"""A human correction of a triage answer, kept beside the model's answer (never overwriting it)."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from triage_pipeline.domain.triage_answer import Priority

REASON_MAX_LENGTH = 2_000


@dataclass(frozen=True, slots=True)
class TriageCorrection:
    """What an agent says the category and priority should have been, and why."""

    id: UUID
    ticket_id: UUID
    category: str
    priority: Priority
    reason: str
    model_category: str | None
    model_priority: str | None
    prompt_version: int | None
    created_at: datetime
    corrected_by: str = ""
