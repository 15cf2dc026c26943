"""One triage attempt of a ticket, from its audit trail."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

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
    example_ids: list[UUID] = Field(description="The labelled examples the prompt showed, most similar first.")
    confidence: dict[str, Any] | None = Field(
        description="How the stored answer's confidence was computed; null for an attempt without an answer."
    )
    llm_host: str | None = Field(
        default=None, description="The LLM host (base URL) the call went to; null when no host was tried."
    )
    started_at: datetime
    finished_at: datetime
