"""The stale-batch rule: a batch whose run died ends DONE with its never-started jobs released, never lost."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from tests.unit.fakes import FakeClock, FakeUowFactory
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.recovery import RecoverCommand, RecoverStuckWork, RecoveryReport
from triage_pipeline.domain.batch import TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.exceptions import BatchNotFinished, InvalidTransition
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.domain.statuses import BatchStatus, TicketStatus, TriageJobStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def batch_with(
    statuses: list[TriageJobStatus], *, at: datetime = T0
) -> tuple[TriageJobBatch, list[TriageJobBatchItem]]:
    batch = TriageJobBatch(uuid4(), BatchStatus.RUNNING, len(statuses), T0, T0, T0)
    items = [TriageJobBatchItem(uuid4(), batch.id, uuid4(), s, T0, at) for s in statuses]
    return batch, items


def test_batch_with_no_event_for_a_lease_and_no_running_item_is_stale() -> None:
    batch, items = batch_with([TriageJobStatus.DONE, TriageJobStatus.PENDING])
    assert not batch.is_stale(items, T0 + LEASE, LEASE)
    assert batch.is_stale(items, T0 + LEASE + timedelta(seconds=1), LEASE)


def test_batch_with_a_running_item_or_a_recent_event_is_never_stale() -> None:
    running, items = batch_with([TriageJobStatus.RUNNING, TriageJobStatus.PENDING])
    assert not running.is_stale(items, T0 + 10 * LEASE, LEASE)
    recent, items = batch_with([TriageJobStatus.DONE, TriageJobStatus.PENDING], at=T0 + 9 * LEASE)
    assert not recent.is_stale(items, T0 + 10 * LEASE - timedelta(seconds=1), LEASE)


def test_abandon_ends_the_batch_keeping_never_started_items_pending() -> None:
    batch, items = batch_with([TriageJobStatus.FAILED, TriageJobStatus.PENDING])
    done = batch.abandon(items, T0)
    assert (done.status, done.finished_at) == (BatchStatus.DONE, T0)
    with pytest.raises(InvalidTransition):
        done.abandon(items, T0)


def test_abandon_is_refused_while_an_item_is_running() -> None:
    batch, items = batch_with([TriageJobStatus.RUNNING, TriageJobStatus.PENDING])
    with pytest.raises(BatchNotFinished):
        batch.abandon(items, T0)


@pytest.fixture
def uow() -> FakeUowFactory:
    factory = FakeUowFactory()
    factory.store.owners[DEFAULT_OWNER_ID] = Owner(DEFAULT_OWNER_ID, "default", T0, T0)
    return factory


def queue(uow: FakeUowFactory, n: int) -> tuple[UUID, tuple[UUID, ...]]:
    items = [NewTicket(DEFAULT_OWNER_ID, f"E-{i}", "Checkout broken", "The pay button fails.") for i in range(n)]
    CreateTickets(uow, FakeClock()).execute(CreateTicketsCommand(items))
    created = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand())
    assert created is not None
    return created.batch.id, created.job_ids


def start(uow: FakeUowFactory, batch_id: UUID, job_id: UUID, at: datetime) -> None:
    """A worker starts the job (then dies)."""
    with uow() as w:
        job = w.jobs.get(job_id)
        assert job is not None
        w.jobs.update(job.start(at))
        w.batches.set_item_status(batch_id, job_id, TriageJobStatus.RUNNING, at)
        ticket = w.tickets.get(job.ticket_id)
        assert ticket is not None
        w.tickets.update(ticket.start_triage(at))
        w.commit()


def recover_at(uow: FakeUowFactory, at: datetime) -> RecoveryReport:
    clock = FakeClock()
    clock.current = at
    return RecoverStuckWork(uow, clock).execute(RecoverCommand(lease=LEASE))


def test_run_killed_mid_batch_fails_its_running_jobs_and_releases_the_never_started_ones(uow: FakeUowFactory) -> None:
    batch_id, job_ids = queue(uow, 4)
    start(uow, batch_id, job_ids[0], T0)
    report = recover_at(uow, T0 + LEASE + timedelta(minutes=1))
    assert (report.jobs_recovered, report.batches_abandoned, report.jobs_released) == (1, 1, 3)
    assert uow.store.batches[batch_id].status is BatchStatus.DONE
    items = {i.job_id: i.status for i in uow.store.items.values()}
    assert items[job_ids[0]] is TriageJobStatus.FAILED
    assert [items[j] for j in job_ids[1:]] == [TriageJobStatus.PENDING] * 3
    # Nothing is lost: every job, the recovered one included, goes into the next batch.
    again = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand())
    assert again is not None and set(again.job_ids) == set(job_ids)
    attempts = {j: uow.store.jobs[j].attempts for j in job_ids}
    assert attempts == {job_ids[0]: 1, job_ids[1]: 0, job_ids[2]: 0, job_ids[3]: 0}
    assert uow.store.tickets[uow.store.jobs[job_ids[0]].ticket_id].status is TicketStatus.FAILED


def test_queued_batch_never_launched_is_abandoned_one_lease_after_creation(uow: FakeUowFactory) -> None:
    batch_id, job_ids = queue(uow, 2)
    created_at = uow.store.batches[batch_id].created_at
    kept = recover_at(uow, created_at + LEASE - timedelta(seconds=1))
    assert kept.batches_finished == 0 and uow.store.batches[batch_id].status is BatchStatus.RUNNING
    closed = recover_at(uow, created_at + LEASE + timedelta(seconds=1))
    assert (closed.batches_abandoned, closed.jobs_released) == (1, 2)
    assert all(uow.store.jobs[j].attempts == 0 for j in job_ids)


def test_batch_still_running_a_job_within_its_lease_is_left_alone(uow: FakeUowFactory) -> None:
    batch_id, job_ids = queue(uow, 3)
    start(uow, batch_id, job_ids[0], T0 + 2 * LEASE)
    report = recover_at(uow, T0 + 2 * LEASE + timedelta(minutes=1))
    assert (report.jobs_recovered, report.batches_finished) == (0, 0)
    assert uow.store.batches[batch_id].status is BatchStatus.RUNNING
