"""The heart of the product: triage one job (or many concurrently), auditing every attempt."""

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from triage_pipeline.domain.exceptions import NoActivePrompt, NotFound
from triage_pipeline.domain.llm_errors import LlmError
from triage_pipeline.domain.ports import Clock, LlmAnswer, LlmGateway, UnitOfWork, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, Prompt
from triage_pipeline.domain.statuses import AttemptOutcome
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_job import ERROR_MAX_LENGTH, TriageJob
from triage_pipeline.domain.triage_job_log import RAW_OUTPUT_MAX_LENGTH, TriageJobLog

logger = logging.getLogger(__name__)


class TriageOutcome(StrEnum):
    """What one call of the use case did."""

    DONE = "DONE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # already DONE, being worked on elsewhere, or out of attempts


@dataclass(frozen=True, slots=True)
class TriageJobCommand:
    """Triage one job; `prompt` lets a caller reuse one prompt version for many jobs."""

    job_id: UUID
    batch_id: UUID | None = None
    prompt: Prompt | None = None
    prompt_name: str = DEFAULT_PROMPT_NAME


@dataclass(frozen=True, slots=True)
class TriageResult:
    """The outcome of one job."""

    job_id: UUID
    outcome: TriageOutcome
    error_class: str | None = None
    category: str | None = None
    latency_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _Started:
    job: TriageJob
    ticket: Ticket
    prompt: Prompt | None
    started_at: datetime


class TriageOneJob:
    """Start the job, ask the LLM, then record DONE or FAILED with a log row, in one transaction."""

    def __init__(self, uow: UnitOfWorkFactory, llm: LlmGateway, clock: Clock) -> None:
        self._uow = uow
        self._llm = llm
        self._clock = clock

    def execute(self, command: TriageJobCommand) -> TriageResult:
        """Triage the job; never leaves it RUNNING unless the database itself fails."""
        started = self._start(command)
        if started is None:
            return TriageResult(command.job_id, TriageOutcome.SKIPPED)
        clock_start = time.monotonic()
        try:
            if started.prompt is None:
                raise NoActivePrompt(command.prompt_name)
            rendered = started.prompt.render(started.ticket.title, started.ticket.description)
            answer = self._llm.triage(rendered)
        except Exception as exc:  # every failure of the attempt is recorded, whatever it is
            latency_ms = int((time.monotonic() - clock_start) * 1000)
            self._record_failure(command, started, exc, latency_ms)
            return TriageResult(
                command.job_id, TriageOutcome.FAILED, error_class=_error_class(exc), latency_ms=latency_ms
            )
        latency_ms = int((time.monotonic() - clock_start) * 1000)
        self._record_success(command, started, answer, latency_ms)
        return TriageResult(command.job_id, TriageOutcome.DONE, category=answer.answer.category, latency_ms=latency_ms)

    def _start(self, command: TriageJobCommand) -> _Started | None:
        with self._uow() as uow:
            job = uow.jobs.get(command.job_id, for_update=True)
            if job is None:
                raise NotFound("triage job", command.job_id)
            if not job.is_eligible:
                logger.info(
                    "triage job skipped",
                    extra={"job_id": job.id, "fields": {"status": job.status, "attempts": job.attempts}},
                )
                return None
            ticket = uow.tickets.get(job.ticket_id)
            if ticket is None:
                raise NotFound("ticket", job.ticket_id)
            now = self._clock.now()
            job = job.start(now)
            ticket = ticket.start_triage(now)
            uow.jobs.update(job)
            uow.tickets.update(ticket)
            if command.batch_id is not None:
                uow.batches.set_item_status(command.batch_id, job.id, job.status, now)
            prompt = command.prompt or uow.prompts.active(command.prompt_name)
            uow.commit()
        return _Started(job=job, ticket=ticket, prompt=prompt, started_at=now)

    def _record_success(self, command: TriageJobCommand, started: _Started, answer: LlmAnswer, latency_ms: int) -> None:
        now = self._clock.now()
        with self._uow() as uow:
            job = started.job.complete(now)
            uow.jobs.update(job)
            uow.tickets.update(started.ticket.complete(answer.answer, now))
            self._follow(uow, command, job, now)
            uow.logs.add(
                replace(
                    self._log(command, started, now, latency_ms, AttemptOutcome.SUCCEEDED, model=answer.model),
                    prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens,
                    raw_output=answer.raw_output[:RAW_OUTPUT_MAX_LENGTH],
                    answer=answer.answer.as_dict(),
                )
            )
            uow.commit()
        logger.info(
            "triage job done",
            extra={"job_id": job.id, "ticket_id": job.ticket_id, "batch_id": command.batch_id},
        )

    def _record_failure(self, command: TriageJobCommand, started: _Started, exc: Exception, latency_ms: int) -> None:
        now = self._clock.now()
        message = f"{_error_class(exc)}: {exc}"
        raw = exc.raw_output if isinstance(exc, LlmError) else None
        with self._uow() as uow:
            job = started.job.fail(message, now)
            uow.jobs.update(job)
            uow.tickets.update(started.ticket.fail(now))
            self._follow(uow, command, job, now)
            uow.logs.add(
                replace(
                    self._log(command, started, now, latency_ms, AttemptOutcome.FAILED, model=self._llm.model),
                    raw_output=raw[:RAW_OUTPUT_MAX_LENGTH] if raw else None,
                    error_class=_error_class(exc),
                    error_message=str(exc)[:ERROR_MAX_LENGTH],
                )
            )
            uow.commit()
        level = logging.ERROR if not isinstance(exc, LlmError | NoActivePrompt) else logging.WARNING
        logger.log(
            level,
            "triage attempt failed",
            exc_info=level == logging.ERROR,
            extra={
                "job_id": job.id,
                "ticket_id": job.ticket_id,
                "batch_id": command.batch_id,
                "fields": {"error_class": _error_class(exc), "attempt": job.attempts},
            },
        )

    @staticmethod
    def _follow(uow: UnitOfWork, command: TriageJobCommand, job: TriageJob, now: datetime) -> None:
        if command.batch_id is not None:
            uow.batches.set_item_status(command.batch_id, job.id, job.status, now)

    @staticmethod
    def _log(
        command: TriageJobCommand,
        started: _Started,
        now: datetime,
        latency_ms: int,
        outcome: AttemptOutcome,
        *,
        model: str,
    ) -> TriageJobLog:
        return TriageJobLog(
            id=uuid4(),
            job_id=started.job.id,
            ticket_id=started.ticket.id,
            batch_id=command.batch_id,
            attempt=started.job.attempts,
            outcome=outcome,
            prompt_id=started.prompt.id if started.prompt else None,
            prompt_version=started.prompt.version if started.prompt else None,
            model=model,
            started_at=started.started_at,
            finished_at=now,
            latency_ms=latency_ms,
        )


def _error_class(exc: Exception) -> str:
    if isinstance(exc, LlmError):
        return exc.error_class
    if isinstance(exc, NoActivePrompt):
        return exc.code
    return "internal_error"


@dataclass(frozen=True, slots=True)
class TriageJobsCommand:
    """Triage several jobs of one batch with at most `concurrency` LLM calls at once."""

    job_ids: Sequence[UUID]
    batch_id: UUID | None = None
    concurrency: int = 16
    prompt_name: str = DEFAULT_PROMPT_NAME


class TriageJobs:
    """Fan a list of jobs out over a bounded thread pool, one prompt version for all of them."""

    def __init__(self, uow: UnitOfWorkFactory, triage_one: TriageOneJob) -> None:
        self._uow = uow
        self._triage_one = triage_one

    def execute(self, command: TriageJobsCommand) -> list[TriageResult]:
        """The result of every job, in input order."""
        if command.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        with self._uow() as uow:
            prompt = uow.prompts.active(command.prompt_name)

        def run(job_id: UUID) -> TriageResult:
            return self._triage_one.execute(
                TriageJobCommand(
                    job_id=job_id, batch_id=command.batch_id, prompt=prompt, prompt_name=command.prompt_name
                )
            )

        workers = min(command.concurrency, max(1, len(command.job_ids)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="triage") as pool:
            return list(pool.map(run, command.job_ids))
