"""The TriageJobLog entity: the audit record of one triage attempt."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from triage_pipeline.domain.statuses import AttemptOutcome

RAW_OUTPUT_MAX_LENGTH = 8_000


@dataclass(frozen=True, slots=True)
class TriageJobLog:
    """One attempt: which prompt and model, how long, how many tokens, and what came back."""

    id: UUID
    job_id: UUID
    ticket_id: UUID
    batch_id: UUID | None
    attempt: int
    outcome: AttemptOutcome
    prompt_id: UUID | None
    prompt_version: int | None
    model: str
    started_at: datetime
    finished_at: datetime
    latency_ms: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    raw_output: str | None = None
    answer: Mapping[str, Any] | None = None
    error_class: str | None = None
    error_message: str | None = None
    example_ids: tuple[UUID, ...] = ()
    """The examples the prompt was given, most similar first: why it answered what it did."""
    confidence: Mapping[str, Any] | None = None
    """How the stored confidence was computed (`confidence.settle_answer`'s log), for a stored answer."""
    llm_host: str | None = None
    """The LLM host (base URL) the call went to; None when no host was tried."""
