"""Triage one job: start it, ask the LLM, record the outcome, each database step its own transaction."""

from dataclasses import dataclass
from uuid import UUID

from triage_pipeline.application.triage.attempts import TriageAttempts, TriageOutcome, TriageResult
from triage_pipeline.domain.ports import Clock, LlmGateway, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, Prompt


@dataclass(frozen=True, slots=True)
class TriageJobCommand:
    """Triage one job; `prompt` lets a caller reuse one prompt version for many jobs."""

    job_id: UUID
    batch_id: UUID | None = None
    prompt: Prompt | None = None
    prompt_name: str = DEFAULT_PROMPT_NAME


class TriageOneJob:
    """Start the job, ask the LLM, then record DONE or FAILED with a log row, in one transaction.

    `attempts` holds the rules of an attempt; `TriageJobs` uses the same ones on groups of jobs.
    """

    def __init__(self, uow: UnitOfWorkFactory, llm: LlmGateway, clock: Clock) -> None:
        self.attempts = TriageAttempts(uow, llm, clock)

    def execute(self, command: TriageJobCommand) -> TriageResult:
        """Triage the job; never leaves it RUNNING unless the database itself fails."""
        with self.attempts.transaction(command.batch_id, [command.job_id]) as tx:
            prompt = command.prompt or tx.uow.prompts.active(command.prompt_name)
            calibration = tx.uow.evaluations.latest_calibration(prompt.id, self.attempts.model) if prompt else None
            started = tx.start([command.job_id], prompt, calibration)
            if not started:
                return TriageResult(command.job_id, TriageOutcome.SKIPPED)
            tx.commit()
        attempt = self.attempts.ask(started[0], command.prompt_name)
        return self.attempts.record_alone(attempt, command.batch_id)
