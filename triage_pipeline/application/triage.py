"""The heart of the product: triage one job (or many concurrently), auditing every attempt.

Every attempt goes PENDING | FAILED -> RUNNING (one transaction, before the LLM is asked) and then
RUNNING -> DONE | FAILED together with its ticket, its batch item and its log row (one transaction),
the latter only while the job is still RUNNING in that same attempt (a worker that outlived its lease
finds the attempt already failed by the recovery and records nothing). Many jobs (`TriageJobs`) keep
exactly that, but a coordinating thread does the database work for the whole group: each of its
transactions records the attempts that just ended and starts as many jobs as there are free LLM slots,
with a constant number of statements however many jobs it holds. The LLM calls run in a bounded pool of
threads that never touch the database.
"""

import logging
import math
import queue
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from triage_pipeline.domain.exceptions import NoActivePrompt, NotFound
from triage_pipeline.domain.llm_errors import LlmError
from triage_pipeline.domain.ports import Clock, LlmAnswer, LlmGateway, UnitOfWork, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, Prompt
from triage_pipeline.domain.statuses import AttemptOutcome, TriageJobStatus
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
    """A job moved to RUNNING (committed), with the ticket and prompt of its attempt."""

    job: TriageJob
    ticket: Ticket
    prompt: Prompt | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What asking the LLM gave for one started job: an answer, or the exception that is the failure."""

    started: _Started
    answer: LlmAnswer | None
    error: Exception | None
    latency_ms: int
    prompt_name: str = DEFAULT_PROMPT_NAME

    @property
    def result(self) -> TriageResult:
        """The use case's result for this attempt."""
        job_id = self.started.job.id
        if self.error is not None:
            return TriageResult(
                job_id, TriageOutcome.FAILED, error_class=error_class_of(self.error), latency_ms=self.latency_ms
            )
        assert self.answer is not None
        return TriageResult(
            job_id, TriageOutcome.DONE, category=self.answer.answer.category, latency_ms=self.latency_ms
        )


@dataclass(slots=True)
class _Changes:
    """The rows one transaction writes; each kind is written with one statement, whatever the count."""

    jobs: list[TriageJob] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    logs: list[TriageJobLog] = field(default_factory=list)

    def write(self, uow: UnitOfWork, batch_id: UUID | None, now: datetime) -> None:
        """Save the jobs and tickets, make the batch items follow their jobs, add the logs."""
        uow.jobs.update_many(self.jobs)
        uow.tickets.update_many(self.tickets)
        if batch_id is not None:
            uow.batches.set_items_status(batch_id, [(job.id, job.status) for job in self.jobs], now)
        uow.logs.add_many(self.logs)


class TriageOneJob:
    """Start the job, ask the LLM, then record DONE or FAILED with a log row, in one transaction.

    The rules of an attempt live here, for one job or a group of them: `TriageJobs` uses the same
    `_start`, `_ask` and `_record` on groups.
    """

    def __init__(self, uow: UnitOfWorkFactory, llm: LlmGateway, clock: Clock) -> None:
        self._uow = uow
        self._llm = llm
        self._clock = clock

    def execute(self, command: TriageJobCommand) -> TriageResult:
        """Triage the job; never leaves it RUNNING unless the database itself fails."""
        with self._uow() as uow:
            now = self._clock.now()
            changes = _Changes()
            started = self._start([command.job_id], now, changes, self._lock(uow, [command.job_id]))
            if not started:
                return TriageResult(command.job_id, TriageOutcome.SKIPPED)
            changes.write(uow, command.batch_id, now)
            prompt = command.prompt or uow.prompts.active(command.prompt_name)
            uow.commit()
        job, ticket = started[0]
        attempt = self._ask(_Started(job=job, ticket=ticket, prompt=prompt, started_at=now), command.prompt_name)
        return self._record_alone(attempt, command.batch_id)

    def _ask(self, started: _Started, prompt_name: str) -> _Attempt:
        """Render the prompt and ask the LLM; any exception is the attempt's failure, never raised."""
        clock_start = time.monotonic()
        try:
            if started.prompt is None:
                raise NoActivePrompt(prompt_name)
            rendered = started.prompt.render(started.ticket.title, started.ticket.description)
            answer = self._llm.triage(rendered)
        except Exception as exc:  # every failure of the attempt is recorded, whatever it is
            return _Attempt(started, None, exc, int((time.monotonic() - clock_start) * 1000), prompt_name)
        return _Attempt(started, answer, None, int((time.monotonic() - clock_start) * 1000), prompt_name)

    @staticmethod
    def _lock(uow: UnitOfWork, job_ids: Sequence[UUID]) -> dict[UUID, tuple[TriageJob, Ticket]]:
        """The current jobs (rows locked until the transaction ends) with their tickets, in one statement."""
        return {job.id: (job, ticket) for job, ticket in uow.jobs.get_many_with_tickets(job_ids, for_update=True)}

    def _start(
        self,
        job_ids: Sequence[UUID],
        now: datetime,
        changes: _Changes,
        found: dict[UUID, tuple[TriageJob, Ticket]],
    ) -> list[tuple[TriageJob, Ticket]]:
        """Start the eligible jobs (locked in `found`) and their tickets, in `changes`; in `job_ids` order.

        NotFound for an unknown job; a job that is not eligible (or repeated) is skipped.
        """
        eligible: list[tuple[TriageJob, Ticket]] = []
        seen: set[UUID] = set()
        for job_id in job_ids:
            pair = found.get(job_id)
            if pair is None:
                raise NotFound("triage job", job_id)
            job = pair[0]
            if job_id in seen:
                logger.info("triage job skipped", extra={"job_id": job_id, "fields": {"repeated": True}})
                continue
            seen.add(job_id)
            if not job.is_eligible:
                logger.info(
                    "triage job skipped",
                    extra={"job_id": job.id, "fields": {"status": job.status, "attempts": job.attempts}},
                )
                continue
            eligible.append(pair)
        started = [(job.start(now), ticket.start_triage(now)) for job, ticket in eligible]
        changes.jobs.extend(job for job, _ in started)
        changes.tickets.extend(ticket for _, ticket in started)
        return started

    def _record(
        self,
        attempt: _Attempt,
        batch_id: UUID | None,
        now: datetime,
        changes: _Changes,
        found: dict[UUID, tuple[TriageJob, Ticket]],
    ) -> bool:
        """DONE with the answer, or FAILED with the reason; either way one log row (in `changes`).

        Only while the job (locked in `found`) is still RUNNING in this very attempt: a worker that
        outlived its lease finds its attempt already failed by the recovery (with its log), maybe a
        newer attempt under way or done, and records nothing (False).
        """
        started = attempt.started
        job, ticket = found.get(started.job.id, (None, None))
        if (
            job is None
            or ticket is None
            or job.status is not TriageJobStatus.RUNNING
            or job.attempts != started.job.attempts
        ):
            logger.warning(
                "triage attempt outlived its lease; its result is dropped",
                extra={
                    "job_id": started.job.id,
                    "batch_id": batch_id,
                    "fields": {
                        "attempt": started.job.attempts,
                        "status_now": job.status if job else None,
                        "attempts_now": job.attempts if job else None,
                    },
                },
            )
            return False
        if attempt.error is None:
            assert attempt.answer is not None
            answer = attempt.answer
            changes.jobs.append(job.complete(now))
            changes.tickets.append(ticket.complete(answer.answer, now))
            changes.logs.append(
                self._log(
                    attempt,
                    batch_id,
                    now,
                    AttemptOutcome.SUCCEEDED,
                    model=answer.model,
                    prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens,
                    raw_output=answer.raw_output[:RAW_OUTPUT_MAX_LENGTH],
                    answer=answer.answer.as_dict(),
                )
            )
            return True
        exc = attempt.error
        raw = exc.raw_output if isinstance(exc, LlmError) else None
        changes.jobs.append(job.fail(f"{error_class_of(exc)}: {exc}", now))
        changes.tickets.append(ticket.fail(now))
        changes.logs.append(
            self._log(
                attempt,
                batch_id,
                now,
                AttemptOutcome.FAILED,
                model=self._llm.model,
                raw_output=raw[:RAW_OUTPUT_MAX_LENGTH] if raw else None,
                error_class=error_class_of(exc),
                error_message=str(exc)[:ERROR_MAX_LENGTH],
            )
        )
        return True

    def _record_alone(self, attempt: _Attempt, batch_id: UUID | None) -> TriageResult:
        """Record one attempt in its own transaction.

        An answer that cannot be stored (say the database rejects a value) is recorded as a failure
        of the attempt instead, so the job is not left RUNNING; only a failing database raises. An
        attempt that outlived its lease is not recorded (SKIPPED).
        """
        try:
            recorded = self._commit_record(attempt, batch_id)
        except Exception as exc:
            if attempt.error is not None:
                raise
            logger.exception("could not store a triage answer", extra={"job_id": attempt.started.job.id})
            attempt = _Attempt(attempt.started, None, exc, attempt.latency_ms, attempt.prompt_name)
            recorded = self._commit_record(attempt, batch_id)
        if not recorded:
            return TriageResult(attempt.started.job.id, TriageOutcome.SKIPPED)
        self._report(attempt, batch_id)
        return attempt.result

    def _commit_record(self, attempt: _Attempt, batch_id: UUID | None) -> bool:
        with self._uow() as uow:
            now = self._clock.now()
            changes = _Changes()
            if not self._record(attempt, batch_id, now, changes, self._lock(uow, [attempt.started.job.id])):
                return False
            changes.write(uow, batch_id, now)
            uow.commit()
        return True

    @staticmethod
    def _report(attempt: _Attempt, batch_id: UUID | None) -> None:
        """Log the recorded outcome of an attempt."""
        job = attempt.started.job
        exc = attempt.error
        if exc is None:
            logger.info(
                "triage job done",
                extra={"job_id": job.id, "ticket_id": job.ticket_id, "batch_id": batch_id},
            )
            return
        level = logging.ERROR if not isinstance(exc, LlmError | NoActivePrompt) else logging.WARNING
        logger.log(
            level,
            "triage attempt failed",
            exc_info=exc if level == logging.ERROR else None,
            extra={
                "job_id": job.id,
                "ticket_id": job.ticket_id,
                "batch_id": batch_id,
                "fields": {"error_class": error_class_of(exc), "attempt": job.attempts},
            },
        )

    @staticmethod
    def _log(
        attempt: _Attempt,
        batch_id: UUID | None,
        now: datetime,
        outcome: AttemptOutcome,
        *,
        model: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        raw_output: str | None = None,
        answer: dict[str, object] | None = None,
        error_class: str | None = None,
        error_message: str | None = None,
    ) -> TriageJobLog:
        started = attempt.started
        return TriageJobLog(
            id=uuid4(),
            job_id=started.job.id,
            ticket_id=started.ticket.id,
            batch_id=batch_id,
            attempt=started.job.attempts,
            outcome=outcome,
            prompt_id=started.prompt.id if started.prompt else None,
            prompt_version=started.prompt.version if started.prompt else None,
            model=model,
            started_at=started.started_at,
            finished_at=now,
            latency_ms=attempt.latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            raw_output=raw_output,
            answer=answer,
            error_class=error_class,
            error_message=error_message,
        )


def error_class_of(exc: Exception) -> str:
    """The error class an attempt's failure is recorded under."""
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
    """Triage a list of jobs with at most `concurrency` LLM calls in flight, one prompt version for all.

    One coordinating thread (the caller's) owns the database work: each of its transactions records the
    attempts that ended since the last one and starts as many jobs as there are free LLM slots, so jobs
    start just before their LLM call (their lease runs from there) and a job is DONE exactly when its
    log and its ticket's answer commit. When such a grouped transaction fails, its attempts are recorded
    and its jobs started one by one, so one bad row never holds the others back; errors are raised once
    every job of the list has been dealt with, as a thread pool would.
    """

    def __init__(self, uow: UnitOfWorkFactory, triage_one: TriageOneJob) -> None:
        self._uow = uow
        self._one = triage_one

    def execute(self, command: TriageJobsCommand) -> list[TriageResult]:
        """The result of every job, in input order."""
        if command.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not command.job_ids:
            return []
        with self._uow() as uow:
            prompt = uow.prompts.active(command.prompt_name)
        return _Coordinator(self._one, command, prompt).run()


# Jobs started ahead of a free LLM slot, as a fraction of the concurrency: a slot whose call ends takes
# the next started job at once instead of waiting for the coordinator's next transaction, so the
# database's latency (a few round trips per transaction, more on a busy machine) does not idle the slots.
# Such a job is RUNNING a little before its call: at most this fraction of one LLM latency on average.
START_AHEAD = 0.5


class _Coordinator:
    """The loop of one `TriageJobs.execute`: group transactions in this thread, LLM calls in a pool.

    At most `concurrency` calls are in flight (one per pool thread) and at most `concurrency x
    (1 + START_AHEAD)` jobs of the list are RUNNING at once.
    """

    def __init__(self, one: TriageOneJob, command: TriageJobsCommand, prompt: Prompt | None) -> None:
        self._one = one
        self._command = command
        self._prompt = prompt
        self._job_ids = list(command.job_ids)
        self._results: list[TriageResult | None] = [None] * len(self._job_ids)
        self._errors: list[Exception] = []
        self._ready: queue.SimpleQueue[tuple[int, _Started] | None] = queue.SimpleQueue()
        self._finished: queue.SimpleQueue[tuple[int, _Attempt]] = queue.SimpleQueue()

    def run(self) -> list[TriageResult]:
        limit = min(self._command.concurrency, len(self._job_ids))
        most_running = limit + math.ceil(limit * START_AHEAD)
        pending = deque(range(len(self._job_ids)))
        running = 0  # started and not yet recorded: waiting for a slot, being asked, or just ended
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="triage") as pool:
            for _ in range(limit):
                pool.submit(self._work)
            try:
                while pending or running:
                    ended: list[tuple[int, _Attempt]] = []
                    if running and (running >= most_running or not pending):
                        ended.append(self._finished.get())
                    while True:
                        try:
                            ended.append(self._finished.get_nowait())
                        except queue.Empty:
                            break
                    running -= len(ended)
                    to_start = [pending.popleft() for _ in range(min(most_running - running, len(pending)))]
                    for item in self._step(ended, to_start):
                        self._ready.put(item)
                        running += 1
            finally:
                for _ in range(limit):
                    self._ready.put(None)  # after the started jobs: each thread asks those, then stops
        if self._errors:
            raise self._errors[0]
        missing = [self._job_ids[i] for i, result in enumerate(self._results) if result is None]
        if missing:  # never drop a job silently
            raise RuntimeError(f"no result for triage jobs {missing[:10]}")
        return [result for result in self._results if result is not None]

    def _work(self) -> None:
        """A pool thread: ask the LLM about started jobs, one at a time, until told to stop."""
        while (item := self._ready.get()) is not None:
            position, started = item
            try:
                attempt = self._one._ask(started, self._command.prompt_name)
            except BaseException as exc:  # `_ask` catches every Exception; this is a last resort
                failure = exc if isinstance(exc, Exception) else RuntimeError(f"LLM call interrupted: {exc!r}")
                self._finished.put((position, _Attempt(started, None, failure, 0, self._command.prompt_name)))
                raise
            self._finished.put((position, attempt))

    def _step(self, ended: list[tuple[int, _Attempt]], to_start: list[int]) -> list[tuple[int, _Started]]:
        """One transaction: record the ended attempts, start the jobs at these positions."""
        batch_id = self._command.batch_id
        try:
            with self._one._uow() as uow:
                now = self._one._clock.now()
                new_ids = [self._job_ids[p] for p in to_start]
                # One locking read: the jobs whose attempts ended (still RUNNING in that attempt?) and those to start.
                found = self._one._lock(uow, [attempt.started.job.id for _, attempt in ended] + new_ids)
                changes = _Changes()
                recorded = [self._one._record(attempt, batch_id, now, changes, found) for _, attempt in ended]
                started = self._one._start(new_ids, now, changes, found)
                changes.write(uow, batch_id, now)
                uow.commit()
        except Exception:
            logger.warning("a grouped triage transaction failed; retrying its jobs one by one", exc_info=True)
            return self._step_one_by_one(ended, to_start)
        for (position, attempt), done in zip(ended, recorded, strict=True):
            if done:
                self._one._report(attempt, batch_id)
                self._results[position] = attempt.result
            else:
                self._results[position] = TriageResult(attempt.started.job.id, TriageOutcome.SKIPPED)
        return self._positions(to_start, started, now)

    def _positions(
        self, to_start: list[int], started: list[tuple[TriageJob, Ticket]], now: datetime
    ) -> list[tuple[int, _Started]]:
        """Pair started jobs with their positions; the other positions are SKIPPED."""
        by_id = {job.id: (job, ticket) for job, ticket in started}
        runs: list[tuple[int, _Started]] = []
        for position in to_start:
            job_id = self._job_ids[position]
            pair = by_id.pop(job_id, None)
            if pair is None:
                self._results[position] = TriageResult(job_id, TriageOutcome.SKIPPED)
            else:
                runs.append((position, _Started(pair[0], pair[1], self._prompt, now)))
        return runs

    def _step_one_by_one(self, ended: list[tuple[int, _Attempt]], to_start: list[int]) -> list[tuple[int, _Started]]:
        batch_id = self._command.batch_id
        for position, attempt in ended:
            try:
                self._results[position] = self._one._record_alone(attempt, batch_id)
            except Exception as exc:  # the database itself fails: the job stays RUNNING until its lease ends
                self._errors.append(exc)
        runs: list[tuple[int, _Started]] = []
        for position in to_start:
            try:
                with self._one._uow() as uow:
                    now = self._one._clock.now()
                    changes = _Changes()
                    job_id = self._job_ids[position]
                    started = self._one._start([job_id], now, changes, self._one._lock(uow, [job_id]))
                    changes.write(uow, batch_id, now)
                    uow.commit()
            except Exception as exc:
                self._errors.append(exc)
                continue
            runs.extend(self._positions([position], started, now))
        return runs
