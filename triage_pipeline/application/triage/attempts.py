"""The rules of a triage attempt, for one job or for many in one transaction.

An attempt starts (PENDING | FAILED -> RUNNING, committed before the LLM is asked), asks the LLM, and is
recorded (RUNNING -> DONE | FAILED together with its ticket, its batch item and its log row) only while
the job is still RUNNING in that same attempt: a worker that outlived its lease finds the attempt already
failed by the recovery and records nothing. A failed job is tried again while `TriageJob.is_eligible`
says so (the domain's rule), by a later start.

`TriageOneJob` and `TriageJobs` both go through `TriageAttempts`: they decide what each transaction holds
and the rules here decide what starting and recording mean.
"""

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from triage_pipeline.application.recovery import fail_presumed_dead
from triage_pipeline.domain.calibration import CalibrationMap
from triage_pipeline.domain.confidence import SettledAnswer, settle_answer
from triage_pipeline.domain.example import TriageExample
from triage_pipeline.domain.example_classifier import BankOpinion
from triage_pipeline.domain.exceptions import NoActivePrompt, NotFound
from triage_pipeline.domain.llm_errors import LlmError, LlmUnreached
from triage_pipeline.domain.ports import Clock, ExampleQuery, LlmAnswer, LlmGateway, UnitOfWork, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, Prompt
from triage_pipeline.domain.statuses import AttemptOutcome, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_job import ERROR_MAX_LENGTH, TriageJob
from triage_pipeline.domain.triage_job_log import RAW_OUTPUT_MAX_LENGTH, TriageJobLog
from triage_pipeline.domain.webhook import WebhookEvent, triage_failed_event, triaged_events

logger = logging.getLogger(__name__)


class TriageOutcome(StrEnum):
    """What triaging one job did."""

    DONE = "DONE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # already DONE, being worked on elsewhere, or out of attempts


@dataclass(frozen=True, slots=True)
class TriageResult:
    job_id: UUID
    outcome: TriageOutcome
    error_class: str | None = None
    category: str | None = None
    latency_ms: int | None = None


def error_class_of(exc: Exception) -> str:
    """The error class an attempt's failure is recorded under."""
    if isinstance(exc, LlmError):
        return exc.error_class
    if isinstance(exc, NoActivePrompt):
        return exc.code
    return "internal_error"


@dataclass(frozen=True, slots=True)
class Started:
    """A job moved to RUNNING (committed), with the ticket, prompt and examples of its attempt."""

    job: TriageJob
    ticket: Ticket
    prompt: Prompt | None
    started_at: datetime
    examples: tuple[TriageExample, ...] = ()
    """The most similar labelled examples, most similar first: the prompt shows its `few_shot_k` first ones,
    all of them vote (`Prompt.neighbours_to_retrieve`)."""
    calibration: CalibrationMap | None = None
    """The prompt version's calibration (from its latest evaluation), if it has one."""
    bank: BankOpinion = field(default_factory=BankOpinion)
    """What the example bank's classifier says of the ticket (nothing when the prompt retrieves no examples)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What asking the LLM gave for one started job: an answer, or the exception that is the failure."""

    started: Started
    answer: LlmAnswer | None
    error: Exception | None
    latency_ms: int
    prompt_name: str = DEFAULT_PROMPT_NAME

    @property
    def result(self) -> TriageResult:
        """The result of this attempt once recorded."""
        job_id = self.started.job.id
        if self.error is not None:
            return TriageResult(
                job_id, TriageOutcome.FAILED, error_class=error_class_of(self.error), latency_ms=self.latency_ms
            )
        assert self.answer is not None
        return TriageResult(
            job_id, TriageOutcome.DONE, category=self.answer.answer.category, latency_ms=self.latency_ms
        )


def result_of(attempt: Attempt, recorded: bool, batch_id: UUID | None) -> TriageResult:
    """The result of an attempt whose transaction committed: SKIPPED unless recorded; a recorded one is logged."""
    if not recorded:
        return TriageResult(attempt.started.job.id, TriageOutcome.SKIPPED)
    _report(attempt, batch_id)
    return attempt.result


class TriageAttempts:
    """Starts, asks and records attempts; the database work goes through `transaction`."""

    def __init__(self, uow: UnitOfWorkFactory, llm: LlmGateway, clock: Clock) -> None:
        self._uow = uow
        self._llm = llm
        self._clock = clock

    @property
    def model(self) -> str:
        """The model that answers: only its own evaluations' calibration applies to it."""
        return self._llm.model

    @contextmanager
    def transaction(self, batch_id: UUID | None, job_ids: Sequence[UUID]) -> Iterator["AttemptsTransaction"]:
        """A transaction on these jobs (their rows locked, with their tickets, in one read).

        Nothing is stored unless `commit()` is called inside the block.
        """
        with self._uow() as uow:
            yield AttemptsTransaction(uow, self._llm, batch_id, self._clock.now(), job_ids)

    def ask(self, started: Started, prompt_name: str) -> Attempt:
        """Render the prompt and ask the LLM; any exception is the attempt's failure, never raised.

        Touches no database, so it may run in any thread.
        """
        clock_start = time.monotonic()
        try:
            if started.prompt is None:
                raise NoActivePrompt(prompt_name)
            rendered = started.prompt.render(started.ticket.title, started.ticket.description, started.examples)
            answer = self._llm.triage(rendered)
        except Exception as exc:  # every failure of the attempt is recorded, whatever it is
            return Attempt(started, None, exc, int((time.monotonic() - clock_start) * 1000), prompt_name)
        return Attempt(started, answer, None, int((time.monotonic() - clock_start) * 1000), prompt_name)

    def heartbeat(self, attempts: Sequence[tuple[UUID, int]]) -> None:
        """Renew the heartbeat of these (job, attempt) pairs still RUNNING in that attempt, in a transaction."""
        with self._uow() as uow:
            uow.jobs.heartbeat(attempts, self._clock.now())
            uow.commit()

    def fail_dead(self, job_ids: Sequence[UUID], lease: timedelta, heartbeat_timeout: timedelta) -> list[UUID]:
        """Fail the attempts of those of these jobs whose worker is presumed dead; their ids."""
        return list(fail_presumed_dead(self._uow, self._clock.now(), lease, heartbeat_timeout, job_ids))

    def record_alone(self, attempt: Attempt, batch_id: UUID | None) -> TriageResult:
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
            attempt = Attempt(attempt.started, None, exc, attempt.latency_ms, attempt.prompt_name)
            recorded = self._commit_record(attempt, batch_id)
        return result_of(attempt, recorded, batch_id)

    def _commit_record(self, attempt: Attempt, batch_id: UUID | None) -> bool:
        with self.transaction(batch_id, [attempt.started.job.id]) as tx:
            if not tx.record(attempt):
                return False
            tx.commit()
        return True


@dataclass(slots=True)
class _Changes:
    """The rows one transaction writes; each kind is written with one statement, whatever the count."""

    jobs: list[TriageJob] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    logs: list[TriageJobLog] = field(default_factory=list)
    events: list[WebhookEvent] = field(default_factory=list)


class AttemptsTransaction:
    """Starts and records attempts of the locked jobs; `write` stores them in one statement per table.

    Every change is stamped `now`, the moment the transaction began.
    """

    def __init__(
        self, uow: UnitOfWork, llm: LlmGateway, batch_id: UUID | None, now: datetime, job_ids: Sequence[UUID]
    ) -> None:
        self.uow = uow
        self.now = now
        self._llm = llm
        self._batch_id = batch_id
        # The one locking read: rows locked until the transaction ends, in id order (no deadlock).
        locked = uow.jobs.get_many_with_tickets(job_ids, for_update=True)
        self._found = {job.id: (job, ticket) for job, ticket in locked}
        self._changes = _Changes()

    def start(
        self,
        job_ids: Sequence[UUID],
        prompt: Prompt | None,
        calibration: CalibrationMap | None = None,
        *,
        retrieve: bool = True,
        heartbeat: bool = False,
    ) -> list[Started]:
        """Start the eligible jobs and their tickets, in `job_ids` order, each with the examples `prompt`
        asks for (its owner's and shared ones, in one statement for all) and, when the prompt settles with the
        example bank, what its classifier says of each (two more reads for all). `retrieve=False` (the caller knows
        there is no example at all) skips that statement: it could only find none. `heartbeat=True`: the
        caller renews the jobs' heartbeat while they run (`TriageAttempts.heartbeat`).

        NotFound for an unknown job (or one the transaction was not opened on); a job that is not eligible
        (or repeated) is skipped.
        """
        eligible: list[tuple[TriageJob, Ticket]] = []
        seen: set[UUID] = set()
        for job_id in job_ids:
            pair = self._found.get(job_id)
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
        started = [
            (job.start(self.now, heartbeat=heartbeat), ticket.start_triage(self.now)) for job, ticket in eligible
        ]
        self._changes.jobs.extend(job for job, _ in started)
        self._changes.tickets.extend(ticket for _, ticket in started)
        tickets = [ticket for _, ticket in started]
        examples, banks = self._examples(tickets, prompt) if retrieve else ({}, {})
        return [
            Started(
                job,
                ticket,
                prompt,
                self.now,
                tuple(examples.get(ticket.id, ())),
                calibration,
                banks.get(ticket.id, BankOpinion()),
            )
            for job, ticket in started
        ]

    def _examples(
        self, tickets: Sequence[Ticket], prompt: Prompt | None
    ) -> tuple[dict[UUID, list[TriageExample]], dict[UUID, BankOpinion]]:
        if prompt is None or prompt.neighbours_to_retrieve <= 0 or not tickets:
            return {}, {}
        queries = [ExampleQuery(t.id, t.owner_id, t.title, t.description) for t in tickets]
        # A ticket may be shown its own example (a corrected ticket triaged again): that label is a person's.
        nearest = self.uow.examples.nearest(
            queries, prompt.neighbours_to_retrieve, prompt.categories, exclude_same_text=False
        )
        if not prompt.example_bank:
            return nearest, {}
        counts = self.uow.examples.bank_counts(queries, exclude_same_text=False)
        # A ticket without neighbours has no vote for the bank to stand beside: its model's answer stands.
        banks = {
            t.id: BankOpinion.of(counts[t.id], prompt.categories)
            for t in tickets
            if t.id in counts and nearest.get(t.id)
        }
        return nearest, banks

    def record(self, attempt: Attempt) -> bool:
        """DONE with the answer, or FAILED with the reason; either way one log row.

        Only while the job (locked) is still RUNNING in this very attempt: a worker that outlived its
        lease finds its attempt already failed by the recovery (with its log), maybe a newer attempt
        under way or done, and records nothing (False).
        """
        started = attempt.started
        job, ticket = self._found.get(started.job.id, (None, None))
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
                    "batch_id": self._batch_id,
                    "fields": {
                        "attempt": started.job.attempts,
                        "status_now": job.status if job else None,
                        "attempts_now": job.attempts if job else None,
                    },
                },
            )
            return False
        now = self.now
        changes = self._changes
        if attempt.error is None:
            assert attempt.answer is not None
            answer = attempt.answer
            settled = settle(attempt)
            completed_job = job.complete(now)
            completed = ticket.complete(settled.answer, now, settled.review_status)
            changes.jobs.append(completed_job)
            changes.tickets.append(completed)
            changes.events.extend(
                triaged_events(
                    completed,
                    completed_job,
                    batch_id=self._batch_id,
                    prompt_version=started.prompt.version if started.prompt else None,
                    model=answer.model,
                    now=now,
                )
            )
            changes.logs.append(
                _log(
                    attempt,
                    self._batch_id,
                    now,
                    AttemptOutcome.SUCCEEDED,
                    model=answer.model,
                    prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens,
                    raw_output=answer.raw_output[:RAW_OUTPUT_MAX_LENGTH],
                    answer=settled.answer.as_dict(),
                    confidence={**settled.log, "review_status": settled.review_status.value},
                    llm_host=answer.host,
                )
            )
            return True
        exc = attempt.error
        raw = exc.raw_output if isinstance(exc, LlmError) else None
        reason = f"{error_class_of(exc)}: {exc}"
        # A request that reached no model leaves the job's attempts as they were (it is still logged).
        failed_job = job.fail_unreached(reason, now) if isinstance(exc, LlmUnreached) else job.fail(reason, now)
        failed = ticket.fail(now)
        changes.jobs.append(failed_job)
        changes.tickets.append(failed)
        if failed_job.is_final:
            changes.events.append(
                triage_failed_event(
                    failed, failed_job, batch_id=self._batch_id, error_class=error_class_of(exc), now=now
                )
            )
        changes.logs.append(
            _log(
                attempt,
                self._batch_id,
                now,
                AttemptOutcome.FAILED,
                model=self._llm.model,
                raw_output=raw[:RAW_OUTPUT_MAX_LENGTH] if raw else None,
                error_class=error_class_of(exc),
                error_message=str(exc)[:ERROR_MAX_LENGTH],
                llm_host=exc.host if isinstance(exc, LlmError) else None,
            )
        )
        return True

    def write(self) -> None:
        """Store what was started and recorded since the last write: jobs, tickets, batch items, logs."""
        changes, self._changes = self._changes, _Changes()
        self.uow.jobs.update_many(changes.jobs)
        self.uow.tickets.update_many(changes.tickets)
        if self._batch_id is not None:
            self.uow.batches.set_items_status(self._batch_id, [(job.id, job.status) for job in changes.jobs], self.now)
        self.uow.logs.add_many(changes.logs)
        # The outbox: the events of these changes commit with them, or not at all.
        self.uow.outbox.add(changes.events)

    def commit(self) -> None:
        """Write what is not written yet, then commit."""
        self.write()
        self.uow.commit()


def settle(attempt: Attempt) -> SettledAnswer:
    """The stored form of an attempt's answer: category and confidence from the evidence, review status."""
    assert attempt.answer is not None
    prompt = attempt.started.prompt
    return settle_answer(
        attempt.answer.answer,
        category_probability=attempt.answer.category_probability,
        priority_probability=attempt.answer.priority_probability,
        category_distribution=attempt.answer.category_distribution,
        priority_distribution=attempt.answer.priority_distribution,
        examples=attempt.started.examples,
        category_bank=attempt.started.bank.category,
        priority_bank=attempt.started.bank.priority,
        vocabulary=prompt.categories if prompt else (),
        review_threshold=prompt.review_threshold if prompt else 0.0,
        calibration=attempt.started.calibration,
    )


def _report(attempt: Attempt, batch_id: UUID | None) -> None:
    """Log the recorded outcome of an attempt (an internal failure at ERROR, with its traceback)."""
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


def _log(
    attempt: Attempt,
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
    confidence: dict[str, object] | None = None,
    llm_host: str | None = None,
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
        example_ids=tuple(example.id for example in started.examples),
        confidence=confidence,
        llm_host=llm_host,
    )
