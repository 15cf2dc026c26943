"""In-memory fakes of the gateways, for unit tests of the use cases."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from uuid import UUID

from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.calibration import CalibrationMap
from triage_pipeline.domain.correction import TriageCorrection
from triage_pipeline.domain.evaluation import EvaluationRun
from triage_pipeline.domain.exceptions import DuplicateTicket, NotFound
from triage_pipeline.domain.llm_errors import LlmError
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.ports import LlmAnswer, TicketPage
from triage_pipeline.domain.prompt import Prompt, RenderedPrompt
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import Priority, Sentiment, TriageAnswer
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.domain.webhook import WebhookEvent


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


class Store:
    """The shared in-memory 'database'."""

    def __init__(self) -> None:
        self.owners: dict[UUID, Owner] = {}
        self.tickets: dict[UUID, Ticket] = {}
        self.jobs: dict[UUID, TriageJob] = {}
        self.job_batch: dict[UUID, UUID] = {}
        self.batches: dict[UUID, TriageJobBatch] = {}
        self.items: dict[UUID, TriageJobBatchItem] = {}
        self.prompts: dict[UUID, Prompt] = {}
        self.logs: list[TriageJobLog] = []
        self.evaluations: list[EvaluationRun] = []
        self.corrections: list[TriageCorrection] = []
        self.activations: list[tuple[UUID, int | None, str]] = []
        self.events: list[WebhookEvent] = []


class FakeUowFactory:
    """Makes FakeUow-based units of work with one repository class per entity."""

    def __init__(self) -> None:
        self.store = Store()

    def __call__(self) -> "MemoryUow":
        return MemoryUow(self.store)


class MemoryUow:
    """Unit of work over a Store; changes land only on commit."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> Self:
        import copy

        self.data = copy.deepcopy(self._store)
        self.owners = MemOwners(self.data)
        self.tickets = MemTickets(self.data)
        self.jobs = MemJobs(self.data)
        self.batches = MemBatches(self.data)
        self.prompts = MemPrompts(self.data)
        self.logs = MemLogs(self.data)
        self.evaluations = MemEvaluations(self.data)
        self.corrections = MemCorrections(self.data)
        self.activations = MemActivations(self.data)
        self.outbox = MemOutbox(self.data)
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        pass

    def commit(self) -> None:
        import copy

        self._store.__dict__.update(copy.deepcopy(self.data).__dict__)


class MemOwners:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, owner: Owner) -> None:
        self.d.owners[owner.id] = owner

    def get(self, owner_id: UUID) -> Owner | None:
        return self.d.owners.get(owner_id)

    def existing_ids(self, owner_ids: Sequence[UUID]) -> set[UUID]:
        return {o for o in owner_ids if o in self.d.owners}


class MemTickets:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add_with_job(self, ticket: Ticket, job: TriageJob) -> None:
        if ticket.owner_id not in self.d.owners:
            raise NotFound("owner", ticket.owner_id)
        existing = self.find_by_external_id(ticket.owner_id, ticket.external_id)
        if existing:
            raise DuplicateTicket(ticket.owner_id, ticket.external_id, existing.id)
        self.d.tickets[ticket.id] = ticket
        self.d.jobs[job.id] = job

    def add_many_new(self, tickets: Sequence[Ticket]) -> dict[tuple[UUID, str], UUID]:
        existing: dict[tuple[UUID, str], UUID] = {}
        for t in tickets:
            found = self.find_by_external_id(t.owner_id, t.external_id)
            if found:
                existing[(t.owner_id, t.external_id)] = found.id
            else:
                self.d.tickets[t.id] = t
        return existing

    def get(self, ticket_id: UUID) -> Ticket | None:
        return self.d.tickets.get(ticket_id)

    def find_by_external_id(self, owner_id: UUID, external_id: str) -> Ticket | None:
        return next(
            (t for t in self.d.tickets.values() if t.owner_id == owner_id and t.external_id == external_id), None
        )

    def update(self, ticket: Ticket) -> None:
        self.d.tickets[ticket.id] = ticket

    def update_many(self, tickets: Sequence[Ticket]) -> None:
        for t in tickets:
            self.update(t)

    def mark_reviewed(self, ticket_id: UUID, now: datetime) -> bool:
        ticket = self.d.tickets.get(ticket_id)
        if ticket is None or ticket.status is not TicketStatus.COMPLETED:
            return False
        self.d.tickets[ticket_id] = replace(ticket, review_status=ReviewStatus.REVIEWED, updated_at=now)
        return True

    def list(self, *, status: TicketStatus | None, owner_id: UUID | None, limit: int, cursor: str | None) -> TicketPage:
        items = [t for t in self.d.tickets.values() if (status is None or t.status is status)]
        return TicketPage(items=items[:limit], next_cursor=None)


class MemJobs:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, job: TriageJob) -> None:
        self.d.jobs[job.id] = job

    def add_many(self, jobs: Sequence[TriageJob]) -> None:
        for j in jobs:
            self.add(j)

    def get(self, job_id: UUID, *, for_update: bool = False) -> TriageJob | None:
        return self.d.jobs.get(job_id)

    def update(self, job: TriageJob) -> None:
        self.d.jobs[job.id] = job

    def get_many_with_tickets(
        self, job_ids: Sequence[UUID], *, for_update: bool = False
    ) -> list[tuple[TriageJob, Ticket]]:
        jobs = [self.d.jobs[i] for i in dict.fromkeys(job_ids) if i in self.d.jobs]
        return [(j, self.d.tickets[j.ticket_id]) for j in jobs if j.ticket_id in self.d.tickets]

    def update_many(self, jobs: Sequence[TriageJob]) -> None:
        for j in jobs:
            self.update(j)

    def claim_eligible(self, batch_id: UUID, limit: int) -> list[TriageJob]:
        free = [j for j in self.d.jobs.values() if j.is_eligible and j.id not in self.d.job_batch][:limit]
        for j in free:
            self.d.job_batch[j.id] = batch_id
        return free

    def release_batch(self, batch_id: UUID) -> None:
        self.d.job_batch = {j: b for j, b in self.d.job_batch.items() if b != batch_id}

    def count_eligible(self) -> int:
        return sum(1 for j in self.d.jobs.values() if j.is_eligible and j.id not in self.d.job_batch)

    def oldest_eligible_created_at(self) -> datetime | None:
        return None

    def get_many(self, job_ids: Sequence[UUID]) -> list[TriageJob]:
        return [self.d.jobs[j] for j in job_ids if j in self.d.jobs]

    def find_expired_leases(self, now: datetime, lease: timedelta) -> list[TriageJob]:
        return [j for j in self.d.jobs.values() if j.lease_expired(now, lease)]

    def find_presumed_dead(
        self, now: datetime, lease: timedelta, heartbeat_timeout: timedelta, job_ids: Sequence[UUID] | None = None
    ) -> list[TriageJob]:
        wanted = None if job_ids is None else set(job_ids)
        return [
            j
            for j in self.d.jobs.values()
            if (wanted is None or j.id in wanted) and j.presumed_dead(now, lease, heartbeat_timeout)
        ]

    def heartbeat(self, attempts: Sequence[tuple[UUID, int]], now: datetime) -> int:
        beaten = 0
        for job_id, attempt in attempts:
            job = self.d.jobs.get(job_id)
            if job is not None and job.status is TriageJobStatus.RUNNING and job.attempts == attempt:
                self.d.jobs[job_id] = replace(job, heartbeat_at=now)
                beaten += 1
        return beaten

    def latest_for_ticket(self, ticket_id: UUID) -> TriageJob | None:
        return next((j for j in self.d.jobs.values() if j.ticket_id == ticket_id), None)


class MemBatches:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, batch: TriageJobBatch) -> None:
        self.d.batches[batch.id] = batch

    def add_items(self, items: Sequence[TriageJobBatchItem]) -> None:
        for i in items:
            self.d.items[i.id] = i

    def get(self, batch_id: UUID, *, for_update: bool = False) -> TriageJobBatch | None:
        return self.d.batches.get(batch_id)

    def update(self, batch: TriageJobBatch) -> None:
        self.d.batches[batch.id] = batch

    def items(self, batch_id: UUID) -> list[TriageJobBatchItem]:
        return [i for i in self.d.items.values() if i.batch_id == batch_id]

    def set_item_status(self, batch_id: UUID, job_id: UUID, status: TriageJobStatus, now: datetime) -> None:
        for i in self.items(batch_id):
            if i.job_id == job_id:
                self.d.items[i.id] = i.follow(status, now)

    def set_items_status(self, batch_id: UUID, statuses: Sequence[tuple[UUID, TriageJobStatus]], now: datetime) -> None:
        for job_id, status in statuses:
            self.set_item_status(batch_id, job_id, status, now)

    def item_counts(self, batch_id: UUID) -> dict[TriageJobStatus, int]:
        counts: dict[TriageJobStatus, int] = {}
        for i in self.items(batch_id):
            counts[i.status] = counts.get(i.status, 0) + 1
        return counts

    def item_counts_by_owner(self, batch_id: UUID) -> dict[UUID, dict[str, int]]:
        counts: dict[UUID, dict[str, int]] = {}
        for i in self.items(batch_id):
            owner = self.d.tickets[self.d.jobs[i.job_id].ticket_id].owner_id
            counts.setdefault(owner, {})[i.status.value] = counts.get(owner, {}).get(i.status.value, 0) + 1
        return counts

    def open_items_ahead(self, batch: TriageJobBatch) -> int:
        open_statuses = (TriageJobStatus.PENDING, TriageJobStatus.RUNNING)
        return sum(
            1
            for earlier in self.running()
            if earlier.created_at < batch.created_at
            for i in self.items(earlier.id)
            if i.status in open_statuses
        )

    def running(self) -> list[TriageJobBatch]:
        return [b for b in self.d.batches.values() if b.status is BatchStatus.RUNNING]

    def batch_of_running_job(self, job_id: UUID) -> UUID | None:
        return self.d.job_batch.get(job_id)

    def running_since(self, origin: BatchOrigin, since: datetime | None) -> list[TriageJobBatch]:
        return [b for b in self.running() if b.origin is origin and (since is None or b.created_at > since)]

    def latest_finished(self) -> TriageJobBatch | None:
        done = [b for b in self.d.batches.values() if b.finished_at is not None]
        return max(done, key=lambda b: b.finished_at or b.created_at, default=None)


class MemPrompts:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, prompt: Prompt) -> None:
        self.d.prompts[prompt.id] = prompt

    def get(self, prompt_id: UUID) -> Prompt | None:
        return self.d.prompts.get(prompt_id)

    def active(self, name: str) -> Prompt | None:
        return next((p for p in self.d.prompts.values() if p.name == name and p.is_active), None)

    def by_version(self, name: str, version: int) -> Prompt | None:
        return next((p for p in self.d.prompts.values() if p.name == name and p.version == version), None)

    def versions(self, name: str) -> list[Prompt]:
        return sorted((p for p in self.d.prompts.values() if p.name == name), key=lambda p: p.version)

    def next_version(self, name: str) -> int:
        return max((p.version for p in self.versions(name)), default=0) + 1

    def activate(self, name: str, version: int) -> None:
        for p in self.versions(name):
            self.d.prompts[p.id] = replace(p, is_active=p.version == version)


class MemLogs:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, log: TriageJobLog) -> None:
        self.d.logs.append(log)

    def add_many(self, logs: Sequence[TriageJobLog]) -> None:
        self.d.logs.extend(logs)

    def for_ticket(self, ticket_id: UUID) -> list[TriageJobLog]:
        return [log for log in self.d.logs if log.ticket_id == ticket_id]

    def for_batch(self, batch_id: UUID) -> list[TriageJobLog]:
        return [log for log in self.d.logs if log.batch_id == batch_id]


class MemEvaluations:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, run: EvaluationRun) -> None:
        self.d.evaluations.append(run)

    def list(self, name: str, versions: Sequence[int] = ()) -> list[EvaluationRun]:
        runs = [
            r for r in self.d.evaluations if r.prompt_name == name and (not versions or r.prompt_version in versions)
        ]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    def latest_calibration(self, prompt_id: UUID, model: str) -> CalibrationMap | None:
        runs = sorted(
            (r for r in self.d.evaluations if r.prompt_id == prompt_id and r.model == model), key=lambda r: r.created_at
        )
        for run in reversed(runs):
            fitted = CalibrationMap.from_dict((run.report.get("calibration") or {}).get("map"))
            if fitted is not None:
                return fitted
        return None


class MemCorrections:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, correction: TriageCorrection) -> None:
        self.d.corrections.append(correction)

    def for_ticket(self, ticket_id: UUID) -> list[TriageCorrection]:
        return [c for c in self.d.corrections if c.ticket_id == ticket_id]

    def latest_per_ticket(self) -> list[tuple[TriageCorrection, Ticket]]:
        latest: dict[UUID, TriageCorrection] = {}
        for c in self.d.corrections:
            latest[c.ticket_id] = c
        return [(c, self.d.tickets[c.ticket_id]) for c in latest.values()]


class MemActivations:
    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, prompt: Prompt, previous_version: int | None, activated_by: str, now: datetime) -> None:
        self.d.activations.append((prompt.id, previous_version, activated_by))


class MemOutbox:
    """The outbox as the use cases that write events see it (delivery is tested on PostgreSQL)."""

    def __init__(self, d: Store) -> None:
        self.d = d

    def add(self, events: Sequence[WebhookEvent]) -> None:
        self.d.events.extend(events)


class FakeLlm:
    """Answers every prompt with a fixed answer (90% sure of its category, as its logprobs would say), or raises
    the error it was given."""

    model = "fake-model"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[RenderedPrompt] = []

    def triage(self, prompt: RenderedPrompt) -> LlmAnswer:
        self.calls.append(prompt)
        if self.error is not None:
            raise self.error
        answer = TriageAnswer("bug", Priority.HIGH, Sentiment.NEGATIVE, "en", "Checkout fails.", 0.9)
        return LlmAnswer(
            answer, '{"category":"bug"}', self.model, 10, 5, 12, category_probability=0.9, priority_probability=0.8
        )


__all__ = ["FakeClock", "FakeLlm", "FakeUowFactory", "LlmError"]
