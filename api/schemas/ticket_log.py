"""One triage attempt of a ticket, from its audit trail."""

from datetime import datetime
from typing import Self

from pydantic import BaseModel

from triage_pipeline.domain.statuses import AttemptOutcome
from triage_pipeline.domain.triage_job_log import TriageJobLog


class TriageAttemptOut(BaseModel):
    """Which prompt and model, how long, how many tokens, and what came back."""

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

    @classmethod
    def from_domain(cls, log: TriageJobLog) -> Self:
        """The DTO of a domain log row."""
        return cls(
            attempt=log.attempt,
            outcome=log.outcome,
            prompt_version=log.prompt_version,
            model=log.model,
            latency_ms=log.latency_ms,
            prompt_tokens=log.prompt_tokens,
            completion_tokens=log.completion_tokens,
            error_class=log.error_class,
            error_message=log.error_message,
            raw_output=log.raw_output,
            started_at=log.started_at,
            finished_at=log.finished_at,
        )
