"""Triage many jobs: one coordinating thread does the database work, a bounded pool asks the LLM.

See "What the profiles showed" in the README: each transaction of the coordinator records the attempts
that just ended and starts as many jobs as there are free LLM slots, with one locking read and one
statement per table however many jobs it holds; the LLM threads never touch the database.
"""

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

from triage_pipeline.application.triage.attempts import (
    Attempt,
    Started,
    TriageAttempts,
    TriageOutcome,
    TriageResult,
    result_of,
)
from triage_pipeline.application.triage.one_job import TriageOneJob
from triage_pipeline.domain.calibration import CalibrationMap
from triage_pipeline.domain.ports import UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, Prompt
from triage_pipeline.domain.statuses import TriageJobStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerLiveness:
    """How a worker shows it is alive, and how long the others wait before they presume it dead.

    The worker renews the heartbeat of its RUNNING jobs every `heartbeat_timeout / 3`; a job silent for
    `heartbeat_timeout`, or RUNNING past `lease`, belongs to a dead worker.
    """

    heartbeat_timeout: timedelta
    lease: timedelta

    @property
    def heartbeat_interval(self) -> timedelta:
        return self.heartbeat_timeout / 3


@dataclass(frozen=True, slots=True)
class TriageJobsCommand:
    """Triage several jobs of one batch with at most `concurrency` LLM calls at once.

    With `liveness` (a Dagster chunk step), the worker sends heartbeats for its RUNNING jobs, and jobs of
    the list that another worker holds are waited for: when that worker is presumed dead (a chunk handed
    out again after its worker died), their attempts are failed at once and they are triaged here.
    """

    job_ids: Sequence[UUID]
    batch_id: UUID | None = None
    concurrency: int = 16
    prompt_name: str = DEFAULT_PROMPT_NAME
    liveness: WorkerLiveness | None = None


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
        self._attempts = triage_one.attempts

    def execute(self, command: TriageJobsCommand) -> list[TriageResult]:
        """The result of every job, in input order."""
        if command.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not command.job_ids:
            return []
        with self._uow() as uow:
            prompt = uow.prompts.active(command.prompt_name)
            calibration = uow.evaluations.latest_calibration(prompt.id, self._attempts.model) if prompt else None
            # With no example at all, the nearest-example statement of every step could only find none.
            # Examples added during this run are used from the next one.
            retrieve = prompt is not None and prompt.neighbours_to_retrieve > 0 and uow.examples.exists()
        results = _Coordinator(self._attempts, command, prompt, calibration, retrieve).run()
        if command.liveness is None:
            return results
        by_id = {result.job_id: result for result in results}
        for adopted in self._adopt_orphans(command, command.liveness, by_id, prompt, calibration, retrieve):
            by_id[adopted.job_id] = adopted
        return [by_id[result.job_id] for result in results]

    def _adopt_orphans(
        self,
        command: TriageJobsCommand,
        liveness: WorkerLiveness,
        results: dict[UUID, TriageResult],
        prompt: Prompt | None,
        calibration: CalibrationMap | None,
        retrieve: bool,
    ) -> list[TriageResult]:
        """Jobs of the list that another worker was running: wait for it, or take them over once it is dead.

        Only jobs whose worker sends heartbeats are waited for (a dead one is known within the heartbeat
        timeout); a live worker's jobs end by themselves and are left to it. A job failed meanwhile (by that
        worker, or by the recovery sensor) with attempts left is triaged here.
        """
        adopted: dict[UUID, TriageResult] = {}
        waiting = [job_id for job_id, result in results.items() if result.outcome is TriageOutcome.SKIPPED]
        while waiting:
            with self._uow() as uow:
                jobs = uow.jobs.get_many(waiting)
            running = [job for job in jobs if job.status is TriageJobStatus.RUNNING and job.heartbeat_at is not None]
            dead = set(
                self._attempts.fail_dead([job.id for job in running], liveness.lease, liveness.heartbeat_timeout)
            )
            retry = [job.id for job in jobs if job.id in dead or job.is_eligible]
            if retry:
                logger.warning(
                    "took over the jobs of a dead worker",
                    extra={"batch_id": command.batch_id, "fields": {"jobs": len(retry), "failed_here": len(dead)}},
                )
                rerun = replace(command, job_ids=retry)
                for result in _Coordinator(self._attempts, rerun, prompt, calibration, retrieve).run():
                    adopted[result.job_id] = result
            waiting = [job.id for job in running if job.id not in dead]
            if waiting:
                time.sleep(liveness.heartbeat_interval.total_seconds())
        return list(adopted.values())


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

    def __init__(
        self,
        attempts: TriageAttempts,
        command: TriageJobsCommand,
        prompt: Prompt | None,
        calibration: CalibrationMap | None,
        retrieve: bool = True,
    ) -> None:
        self._attempts = attempts
        self._retrieve = retrieve
        self._command = command
        self._prompt = prompt
        self._calibration = calibration
        self._job_ids = list(command.job_ids)
        self._heartbeat = command.liveness is not None
        self._results: list[TriageResult | None] = [None] * len(self._job_ids)
        self._errors: list[Exception] = []
        self._ready: queue.SimpleQueue[tuple[int, Started] | None] = queue.SimpleQueue()
        self._finished: queue.SimpleQueue[tuple[int, Attempt]] = queue.SimpleQueue()
        # Jobs started and not yet recorded, whose heartbeat this worker renews.
        self._holding: dict[UUID, int] = {}  # job id -> its attempt
        self._holding_lock = threading.Lock()

    def run(self) -> list[TriageResult]:
        limit = min(self._command.concurrency, len(self._job_ids))
        most_running = limit + math.ceil(limit * START_AHEAD)
        pending = deque(range(len(self._job_ids)))
        running = 0  # started and not yet recorded: waiting for a slot, being asked, or just ended
        # Heartbeats outlive the pool: its threads finish the jobs already started even when this loop fails.
        with self._heartbeats(), ThreadPoolExecutor(max_workers=limit, thread_name_prefix="triage") as pool:
            for _ in range(limit):
                pool.submit(self._work)
            try:
                while pending or running:
                    ended: list[tuple[int, Attempt]] = []
                    if running and (running >= most_running or not pending):
                        ended.append(self._finished.get())
                    while True:
                        try:
                            ended.append(self._finished.get_nowait())
                        except queue.Empty:
                            break
                    running -= len(ended)
                    to_start = [pending.popleft() for _ in range(min(most_running - running, len(pending)))]
                    started = self._step(ended, to_start)
                    self._hold(started, ended)
                    for item in started:
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

    def _hold(self, started: list[tuple[int, Started]], ended: list[tuple[int, Attempt]]) -> None:
        if not self._heartbeat:
            return
        with self._holding_lock:
            for _, attempt in ended:
                self._holding.pop(attempt.started.job.id, None)
            self._holding.update((run.job.id, run.job.attempts) for _, run in started)

    @contextmanager
    def _heartbeats(self) -> Iterator[None]:
        """Renew the heartbeat of the held jobs every interval, in a thread of its own, while the block runs.

        A separate thread because the coordinating one may wait a whole LLM call for the next ended attempt.
        """
        liveness = self._command.liveness
        if liveness is None:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(liveness.heartbeat_interval.total_seconds()):
                with self._holding_lock:
                    held = list(self._holding.items())
                if not held:
                    continue
                try:
                    self._attempts.heartbeat(held)
                except Exception:  # the database is away: the next beat tries again, recovery waits for it
                    logger.warning("could not renew the heartbeat of %d running jobs", len(held), exc_info=True)

        thread = threading.Thread(target=beat, name="triage-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            # A beat stuck on an unreachable database must not hold the step: the thread is a daemon.
            thread.join(timeout=liveness.heartbeat_interval.total_seconds())

    def _work(self) -> None:
        """A pool thread: ask the LLM about started jobs, one at a time, until told to stop."""
        while (item := self._ready.get()) is not None:
            position, started = item
            try:
                attempt = self._attempts.ask(started, self._command.prompt_name)
            except BaseException as exc:  # `ask` catches every Exception; this is a last resort
                failure = exc if isinstance(exc, Exception) else RuntimeError(f"LLM call interrupted: {exc!r}")
                self._finished.put((position, Attempt(started, None, failure, 0, self._command.prompt_name)))
                raise
            self._finished.put((position, attempt))

    def _step(self, ended: list[tuple[int, Attempt]], to_start: list[int]) -> list[tuple[int, Started]]:
        """One transaction: record the ended attempts, start the jobs at these positions."""
        batch_id = self._command.batch_id
        new_ids = [self._job_ids[p] for p in to_start]
        try:
            # One locking read: the jobs whose attempts ended (still RUNNING in that attempt?) and those to start.
            with self._attempts.transaction(batch_id, [attempt.started.job.id for _, attempt in ended] + new_ids) as tx:
                recorded = [tx.record(attempt) for _, attempt in ended]
                started = tx.start(
                    new_ids, self._prompt, self._calibration, retrieve=self._retrieve, heartbeat=self._heartbeat
                )
                tx.commit()
        except Exception:
            logger.warning("a grouped triage transaction failed; retrying its jobs one by one", exc_info=True)
            return self._step_one_by_one(ended, to_start)
        for (position, attempt), done in zip(ended, recorded, strict=True):
            self._results[position] = result_of(attempt, done, batch_id)
        return self._positions(to_start, started)

    def _positions(self, to_start: list[int], started: list[Started]) -> list[tuple[int, Started]]:
        """Pair started jobs with their positions; the other positions are SKIPPED."""
        by_id = {run.job.id: run for run in started}
        runs: list[tuple[int, Started]] = []
        for position in to_start:
            job_id = self._job_ids[position]
            run = by_id.pop(job_id, None)
            if run is None:
                self._results[position] = TriageResult(job_id, TriageOutcome.SKIPPED)
            else:
                runs.append((position, run))
        return runs

    def _step_one_by_one(self, ended: list[tuple[int, Attempt]], to_start: list[int]) -> list[tuple[int, Started]]:
        batch_id = self._command.batch_id
        for position, attempt in ended:
            try:
                self._results[position] = self._attempts.record_alone(attempt, batch_id)
            except Exception as exc:  # the database itself fails: the job stays RUNNING until its lease ends
                self._errors.append(exc)
        runs: list[tuple[int, Started]] = []
        for position in to_start:
            job_id = self._job_ids[position]
            try:
                with self._attempts.transaction(batch_id, [job_id]) as tx:
                    started = tx.start(
                        [job_id], self._prompt, self._calibration, retrieve=self._retrieve, heartbeat=self._heartbeat
                    )
                    tx.commit()
            except Exception as exc:
                self._errors.append(exc)
                continue
            runs.extend(self._positions([position], started))
        return runs
