"""Every legal and illegal transition of tickets, jobs and batches, and the attempt cap."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from triage_pipeline.domain.batch import TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.exceptions import AttemptsExhausted, BatchNotFinished, InvalidTransition
from triage_pipeline.domain.statuses import BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import Priority, Sentiment, TriageAnswer
from triage_pipeline.domain.triage_job import MAX_ATTEMPTS, TriageJob

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ANSWER = TriageAnswer("bug", Priority.HIGH, Sentiment.NEGATIVE, "en", "Broken checkout.", 0.9)


def ticket(status: TicketStatus) -> Ticket:
    return Ticket(uuid4(), uuid4(), "EXT-1", "t", "d", status, T0, T0)


def job(status: TriageJobStatus, attempts: int = 0) -> TriageJob:
    return TriageJob(uuid4(), uuid4(), status, attempts, T0, T0)


@pytest.mark.parametrize("start", [TicketStatus.PENDING, TicketStatus.FAILED])
def test_ticket_starts_triage_from_pending_or_failed(start: TicketStatus) -> None:
    moved = ticket(start).start_triage(T0 + timedelta(seconds=1))
    assert moved.status is TicketStatus.ON_TRIAGE
    assert moved.updated_at == T0 + timedelta(seconds=1)


@pytest.mark.parametrize("start", [TicketStatus.ON_TRIAGE, TicketStatus.COMPLETED])
def test_ticket_cannot_start_triage_from_on_triage_or_completed(start: TicketStatus) -> None:
    with pytest.raises(InvalidTransition):
        ticket(start).start_triage(T0)


def test_ticket_on_triage_completes_with_its_answer() -> None:
    done = ticket(TicketStatus.ON_TRIAGE).complete(ANSWER, T0)
    assert done.status is TicketStatus.COMPLETED
    assert done.answer == ANSWER


def test_ticket_on_triage_can_fail() -> None:
    assert ticket(TicketStatus.ON_TRIAGE).fail(T0).status is TicketStatus.FAILED


@pytest.mark.parametrize("start", [TicketStatus.PENDING, TicketStatus.COMPLETED, TicketStatus.FAILED])
def test_ticket_completes_or_fails_only_from_on_triage(start: TicketStatus) -> None:
    with pytest.raises(InvalidTransition):
        ticket(start).complete(ANSWER, T0)
    with pytest.raises(InvalidTransition):
        ticket(start).fail(T0)


def test_entities_are_immutable() -> None:
    original = ticket(TicketStatus.PENDING)
    original.start_triage(T0)
    assert original.status is TicketStatus.PENDING
    with pytest.raises(AttributeError):
        original.status = TicketStatus.FAILED  # type: ignore[misc]


@pytest.mark.parametrize("start", [TriageJobStatus.PENDING, TriageJobStatus.FAILED])
def test_job_start_counts_an_attempt(start: TriageJobStatus) -> None:
    running = job(start, attempts=1 if start is TriageJobStatus.FAILED else 0).start(T0)
    assert running.status is TriageJobStatus.RUNNING
    assert running.attempts == (2 if start is TriageJobStatus.FAILED else 1)
    assert running.started_at == T0


@pytest.mark.parametrize("start", [TriageJobStatus.RUNNING, TriageJobStatus.DONE])
def test_job_cannot_start_when_running_or_done(start: TriageJobStatus) -> None:
    with pytest.raises(InvalidTransition):
        job(start, attempts=1).start(T0)


def test_job_cannot_start_a_fourth_attempt() -> None:
    exhausted = job(TriageJobStatus.FAILED, attempts=MAX_ATTEMPTS)
    assert not exhausted.is_eligible
    assert exhausted.is_final
    with pytest.raises(AttemptsExhausted):
        exhausted.start(T0)


def test_job_fails_three_times_then_is_final() -> None:
    current = job(TriageJobStatus.PENDING)
    for _ in range(MAX_ATTEMPTS):
        assert current.is_eligible
        current = current.start(T0).fail("boom", T0)
    assert current.attempts == MAX_ATTEMPTS
    assert current.status is TriageJobStatus.FAILED
    assert not current.is_eligible


def test_running_job_completes_or_fails_with_reason() -> None:
    running = job(TriageJobStatus.PENDING).start(T0)
    assert running.complete(T0).status is TriageJobStatus.DONE
    failed = running.fail("x" * 5000, T0)
    assert failed.status is TriageJobStatus.FAILED
    assert failed.last_error is not None and len(failed.last_error) <= 2000


@pytest.mark.parametrize("start", [TriageJobStatus.PENDING, TriageJobStatus.DONE, TriageJobStatus.FAILED])
def test_job_completes_or_fails_only_when_running(start: TriageJobStatus) -> None:
    with pytest.raises(InvalidTransition):
        job(start).complete(T0)
    with pytest.raises(InvalidTransition):
        job(start).fail("x", T0)


def test_done_job_is_neither_eligible_nor_restartable() -> None:
    done = job(TriageJobStatus.PENDING).start(T0).complete(T0)
    assert not done.is_eligible
    assert done.is_final


def test_lease_expires_only_for_running_jobs_past_the_lease() -> None:
    running = job(TriageJobStatus.PENDING).start(T0)
    assert not running.lease_expired(T0 + timedelta(minutes=4), timedelta(minutes=5))
    assert running.lease_expired(T0 + timedelta(minutes=6), timedelta(minutes=5))
    assert not running.complete(T0).lease_expired(T0 + timedelta(hours=1), timedelta(minutes=5))


def batch_with(statuses: list[TriageJobStatus]) -> tuple[TriageJobBatch, list[TriageJobBatchItem]]:
    batch = TriageJobBatch(uuid4(), BatchStatus.RUNNING, len(statuses), T0, T0, T0)
    items = [TriageJobBatchItem(uuid4(), batch.id, uuid4(), s, T0, T0) for s in statuses]
    return batch, items


def test_batch_finishes_when_every_item_ended() -> None:
    batch, items = batch_with([TriageJobStatus.DONE, TriageJobStatus.FAILED])
    done = batch.finish(items, T0)
    assert done.status is BatchStatus.DONE
    assert done.finished_at == T0


@pytest.mark.parametrize("open_status", [TriageJobStatus.PENDING, TriageJobStatus.RUNNING])
def test_batch_cannot_finish_with_open_items(open_status: TriageJobStatus) -> None:
    batch, items = batch_with([TriageJobStatus.DONE, open_status])
    with pytest.raises(BatchNotFinished):
        batch.finish(items, T0)


def test_done_batch_cannot_finish_again() -> None:
    batch, items = batch_with([TriageJobStatus.DONE])
    with pytest.raises(InvalidTransition):
        batch.finish(items, T0).finish(items, T0)


def test_batch_item_follows_its_job() -> None:
    _, items = batch_with([TriageJobStatus.PENDING])
    assert items[0].is_open
    moved = items[0].follow(TriageJobStatus.DONE, T0)
    assert moved.status is TriageJobStatus.DONE
    assert not moved.is_open
