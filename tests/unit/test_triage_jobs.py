"""TriageJobs (many jobs, grouped transactions, bounded LLM calls) and the stale-attempt rule, on fakes."""

import threading
import time
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from tests.unit.fakes import FakeClock, FakeLlm, FakeUowFactory
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand, FinishBatch, FinishBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.triage import (
    TriageJobCommand,
    TriageJobs,
    TriageJobsCommand,
    TriageOneJob,
    TriageOutcome,
)
from triage_pipeline.domain.exceptions import NotFound
from triage_pipeline.domain.llm_errors import LlmTimeout
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.domain.ports import LlmAnswer
from triage_pipeline.domain.prompt import Prompt, RenderedPrompt
from triage_pipeline.domain.statuses import AttemptOutcome, BatchStatus, TicketStatus, TriageJobStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def uow() -> FakeUowFactory:
    factory = FakeUowFactory()
    factory.store.owners[DEFAULT_OWNER_ID] = Owner(DEFAULT_OWNER_ID, "default", T0, T0)
    prompt = Prompt(uuid4(), "triage", 1, "sys", "<ticket>{ticket}</ticket>", {}, {}, True, T0, categories=("bug",))
    factory.store.prompts[prompt.id] = prompt
    return factory


class CountingLlm(FakeLlm):
    """Answers after a short pause and records the most calls it saw at once."""

    def __init__(self, error_for: str | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._now = 0
        self.most = 0
        self._error_for = error_for

    def triage(self, prompt: RenderedPrompt) -> LlmAnswer:
        with self._lock:
            self._now += 1
            self.most = max(self.most, self._now)
        try:
            time.sleep(0.01)
            if self._error_for is not None and self._error_for in prompt.user:
                raise LlmTimeout("read timed out")
            return super().triage(prompt)
        finally:
            with self._lock:
                self._now -= 1


def batch_of(uow: FakeUowFactory, count: int) -> tuple[list[str], CreateBatchCommand]:
    items = [NewTicket(DEFAULT_OWNER_ID, f"E-{i}", f"Title {i}", f"Body {i}") for i in range(count)]
    CreateTickets(uow, FakeClock()).execute(CreateTicketsCommand(items))
    return [i.external_id for i in items], CreateBatchCommand(max_items=count)


def test_every_job_is_triaged_once_with_its_log_and_at_most_concurrency_calls_at_once(uow: FakeUowFactory) -> None:
    _, command = batch_of(uow, 40)
    created = CreateBatch(uow, FakeClock()).execute(command)
    assert created is not None
    llm = CountingLlm()
    use_case = TriageJobs(uow, TriageOneJob(uow, llm, FakeClock()))
    results = use_case.execute(TriageJobsCommand(list(created.job_ids), created.batch.id, concurrency=4))
    assert [r.job_id for r in results] == list(created.job_ids)
    assert {r.outcome for r in results} == {TriageOutcome.DONE}
    assert 1 < llm.most <= 4
    assert {j.status for j in uow.store.jobs.values()} == {TriageJobStatus.DONE}
    assert {t.status for t in uow.store.tickets.values()} == {TicketStatus.COMPLETED}
    assert {i.status for i in uow.store.items.values()} == {TriageJobStatus.DONE}
    assert sorted(log.job_id for log in uow.store.logs) == sorted(created.job_ids)
    assert {(log.outcome, log.attempt, log.batch_id) for log in uow.store.logs} == {
        (AttemptOutcome.SUCCEEDED, 1, created.batch.id)
    }
    assert FinishBatch(uow, FakeClock()).execute(FinishBatchCommand(created.batch.id)).status is BatchStatus.DONE


def test_a_failed_call_fails_its_job_and_ticket_only(uow: FakeUowFactory) -> None:
    _, command = batch_of(uow, 6)
    created = CreateBatch(uow, FakeClock()).execute(command)
    assert created is not None
    llm = CountingLlm(error_for="Title 3")
    results = TriageJobs(uow, TriageOneJob(uow, llm, FakeClock())).execute(
        TriageJobsCommand(list(created.job_ids), created.batch.id, concurrency=3)
    )
    outcomes = [r.outcome for r in results]
    assert outcomes.count(TriageOutcome.FAILED) == 1 and outcomes.count(TriageOutcome.DONE) == 5
    failed = next(r for r in results if r.outcome is TriageOutcome.FAILED)
    assert failed.error_class == "timeout"
    assert uow.store.jobs[failed.job_id].status is TriageJobStatus.FAILED
    assert uow.store.tickets[uow.store.jobs[failed.job_id].ticket_id].status is TicketStatus.FAILED
    assert sorted(log.outcome for log in uow.store.logs) == [AttemptOutcome.FAILED] + [AttemptOutcome.SUCCEEDED] * 5


def test_repeated_and_finished_jobs_are_skipped(uow: FakeUowFactory) -> None:
    _, command = batch_of(uow, 3)
    created = CreateBatch(uow, FakeClock()).execute(command)
    assert created is not None
    use_case = TriageJobs(uow, TriageOneJob(uow, FakeLlm(), FakeClock()))
    first, second, third = created.job_ids
    results = use_case.execute(TriageJobsCommand([first, second, first], created.batch.id, concurrency=2))
    assert [r.outcome for r in results] == [TriageOutcome.DONE, TriageOutcome.DONE, TriageOutcome.SKIPPED]
    again = use_case.execute(TriageJobsCommand([first, third], created.batch.id, concurrency=2))
    assert [r.outcome for r in again] == [TriageOutcome.SKIPPED, TriageOutcome.DONE]
    assert len(uow.store.logs) == 3


def test_an_unknown_job_raises_after_the_others_are_triaged(uow: FakeUowFactory) -> None:
    _, command = batch_of(uow, 3)
    created = CreateBatch(uow, FakeClock()).execute(command)
    assert created is not None
    use_case = TriageJobs(uow, TriageOneJob(uow, FakeLlm(), FakeClock()))
    with pytest.raises(NotFound):
        use_case.execute(TriageJobsCommand([*created.job_ids, uuid4()], created.batch.id, concurrency=2))
    assert {j.status for j in uow.store.jobs.values()} == {TriageJobStatus.DONE}
    assert len(uow.store.logs) == 3


class RecoveringLlm(FakeLlm):
    """While it 'thinks', the job's lease expires: the recovery fails the attempt and writes its log."""

    def __init__(self, uow: FakeUowFactory) -> None:
        super().__init__()
        self._uow = uow

    def triage(self, prompt: RenderedPrompt) -> LlmAnswer:
        from triage_pipeline.application.recovery import LEASE_EXPIRED

        with self._uow() as w:
            for job in list(w.data.jobs.values()):
                if job.status is TriageJobStatus.RUNNING:
                    w.jobs.update(job.fail(f"{LEASE_EXPIRED}: stalled", T0))
                    ticket = w.tickets.get(job.ticket_id)
                    assert ticket is not None
                    w.tickets.update(ticket.fail(T0))
            w.commit()
        return super().triage(prompt)


def test_an_attempt_that_outlived_its_lease_records_nothing(uow: FakeUowFactory) -> None:
    batch_of(uow, 1)
    job_id = next(iter(uow.store.jobs))
    result = TriageOneJob(uow, RecoveringLlm(uow), FakeClock()).execute(TriageJobCommand(job_id))
    assert result.outcome is TriageOutcome.SKIPPED
    job = uow.store.jobs[job_id]
    assert (job.status, job.attempts) == (TriageJobStatus.FAILED, 1)
    assert uow.store.tickets[job.ticket_id].status is TicketStatus.FAILED
    assert uow.store.logs == []  # the recovery writes the attempt's log; the stale worker adds none


def test_an_attempt_that_outlived_its_lease_is_skipped_by_the_coordinator(uow: FakeUowFactory) -> None:
    # One job, so the fake store (no locks) sees the recovery and the coordinator one after the other.
    _, command = batch_of(uow, 1)
    created = CreateBatch(uow, FakeClock()).execute(command)
    assert created is not None
    results = TriageJobs(uow, TriageOneJob(uow, RecoveringLlm(uow), FakeClock())).execute(
        TriageJobsCommand(list(created.job_ids), created.batch.id, concurrency=4)
    )
    assert [r.outcome for r in results] == [TriageOutcome.SKIPPED]
    assert [(j.status, j.attempts) for j in uow.store.jobs.values()] == [(TriageJobStatus.FAILED, 1)]
    assert uow.store.logs == []
