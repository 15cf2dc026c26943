"""Use cases against in-memory fakes: intake, batch creation, triage outcomes, recovery."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from tests.unit.fakes import FakeClock, FakeLlm, FakeUowFactory
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand, FinishBatch, FinishBatchCommand
from triage_pipeline.application.intake import CreateTicket, CreateTickets, CreateTicketsCommand, ItemStatus, NewTicket
from triage_pipeline.application.recovery import RecoverCommand, RecoverStuckWork
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob, TriageOutcome
from triage_pipeline.domain.exceptions import BatchNotFinished, DuplicateTicket, NotFound
from triage_pipeline.domain.llm_errors import SchemaViolation
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.domain.statuses import AttemptOutcome, BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.triage_job import MAX_ATTEMPTS

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def uow() -> FakeUowFactory:
    factory = FakeUowFactory()
    factory.store.owners[DEFAULT_OWNER_ID] = Owner(DEFAULT_OWNER_ID, "default", T0, T0)
    prompt = Prompt(uuid4(), "triage", 1, "sys", "<ticket>{ticket}</ticket>", {}, {}, True, T0, categories=("bug",))
    factory.store.prompts[prompt.id] = prompt
    return factory


def new(external_id: str = "EXT-1") -> NewTicket:
    return NewTicket(DEFAULT_OWNER_ID, external_id, "Checkout broken", "The pay button does nothing.")


def test_create_ticket_makes_a_pending_ticket_and_a_pending_job(uow: FakeUowFactory) -> None:
    ticket = CreateTicket(uow, FakeClock()).execute(new())
    assert ticket.status is TicketStatus.PENDING
    jobs = list(uow.store.jobs.values())
    assert [(j.ticket_id, j.status, j.attempts) for j in jobs] == [(ticket.id, TriageJobStatus.PENDING, 0)]


def test_create_ticket_rejects_unknown_owner_and_duplicate(uow: FakeUowFactory) -> None:
    use_case = CreateTicket(uow, FakeClock())
    with pytest.raises(NotFound):
        use_case.execute(NewTicket(uuid4(), "X", "t", "d"))
    first = use_case.execute(new())
    with pytest.raises(DuplicateTicket) as info:
        use_case.execute(new())
    assert info.value.existing_id == first.id
    assert len(uow.store.jobs) == 1


def test_bulk_intake_reports_each_item_in_order(uow: FakeUowFactory) -> None:
    CreateTicket(uow, FakeClock()).execute(new("OLD"))
    stranger = uuid4()
    results = CreateTickets(uow, FakeClock()).execute(
        CreateTicketsCommand([new("A"), new("OLD"), NewTicket(stranger, "B", "t", "d"), new("A"), new("C")])
    )
    assert [r.status for r in results] == [
        ItemStatus.CREATED,
        ItemStatus.DUPLICATE,
        ItemStatus.UNKNOWN_OWNER,
        ItemStatus.DUPLICATE,
        ItemStatus.CREATED,
    ]
    assert results[3].ticket_id == results[0].ticket_id
    assert len(uow.store.tickets) == 3 and len(uow.store.jobs) == 3


def test_triage_success_completes_ticket_and_job_and_logs_the_attempt(uow: FakeUowFactory) -> None:
    ticket = CreateTicket(uow, FakeClock()).execute(new())
    created = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand())
    assert created is not None
    result = TriageOneJob(uow, FakeLlm(), FakeClock()).execute(
        TriageJobCommand(created.job_ids[0], batch_id=created.batch.id)
    )
    assert result.outcome is TriageOutcome.DONE
    assert uow.store.tickets[ticket.id].status is TicketStatus.COMPLETED
    assert uow.store.tickets[ticket.id].answer is not None
    job = uow.store.jobs[created.job_ids[0]]
    assert (job.status, job.attempts) == (TriageJobStatus.DONE, 1)
    [log] = uow.store.logs
    assert (log.outcome, log.attempt, log.prompt_version, log.prompt_tokens) == (AttemptOutcome.SUCCEEDED, 1, 1, 10)
    assert [i.status for i in uow.store.items.values()] == [TriageJobStatus.DONE]


def test_triage_failure_fails_ticket_and_job_and_logs_the_error_class(uow: FakeUowFactory) -> None:
    ticket = CreateTicket(uow, FakeClock()).execute(new())
    job_id = next(iter(uow.store.jobs))
    llm = FakeLlm(SchemaViolation("category: not allowed", raw_output='{"category":"nope"}'))
    result = TriageOneJob(uow, llm, FakeClock()).execute(TriageJobCommand(job_id))
    assert (result.outcome, result.error_class) == (TriageOutcome.FAILED, "schema_violation")
    assert uow.store.tickets[ticket.id].status is TicketStatus.FAILED
    assert uow.store.jobs[job_id].status is TriageJobStatus.FAILED
    [log] = uow.store.logs
    assert (log.error_class, log.raw_output) == ("schema_violation", '{"category":"nope"}')


def test_unexpected_exception_never_leaves_the_job_running(uow: FakeUowFactory) -> None:
    CreateTicket(uow, FakeClock()).execute(new())
    job_id = next(iter(uow.store.jobs))
    TriageOneJob(uow, FakeLlm(RuntimeError("bug in a client")), FakeClock()).execute(TriageJobCommand(job_id))
    assert uow.store.jobs[job_id].status is TriageJobStatus.FAILED
    assert uow.store.logs[0].error_class == "internal_error"


def test_third_failure_is_final_and_a_done_job_is_not_triaged_again(uow: FakeUowFactory) -> None:
    CreateTicket(uow, FakeClock()).execute(new())
    job_id = next(iter(uow.store.jobs))
    failing = TriageOneJob(uow, FakeLlm(SchemaViolation("bad")), FakeClock())
    for _ in range(MAX_ATTEMPTS):
        assert failing.execute(TriageJobCommand(job_id)).outcome is TriageOutcome.FAILED
    assert failing.execute(TriageJobCommand(job_id)).outcome is TriageOutcome.SKIPPED
    assert [log.attempt for log in uow.store.logs] == [1, 2, 3]
    assert CreateBatch(uow, FakeClock()).execute(CreateBatchCommand()) is None


def test_batch_finishes_only_after_every_item_ended(uow: FakeUowFactory) -> None:
    CreateTicket(uow, FakeClock()).execute(new())
    created = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand())
    assert created is not None
    with pytest.raises(BatchNotFinished):
        FinishBatch(uow, FakeClock()).execute(FinishBatchCommand(created.batch.id))
    TriageOneJob(uow, FakeLlm(), FakeClock()).execute(TriageJobCommand(created.job_ids[0], created.batch.id))
    done = FinishBatch(uow, FakeClock()).execute(FinishBatchCommand(created.batch.id))
    assert done.status is BatchStatus.DONE


def test_recovery_fails_expired_running_jobs_and_closes_their_batch(uow: FakeUowFactory) -> None:
    CreateTicket(uow, FakeClock()).execute(new())
    created = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand())
    assert created is not None
    job_id = created.job_ids[0]
    # A worker starts the job and dies: the job stays RUNNING.
    with uow() as w:
        job = w.jobs.get(job_id)
        assert job is not None
        w.jobs.update(job.start(T0))
        w.batches.set_item_status(created.batch.id, job_id, TriageJobStatus.RUNNING, T0)
        ticket = w.tickets.get(job.ticket_id)
        assert ticket is not None
        w.tickets.update(ticket.start_triage(T0))
        w.commit()
    clock = FakeClock()
    clock.current = T0 + timedelta(hours=1)
    report = RecoverStuckWork(uow, clock).execute(RecoverCommand(lease=timedelta(minutes=10)))
    assert (report.jobs_recovered, report.batches_finished) == (1, 1)
    job = uow.store.jobs[job_id]
    assert (job.status, job.attempts) == (TriageJobStatus.FAILED, 1)
    assert uow.store.logs[-1].error_class == "lease_expired"
    again = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand())
    assert again is not None and again.job_ids == (job_id,)
