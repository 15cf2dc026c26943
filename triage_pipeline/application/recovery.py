"""Recovery of work a crashed run left behind: expired leases, then batches that can be closed.

A job RUNNING past its lease, or whose worker stopped renewing its heartbeat for JOB_HEARTBEAT_TIMEOUT_S,
is failed as a counted attempt (its worker is presumed dead) and becomes eligible again while attempts
remain: a dead worker's jobs come back within about a minute, not after the whole lease. A RUNNING
batch is then closed when:

- every item ended: it is finished (DONE), as the run would have done;
- no item is RUNNING and its run is dead (one of its jobs was just recovered from a dead worker, or
  nothing happened to the batch for a whole lease): it is abandoned, i.e. DONE with its never-started
  items left PENDING, and its jobs are released so the next batch claims them. Those jobs were never
  attempted, so no attempt is counted for them.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from triage_pipeline.domain.exceptions import BatchNotFinished
from triage_pipeline.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from triage_pipeline.domain.statuses import AttemptOutcome, BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.domain.webhook import batch_done_events, triage_failed_event

logger = logging.getLogger(__name__)

LEASE_EXPIRED = "lease_expired"
WORKER_LOST = "worker_lost"
RUN_ENDED = "run_ended"


@dataclass(frozen=True, slots=True)
class RecoverCommand:
    """Fail RUNNING jobs older than `lease` or silent past `heartbeat_timeout`, then finish batches with no
    open item."""

    lease: timedelta
    heartbeat_timeout: timedelta = timedelta(seconds=30)
    dead_worker_ends_run: bool = False
    """The worker that runs a batch's chunks is its run itself (Dagster's in-process executor): a worker whose
    heartbeat stopped means a dead run, so its batch is closed at once (its never-started jobs released)."""
    ended_runs: frozenset[UUID] = frozenset()
    """Batches whose run the orchestrator knows has ended without finishing them (failed or canceled, none
    queued or running again): their RUNNING jobs are failed at once and the batch is closed, so its jobs are
    retried by the next batch within a recovery interval, not after the lease."""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What the recovery changed; `batches_finished` counts every batch it closed, abandoned ones included."""

    jobs_recovered: int
    batches_finished: int
    batches_abandoned: int = 0
    jobs_released: int = 0


class RecoverStuckWork:
    """A RUNNING job past its lease counts as a failed attempt (then it is eligible again if attempts remain)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: RecoverCommand) -> RecoveryReport:
        """Recover the jobs of dead workers and close batches that can be closed."""
        now = self._clock.now()
        recovered = fail_presumed_dead(self._uow, now, command.lease, command.heartbeat_timeout)
        # A run whose lease ran out is dead. A worker whose heartbeat stopped is its run only with the in-process
        # executor; elsewhere the run may be waiting for the chunk to run again on another worker, so its
        # batch stays open for it.
        dead_reasons = {LEASE_EXPIRED, WORKER_LOST} if command.dead_worker_ends_run else {LEASE_EXPIRED}
        dead_batches = {batch_id for batch_id, reason in recovered.values() if batch_id and reason in dead_reasons}
        for batch_id in command.ended_runs:
            recovered |= self._fail_jobs_of_ended_run(batch_id, now, command)
            dead_batches.add(batch_id)

        finished = abandoned = released = 0
        with self._uow() as uow:
            running = uow.batches.running()
        for batch in running:
            with self._uow() as uow:
                locked = uow.batches.get(batch.id, for_update=True)
                if locked is None or locked.status is not BatchStatus.RUNNING:
                    continue
                items = uow.batches.items(locked.id)
                done_abandoned = False
                try:
                    done = locked.finish(items, now)
                except BatchNotFinished:
                    if not (locked.id in dead_batches or locked.is_stale(items, now, command.lease)):
                        continue
                    try:
                        done = locked.abandon(items, now)
                    except BatchNotFinished:
                        continue
                    never_started = sum(1 for item in items if item.status is TriageJobStatus.PENDING)
                    done_abandoned = True
                    abandoned += 1
                    released += never_started
                    logger.warning(
                        "abandoned a batch whose run is gone; its never-started jobs are released",
                        extra={"batch_id": locked.id, "fields": {"released_jobs": never_started}},
                    )
                uow.batches.update(done)
                uow.jobs.release_batch(locked.id)
                counts = uow.batches.item_counts_by_owner(locked.id)
                uow.outbox.add(batch_done_events(locked.id, counts, abandoned=done_abandoned, now=now))
                uow.commit()
                finished += 1
        return RecoveryReport(
            jobs_recovered=len(recovered),
            batches_finished=finished,
            batches_abandoned=abandoned,
            jobs_released=released,
        )

    def _fail_jobs_of_ended_run(
        self, batch_id: UUID, now: datetime, command: RecoverCommand
    ) -> dict[UUID, tuple[UUID | None, str]]:
        """Fail the RUNNING jobs of a batch whose run has ended: nothing will record their attempts."""
        with self._uow() as uow:
            batch = uow.batches.get(batch_id)
            if batch is None or batch.status is not BatchStatus.RUNNING:
                return {}
            running = [item.job_id for item in uow.batches.items(batch_id) if item.status is TriageJobStatus.RUNNING]
        return _fail_each(
            self._uow,
            running,
            lambda job: job.status is TriageJobStatus.RUNNING,
            now,
            command.lease,
            command.heartbeat_timeout,
            reason=RUN_ENDED,
        )


def fail_presumed_dead(
    uow_factory: UnitOfWorkFactory,
    now: datetime,
    lease: timedelta,
    heartbeat_timeout: timedelta,
    job_ids: Sequence[UUID] | None = None,
) -> dict[UUID, tuple[UUID | None, str]]:
    """Fail the attempts of the RUNNING jobs (among `job_ids`, if given) whose worker is presumed dead.

    Each in its own transaction, re-checked under its row lock (its worker may have recorded it meanwhile).
    Returns, per job failed, its batch and the reason (`lease_expired` or `worker_lost`).
    """
    with uow_factory() as uow:
        candidates = uow.jobs.find_presumed_dead(now, lease, heartbeat_timeout, job_ids)
    return _fail_each(
        uow_factory,
        [job.id for job in candidates],
        lambda job: job.presumed_dead(now, lease, heartbeat_timeout),
        now,
        lease,
        heartbeat_timeout,
    )


def _fail_each(
    uow_factory: UnitOfWorkFactory,
    job_ids: Sequence[UUID],
    still_dead: Callable[[TriageJob], bool],
    now: datetime,
    lease: timedelta,
    heartbeat_timeout: timedelta,
    *,
    reason: str | None = None,
) -> dict[UUID, tuple[UUID | None, str]]:
    """`fail_dead_attempt` for each job, each in its own transaction, re-checked with `still_dead` under its row
    lock (its worker may have recorded it meanwhile); per job failed, its batch and the reason."""
    failed: dict[UUID, tuple[UUID | None, str]] = {}
    for job_id in job_ids:
        with uow_factory() as uow:
            job = uow.jobs.get(job_id, for_update=True)
            if job is None or not still_dead(job):
                continue
            failed[job.id] = fail_dead_attempt(uow, job, now, lease, heartbeat_timeout, reason=reason)
            uow.commit()
    return failed


def fail_dead_attempt(
    uow: UnitOfWork,
    job: TriageJob,
    now: datetime,
    lease: timedelta,
    heartbeat_timeout: timedelta,
    *,
    reason: str | None = None,
) -> tuple[UUID | None, str]:
    """Fail the attempt of a job whose worker is presumed dead (the caller holds its row lock and commits).

    The attempt counts (the LLM may have been asked); the job is eligible again while attempts remain.
    Its ticket, batch item, log row and (when it was the last attempt) `ticket.triage_failed` event are
    written with it. Returns the batch that held the job (if any) and the reason.
    """
    if reason == RUN_ENDED:
        error_class, message = RUN_ENDED, "its run ended without recording this attempt"
    elif job.lease_expired(now, lease):
        error_class, message = LEASE_EXPIRED, f"no result within the lease of {lease}; the worker is presumed dead"
    else:
        error_class = WORKER_LOST
        message = f"no heartbeat for more than {heartbeat_timeout}; the worker is presumed dead"
    failed = job.fail(f"{error_class}: {message}", now)
    uow.jobs.update(failed)
    ticket = uow.tickets.get(job.ticket_id)
    batch_id = uow.batches.batch_of_running_job(job.id)
    if ticket is not None and ticket.status is TicketStatus.ON_TRIAGE:
        failed_ticket = ticket.fail(now)
        uow.tickets.update(failed_ticket)
        if failed.is_final:
            uow.outbox.add(
                [triage_failed_event(failed_ticket, failed, batch_id=batch_id, error_class=error_class, now=now)]
            )
    if batch_id is not None:
        uow.batches.set_item_status(batch_id, job.id, failed.status, now)
    uow.logs.add(
        TriageJobLog(
            id=uuid4(),
            job_id=job.id,
            ticket_id=job.ticket_id,
            batch_id=batch_id,
            attempt=job.attempts,
            outcome=AttemptOutcome.FAILED,
            prompt_id=None,
            prompt_version=None,
            model="",
            started_at=job.started_at or now,
            finished_at=now,
            latency_ms=int((now - (job.started_at or now)).total_seconds() * 1000),
            error_class=error_class,
            error_message=message,
        )
    )
    logger.warning(
        "recovered a job whose worker is presumed dead",
        extra={"job_id": job.id, "batch_id": batch_id, "fields": {"reason": error_class}},
    )
    return batch_id, error_class


@dataclass(frozen=True, slots=True)
class ExpiredLeasesQuery:
    """RUNNING jobs older than `lease`."""

    lease: timedelta


class CountExpiredLeases:
    """How many jobs are RUNNING past their lease right now."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: ExpiredLeasesQuery) -> int:
        with self._uow() as uow:
            return len(uow.jobs.find_expired_leases(self._clock.now(), command.lease))
