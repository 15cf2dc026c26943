"""Repositories and use cases on the real PostgreSQL: round trips, bulk intake, the concurrent claim."""

import threading
from uuid import uuid4

import pytest
from sqlalchemy import text

from tests.unit.fakes import FakeLlm
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand, FinishBatch, FinishBatchCommand
from triage_pipeline.application.intake import (
    CreateTicket,
    CreateTickets,
    CreateTicketsCommand,
    ItemStatus,
    NewTicket,
)
from triage_pipeline.application.ticket_queries import ListTickets, ListTicketsQuery
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob, TriageOutcome
from triage_pipeline.domain.exceptions import DuplicateTicket, InvalidCursor
from triage_pipeline.domain.llm_errors import LlmTimeout
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.statuses import AttemptOutcome, BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.triage_job import MAX_ATTEMPTS
from triage_pipeline.infrastructure.clock import SystemClock
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

CLOCK = SystemClock()


def new(external_id: str) -> NewTicket:
    return NewTicket(DEFAULT_OWNER_ID, external_id, f"Title {external_id}", "Body <b>'; DROP TABLE tickets;--")


def make_tickets(uow: SqlUnitOfWorkFactory, n: int, prefix: str = "T") -> None:
    CreateTickets(uow, CLOCK).execute(CreateTicketsCommand([new(f"{prefix}{i}") for i in range(n)]))


def test_ticket_round_trips_verbatim_with_its_job(uow_factory: SqlUnitOfWorkFactory) -> None:
    ticket = CreateTicket(uow_factory, CLOCK).execute(new("A"))
    with uow_factory() as uow:
        stored = uow.tickets.get(ticket.id)
        job = uow.jobs.latest_for_ticket(ticket.id)
    assert stored == ticket
    assert job is not None and (job.status, job.attempts) == (TriageJobStatus.PENDING, 0)


def test_duplicate_single_create_names_the_existing_ticket_and_adds_no_job(uow_factory: SqlUnitOfWorkFactory) -> None:
    first = CreateTicket(uow_factory, CLOCK).execute(new("A"))
    with pytest.raises(DuplicateTicket) as info:
        CreateTicket(uow_factory, CLOCK).execute(new("A"))
    assert info.value.existing_id == first.id
    with uow_factory() as uow:
        assert uow.session.execute(text("SELECT count(*) FROM triage_jobs")).scalar_one() == 1


def test_bulk_intake_of_a_thousand_items_reports_duplicates(uow_factory: SqlUnitOfWorkFactory) -> None:
    make_tickets(uow_factory, 10)
    items = [new(f"T{i}") for i in range(1000)]
    results = CreateTickets(uow_factory, CLOCK).execute(CreateTicketsCommand(items))
    assert [r.status for r in results[:10]] == [ItemStatus.DUPLICATE] * 10
    assert all(r.status is ItemStatus.CREATED for r in results[10:])
    with uow_factory() as uow:
        counts = uow.session.execute(
            text("SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM triage_jobs)")
        ).one()
    assert tuple(counts) == (1000, 1000)


def test_ticket_list_pages_by_cursor_without_gaps_or_repeats(uow_factory: SqlUnitOfWorkFactory) -> None:
    make_tickets(uow_factory, 25)
    use_case = ListTickets(uow_factory)
    seen: list[str] = []
    cursor = None
    while True:
        page = use_case.execute(ListTicketsQuery(limit=10, cursor=cursor, status=TicketStatus.PENDING))
        seen += [t.external_id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"T{i}" for i in range(25))
    with pytest.raises(InvalidCursor):
        use_case.execute(ListTicketsQuery(cursor="not-a-cursor"))


def test_batch_claims_pending_and_retryable_jobs_only(uow_factory: SqlUnitOfWorkFactory) -> None:
    make_tickets(uow_factory, 3)
    with uow_factory() as uow:
        uow.session.execute(
            text(
                "UPDATE triage_jobs SET status='FAILED', attempts=3 WHERE ticket_id ="
                " (SELECT id FROM tickets WHERE external_id='T0')"
            )
        )
        uow.session.execute(
            text(
                "UPDATE triage_jobs SET status='DONE', attempts=1 WHERE ticket_id ="
                " (SELECT id FROM tickets WHERE external_id='T1')"
            )
        )
        uow.commit()
    created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand(max_items=10))
    assert created is not None and created.batch.total_items == 1
    assert CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand()) is None


def test_job_in_a_running_batch_is_not_claimed_by_another_batch(uow_factory: SqlUnitOfWorkFactory) -> None:
    make_tickets(uow_factory, 2)
    first = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand())
    assert first is not None and first.batch.total_items == 2
    # Still PENDING, but held by a RUNNING batch.
    assert CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand()) is None


def test_two_concurrent_claims_never_take_the_same_job(uow_factory: SqlUnitOfWorkFactory) -> None:
    make_tickets(uow_factory, 500)
    claimed: list[tuple[str, ...]] = []
    barrier = threading.Barrier(8)
    lock = threading.Lock()

    def claim() -> None:
        barrier.wait()
        for _ in range(5):
            created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand(max_items=30))
            if created is not None:
                with lock:
                    claimed.append(tuple(str(j) for j in created.job_ids))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_jobs = [j for batch in claimed for j in batch]
    assert len(all_jobs) == len(set(all_jobs))
    with uow_factory() as uow:
        items = uow.session.execute(text("SELECT count(*), count(DISTINCT job_id) FROM triage_job_batch_items")).one()
    assert items[0] == items[1] == len(all_jobs)


def test_failed_attempts_on_postgres_leave_the_right_states_and_one_log_each(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    ticket = CreateTicket(uow_factory, CLOCK).execute(new("A"))
    failing = TriageOneJob(uow_factory, FakeLlm(LlmTimeout("read timed out")), CLOCK)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand())
        assert created is not None, f"attempt {attempt} should find the job eligible"
        result = failing.execute(TriageJobCommand(created.job_ids[0], created.batch.id))
        assert result.outcome is TriageOutcome.FAILED
        assert FinishBatch(uow_factory, CLOCK).execute(FinishBatchCommand(created.batch.id)).status is BatchStatus.DONE
    assert CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand()) is None
    with uow_factory() as uow:
        stored = uow.tickets.get(ticket.id)
        job = uow.jobs.latest_for_ticket(ticket.id)
        logs = uow.logs.for_ticket(ticket.id)
        running = uow.session.execute(text("SELECT count(*) FROM triage_jobs WHERE status='RUNNING'")).scalar_one()
    assert stored is not None and stored.status is TicketStatus.FAILED
    assert job is not None and (job.status, job.attempts) == (TriageJobStatus.FAILED, MAX_ATTEMPTS)
    assert [(log.attempt, log.outcome, log.error_class) for log in logs] == [
        (i, AttemptOutcome.FAILED, "timeout") for i in (1, 2, 3)
    ]
    assert running == 0


def test_success_on_postgres_stores_answer_columns_and_log(uow_factory: SqlUnitOfWorkFactory) -> None:
    ticket = CreateTicket(uow_factory, CLOCK).execute(new("A"))
    created = CreateBatch(uow_factory, CLOCK).execute(CreateBatchCommand())
    assert created is not None
    TriageOneJob(uow_factory, FakeLlm(), CLOCK).execute(TriageJobCommand(created.job_ids[0], created.batch.id))
    FinishBatch(uow_factory, CLOCK).execute(FinishBatchCommand(created.batch.id))
    with uow_factory() as uow:
        row = uow.session.execute(
            text("SELECT status, category, priority, triage_result->>'summary' FROM tickets WHERE id=:id"),
            {"id": ticket.id},
        ).one()
        [log] = uow.logs.for_ticket(ticket.id)
        prompt = uow.prompts.active("triage")
    assert tuple(row) == ("COMPLETED", "bug", "high", "Checkout fails.")
    assert prompt is not None
    assert (log.prompt_id, log.prompt_version, log.model, log.batch_id) == (
        prompt.id,
        1,
        "fake-model",
        created.batch.id,
    )


def test_only_one_prompt_version_can_be_active(uow_factory: SqlUnitOfWorkFactory) -> None:
    from dataclasses import replace

    from sqlalchemy.exc import IntegrityError

    with uow_factory() as uow:
        active = uow.prompts.active("triage")
        assert active is not None
        with pytest.raises(IntegrityError, match="uq_prompts_one_active"):
            uow.prompts.add(replace(active, id=uuid4(), version=2, is_active=True))
