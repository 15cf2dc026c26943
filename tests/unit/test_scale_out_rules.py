"""Scale-out rules on fakes: chunking by workers, heartbeats, a dead worker's jobs taken over, unreached calls."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from tests.unit.fakes import FakeClock, FakeLlm, FakeUowFactory
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.recovery import WORKER_LOST, RecoverCommand, RecoverStuckWork
from triage_pipeline.application.triage import (
    TriageJobs,
    TriageJobsCommand,
    TriageOneJob,
    TriageOutcome,
    WorkerLiveness,
)
from triage_pipeline.domain.chunking import chunk_count, split_into_chunks
from triage_pipeline.domain.llm_errors import LlmUnavailable, LlmUnreached
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.domain.statuses import AttemptOutcome, TicketStatus, TriageJobStatus
from triage_pipeline.domain.triage_job import TriageJob

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIVENESS = WorkerLiveness(heartbeat_timeout=timedelta(seconds=0.3), lease=timedelta(minutes=10))


@pytest.fixture
def uow() -> FakeUowFactory:
    factory = FakeUowFactory()
    factory.store.owners[DEFAULT_OWNER_ID] = Owner(DEFAULT_OWNER_ID, "default", T0, T0)
    prompt = Prompt(uuid4(), "triage", 1, "sys", "<ticket>{ticket}</ticket>", {}, {}, True, T0, categories=("bug",))
    factory.store.prompts[prompt.id] = prompt
    return factory


def claimed_batch(uow: FakeUowFactory, count: int) -> tuple[list[TriageJob], object]:
    items = [NewTicket(DEFAULT_OWNER_ID, f"E-{i}", f"Title {i}", f"Body {i}") for i in range(count)]
    CreateTickets(uow, FakeClock()).execute(CreateTicketsCommand(items))
    created = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand(max_items=count))
    assert created is not None
    return [uow.store.jobs[j] for j in created.job_ids], created.batch.id


def test_a_batch_gets_at_least_one_chunk_per_worker() -> None:
    assert chunk_count(1000, 1000, 4) == 4
    assert [len(c) for c in split_into_chunks(list(range(1000)), 1000, 4)] == [250] * 4


def test_the_chunks_are_a_multiple_of_the_workers_so_they_finish_their_last_round_together() -> None:
    assert chunk_count(1000, 200, 4) == 8
    assert [len(c) for c in split_into_chunks(list(range(1000)), 200, 4)] == [125] * 8


def test_no_chunk_is_larger_than_jobs_per_chunk_and_sizes_differ_by_one_at_most() -> None:
    chunks = split_into_chunks(list(range(1001)), 100, 2)
    assert len(chunks) == 12
    assert max(len(c) for c in chunks) <= 100
    assert max(len(c) for c in chunks) - min(len(c) for c in chunks) <= 1
    assert [item for chunk in chunks for item in chunk] == list(range(1001))


def test_a_batch_smaller_than_the_workers_gets_one_job_per_chunk() -> None:
    assert split_into_chunks(["a", "b"], 1000, 8) == [["a"], ["b"]]
    assert split_into_chunks([], 1000, 8) == []


def test_chunking_rejects_zero_workers() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        chunk_count(10, 10, 0)


def test_a_job_whose_worker_stopped_its_heartbeat_is_presumed_dead_long_before_its_lease() -> None:
    job = TriageJob(uuid4(), uuid4(), TriageJobStatus.PENDING, 0, T0, T0).start(T0, heartbeat=True)
    lease, timeout = timedelta(minutes=10), timedelta(seconds=30)
    assert not job.presumed_dead(T0 + timedelta(seconds=29), lease, timeout)
    assert job.presumed_dead(T0 + timedelta(seconds=31), lease, timeout)
    alive = replace(job, heartbeat_at=T0 + timedelta(seconds=20))
    assert not alive.presumed_dead(T0 + timedelta(seconds=31), lease, timeout)


def test_a_job_without_heartbeats_is_presumed_dead_only_after_its_lease() -> None:
    job = TriageJob(uuid4(), uuid4(), TriageJobStatus.PENDING, 0, T0, T0).start(T0)
    lease, timeout = timedelta(minutes=10), timedelta(seconds=30)
    assert job.heartbeat_at is None
    assert not job.presumed_dead(T0 + timedelta(minutes=9), lease, timeout)
    assert job.presumed_dead(T0 + timedelta(minutes=11), lease, timeout)


def test_an_unreached_failure_gives_the_attempt_back() -> None:
    job = TriageJob(uuid4(), uuid4(), TriageJobStatus.FAILED, 2, T0, T0).start(T0)
    assert job.attempts == 3
    failed = job.fail_unreached("unreached: every host down", T0)
    assert failed.status is TriageJobStatus.FAILED and failed.attempts == 2 and failed.is_eligible


def test_a_call_that_reached_no_llm_host_is_logged_but_not_counted(uow: FakeUowFactory) -> None:
    jobs, batch_id = claimed_batch(uow, 3)
    unreached = LlmUnreached("no LLM host could be reached")
    unreached.host = "http://gpu-a:11434"
    use_case = TriageJobs(uow, TriageOneJob(uow, FakeLlm(unreached), FakeClock()))
    results = use_case.execute(TriageJobsCommand([j.id for j in jobs], batch_id, concurrency=2))
    assert {r.outcome for r in results} == {TriageOutcome.FAILED}
    assert {(j.status, j.attempts) for j in uow.store.jobs.values()} == {(TriageJobStatus.FAILED, 0)}
    logs = list(uow.store.logs)
    assert len(logs) == 3 and {log.error_class for log in logs} == {"unreached"}
    assert {log.llm_host for log in logs} == {"http://gpu-a:11434"}


def test_a_call_that_reached_the_model_and_failed_uses_up_the_attempt(uow: FakeUowFactory) -> None:
    jobs, batch_id = claimed_batch(uow, 2)
    use_case = TriageJobs(uow, TriageOneJob(uow, FakeLlm(LlmUnavailable("connection dropped")), FakeClock()))
    use_case.execute(TriageJobsCommand([j.id for j in jobs], batch_id, concurrency=2))
    assert {(j.status, j.attempts) for j in uow.store.jobs.values()} == {(TriageJobStatus.FAILED, 1)}


def test_the_answering_host_is_recorded_in_the_attempt_log(uow: FakeUowFactory) -> None:
    jobs, batch_id = claimed_batch(uow, 1)

    class HostLlm(FakeLlm):
        def triage(self, prompt):  # type: ignore[no-untyped-def]
            return replace(super().triage(prompt), host="http://gpu-b:11434")

    TriageJobs(uow, TriageOneJob(uow, HostLlm(), FakeClock())).execute(TriageJobsCommand([jobs[0].id], batch_id))
    assert [log.llm_host for log in uow.store.logs] == ["http://gpu-b:11434"]


def test_a_chunk_step_renews_the_heartbeat_of_its_running_jobs(uow: FakeUowFactory) -> None:
    jobs, batch_id = claimed_batch(uow, 1)
    beats: list[datetime | None] = []

    class SlowLlm(FakeLlm):
        def triage(self, prompt):  # type: ignore[no-untyped-def]
            import time

            time.sleep(0.35)  # more than three heartbeat intervals
            beats.append(uow.store.jobs[jobs[0].id].heartbeat_at)
            return super().triage(prompt)

    clock = FakeClock()
    TriageJobs(uow, TriageOneJob(uow, SlowLlm(), clock)).execute(
        TriageJobsCommand([jobs[0].id], batch_id, liveness=LIVENESS)
    )
    started_at = uow.store.jobs[jobs[0].id].started_at
    assert beats and beats[0] is not None and started_at is not None and beats[0] > started_at


def test_a_rerun_chunk_takes_over_the_jobs_of_its_dead_worker_and_triages_them(uow: FakeUowFactory) -> None:
    jobs, batch_id = claimed_batch(uow, 4)
    # A worker started two jobs, then died: RUNNING, heartbeat long silent.
    dead_at = datetime.now(UTC) - timedelta(minutes=1)
    for job in jobs[:2]:
        uow.store.jobs[job.id] = job.start(dead_at, heartbeat=True)
    clock = FakeClock()
    clock.current = datetime.now(UTC)
    results = TriageJobs(uow, TriageOneJob(uow, FakeLlm(), clock)).execute(
        TriageJobsCommand([j.id for j in jobs], batch_id, liveness=LIVENESS)
    )
    assert [r.outcome for r in results] == [TriageOutcome.DONE] * 4
    assert {(j.status, j.attempts) for j in uow.store.jobs.values()} == {
        (TriageJobStatus.DONE, 2),
        (TriageJobStatus.DONE, 1),
    }
    logs = sorted(uow.store.logs, key=lambda log: (log.job_id, log.attempt))
    lost = [log for log in logs if log.error_class == WORKER_LOST]
    assert len(lost) == 2 and {log.outcome for log in lost} == {AttemptOutcome.FAILED}
    assert sum(1 for log in logs if log.outcome is AttemptOutcome.SUCCEEDED) == 4
    assert {t.status for t in uow.store.tickets.values()} == {TicketStatus.COMPLETED}


def test_recovery_fails_a_silent_workers_jobs_without_waiting_for_the_lease(uow: FakeUowFactory) -> None:
    jobs, _ = claimed_batch(uow, 2)
    clock = FakeClock()
    uow.store.jobs[jobs[0].id] = jobs[0].start(clock.current, heartbeat=True)
    uow.store.jobs[jobs[1].id] = jobs[1].start(clock.current)  # no heartbeats: lease only
    clock.current += timedelta(seconds=45)
    report = RecoverStuckWork(uow, clock).execute(
        RecoverCommand(lease=timedelta(minutes=10), heartbeat_timeout=timedelta(seconds=30))
    )
    assert report.jobs_recovered == 1
    assert uow.store.jobs[jobs[0].id].status is TriageJobStatus.FAILED
    assert uow.store.jobs[jobs[0].id].is_eligible
    assert uow.store.jobs[jobs[1].id].status is TriageJobStatus.RUNNING
    assert [log.error_class for log in uow.store.logs] == [WORKER_LOST]


def test_an_old_attempts_heartbeat_does_not_keep_a_newer_attempt_alive(uow: FakeUowFactory) -> None:
    jobs, _ = claimed_batch(uow, 1)
    job = jobs[0]
    first = job.start(T0, heartbeat=True)
    # The first attempt's worker was presumed dead; another worker started the job again.
    second = first.fail("worker_lost", T0).start(T0 + timedelta(seconds=40), heartbeat=True)
    uow.store.jobs[job.id] = second
    with uow() as unit:
        assert unit.jobs.heartbeat([(job.id, first.attempts)], T0 + timedelta(seconds=50)) == 0
        assert unit.jobs.heartbeat([(job.id, second.attempts)], T0 + timedelta(seconds=50)) == 1
        unit.commit()
    assert uow.store.jobs[job.id].heartbeat_at == T0 + timedelta(seconds=50)


@pytest.mark.parametrize(("worker_is_run", "closed"), [(True, True), (False, False)])
def test_a_silent_in_process_worker_is_a_dead_run_whose_batch_closes_at_once(
    uow: FakeUowFactory, worker_is_run: bool, closed: bool
) -> None:
    jobs, _ = claimed_batch(uow, 2)
    clock = FakeClock()
    uow.store.jobs[jobs[0].id] = jobs[0].start(clock.current, heartbeat=True)
    for item_id, item in list(uow.store.items.items()):
        if item.job_id == jobs[0].id:
            uow.store.items[item_id] = replace(item, status=TriageJobStatus.RUNNING)
    clock.current += timedelta(seconds=45)
    report = RecoverStuckWork(uow, clock).execute(
        RecoverCommand(
            lease=timedelta(minutes=10), heartbeat_timeout=timedelta(seconds=30), dead_worker_ends_run=worker_is_run
        )
    )
    assert report.jobs_recovered == 1
    assert report.batches_abandoned == (1 if closed else 0)
    assert report.jobs_released == (1 if closed else 0)
