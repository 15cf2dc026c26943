"""One triage attempt of a ticket, from its audit trail."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from triage_pipeline.domain.statuses import AttemptOutcome


class TriageAttemptOut(BaseModel):
    """Which prompt and model, how long, how many tokens, and what came back."""

    # `TriageAttemptOut.model_validate(log)` reads these attributes of a domain `TriageJobLog`.
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    outcome: AttemptOutcome
    prompt_version: int | None
    model: str
    latency_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    error_class: str | None
    error_message: str | None
    raw_output: str | None
    started_at: datetime
    finished_at: datetime
