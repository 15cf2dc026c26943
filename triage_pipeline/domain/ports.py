"""Gateway Protocols: what the application needs from the outside world."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self
from uuid import UUID

from triage_pipeline.domain.api_key import ApiKey
from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.calibration import CalibrationMap
from triage_pipeline.domain.correction import TriageCorrection
from triage_pipeline.domain.evaluation import EvaluationRun
from triage_pipeline.domain.example import TriageExample
from triage_pipeline.domain.example_classifier import BankEvidence
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.prompt import Prompt, RenderedPrompt
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import TriageAnswer
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.domain.webhook_ports import WebhookOutbox, WebhookRepository


class Clock(Protocol):
    """Tells the time (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class LlmAnswer:
    """A validated answer with what the call cost."""

    answer: TriageAnswer
    raw_output: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_duration_ms: int | None
    category_probability: float | None = None
    """The model's probability of the category it wrote, from the tokens' log-probabilities; None when
    the server returned none."""
    priority_probability: float | None = None
    """The same for the priority it wrote."""
    category_distribution: Mapping[str, float] | None = None
    """The model's probability of each category it considered along the value it wrote (the one it wrote
    included, with `category_probability`); None without logprobs."""
    priority_distribution: Mapping[str, float] | None = None
    """The same for the priority."""
    host: str | None = None
    """The LLM host that answered (its base URL), recorded in the attempt's log."""


class LlmGateway(Protocol):
    """Turns a rendered prompt into a validated answer or raises an `LlmError`."""

    @property
    def model(self) -> str: ...

    def triage(self, prompt: RenderedPrompt) -> LlmAnswer:
        """Ask the model; raise a classified `LlmError` when no valid answer comes back."""
        ...


@dataclass(frozen=True, slots=True)
class LlmHostReach:
    """Whether one LLM host answered a light request (not a triage call) when it was last asked."""

    url: str
    up: bool
    error: str | None
    """Why it is not up."""


class LlmHostsHealth(Protocol):
    """Asks each LLM host whether it answers; within about a second, from a short cache when asked again."""

    def reachability(self) -> Sequence[LlmHostReach]:
        """Each host, in the order configured."""
        ...


class OwnerRepository(Protocol):
    def add(self, owner: Owner) -> None: ...

    def get(self, owner_id: UUID) -> Owner | None: ...

    def existing_ids(self, owner_ids: Sequence[UUID]) -> set[UUID]: ...


@dataclass(frozen=True, slots=True)
class TicketPage:
    """One page of tickets and the cursor of the next page, if any."""

    items: Sequence[Ticket]
    next_cursor: str | None


class TicketRepository(Protocol):
    """Tickets, with bulk insertion that reports duplicates."""

    def add_with_job(self, ticket: Ticket, job: TriageJob) -> None:
        """Store a new ticket and its first job together: NotFound for an unknown owner, DuplicateTicket
        (with the existing ticket's id) for a taken (owner, external_id); nothing is stored then."""
        ...

    def add_many_new(self, tickets: Sequence[Ticket]) -> dict[tuple[UUID, str], UUID]:
        """Insert those not already there; return the ids of those that already existed."""
        ...

    def get(self, ticket_id: UUID) -> Ticket | None: ...

    def find_by_external_id(self, owner_id: UUID, external_id: str) -> Ticket | None: ...

    def update(self, ticket: Ticket) -> None: ...

    def update_many(self, tickets: Sequence[Ticket]) -> None:
        """Save the triage state (status, answer) of many changed tickets at once."""
        ...

    def mark_reviewed(self, ticket_id: UUID, now: datetime) -> bool:
        """Set REVIEWED on a COMPLETED ticket and nothing else of its row; False when it is not COMPLETED
        (being triaged again: the new answer brings its own review status)."""
        ...

    def list(
        self,
        *,
        status: TicketStatus | None,
        owner_id: UUID | None,
        limit: int,
        cursor: str | None,
        review_status: ReviewStatus | None = None,
    ) -> TicketPage:
        """Tickets newest first, filtered, one page at a time."""
        ...


class TriageJobRepository(Protocol):
    """Triage jobs, and the atomic claim of eligible ones for a batch."""

    def add(self, job: TriageJob) -> None: ...

    def add_many(self, jobs: Sequence[TriageJob]) -> None: ...

    def get(self, job_id: UUID, *, for_update: bool = False) -> TriageJob | None:
        """The job, or None; `for_update` locks its row until the transaction ends."""
        ...

    def update(self, job: TriageJob) -> None: ...

    def get_many(self, job_ids: Sequence[UUID]) -> list[TriageJob]:
        """The jobs of these ids that exist (no lock)."""
        ...

    def get_many_with_tickets(
        self, job_ids: Sequence[UUID], *, for_update: bool = False
    ) -> list[tuple[TriageJob, Ticket]]:
        """The jobs of these ids that exist, each with its ticket; `for_update` locks the jobs' rows."""
        ...

    def update_many(self, jobs: Sequence[TriageJob]) -> None: ...

    def claim_eligible(self, batch_id: UUID, limit: int) -> list[TriageJob]:
        """Atomically take up to `limit` eligible jobs for the batch; concurrent claims never overlap."""
        ...

    def release_batch(self, batch_id: UUID) -> None:
        """Let the jobs held by a finished batch be claimed again."""
        ...

    def count_eligible(self) -> int:
        """How many jobs a new batch could take now."""
        ...

    def oldest_eligible_created_at(self) -> datetime | None: ...

    def find_expired_leases(self, now: datetime, lease: timedelta) -> list[TriageJob]:
        """RUNNING jobs whose lease has run out."""
        ...

    def find_presumed_dead(
        self, now: datetime, lease: timedelta, heartbeat_timeout: timedelta, job_ids: Sequence[UUID] | None = None
    ) -> list[TriageJob]:
        """RUNNING jobs whose worker is presumed dead (`TriageJob.presumed_dead`), among `job_ids` if given."""
        ...

    def heartbeat(self, attempts: Sequence[tuple[UUID, int]], now: datetime) -> int:
        """Renew the heartbeat of these (job id, attempt) pairs whose job is still RUNNING in that attempt; how
        many were (an attempt failed and restarted elsewhere meanwhile is not renewed by its old worker)."""
        ...

    def latest_for_ticket(self, ticket_id: UUID) -> TriageJob | None: ...


class BatchRepository(Protocol):
    def add(self, batch: TriageJobBatch) -> None:
        """Store a new batch (before its jobs are claimed for it)."""
        ...

    def add_items(self, items: Sequence[TriageJobBatchItem]) -> None: ...

    def get(self, batch_id: UUID, *, for_update: bool = False) -> TriageJobBatch | None:
        """`for_update` locks its row until the transaction ends."""
        ...

    def update(self, batch: TriageJobBatch) -> None: ...

    def items(self, batch_id: UUID) -> list[TriageJobBatchItem]:
        """In claim order: `ListBatchItems` reports them in that order."""
        ...

    def set_item_status(self, batch_id: UUID, job_id: UUID, status: TriageJobStatus, now: datetime) -> None:
        """Make the batch's item of this job follow the job's status."""
        ...

    def set_items_status(self, batch_id: UUID, statuses: Sequence[tuple[UUID, TriageJobStatus]], now: datetime) -> None:
        """Make the batch's items of these jobs follow their jobs' statuses, at once."""
        ...

    def item_counts(self, batch_id: UUID) -> dict[TriageJobStatus, int]:
        """Statuses that no item is in are left out, not counted as 0."""
        ...

    def item_counts_by_owner(self, batch_id: UUID) -> dict[UUID, dict[str, int]]:
        """Item counts by status (its value) for each owner with tickets in the batch."""
        ...

    def open_items_ahead(self, batch: TriageJobBatch) -> int:
        """Items still PENDING or RUNNING in RUNNING batches created before `batch`: the work ahead of it."""
        ...

    def running(self) -> list[TriageJobBatch]: ...

    def running_since(self, origin: BatchOrigin, since: datetime | None) -> list[TriageJobBatch]:
        """RUNNING batches of this origin created after `since`, oldest first."""
        ...

    def latest_finished(self) -> TriageJobBatch | None:
        """The batch that finished last."""
        ...

    def batch_of_running_job(self, job_id: UUID) -> UUID | None:
        """The RUNNING batch that holds this job, if any."""
        ...


class PromptRepository(Protocol):
    def add(self, prompt: Prompt) -> None: ...

    def get(self, prompt_id: UUID) -> Prompt | None: ...

    def active(self, name: str) -> Prompt | None: ...

    def by_version(self, name: str, version: int) -> Prompt | None: ...

    def versions(self, name: str) -> list[Prompt]:
        """Every version of this name, oldest first."""
        ...

    def next_version(self, name: str) -> int:
        """Not reserved: two transactions adding a version of one name at once may get the same number."""
        ...

    def activate(self, name: str, version: int) -> None:
        """Make this version the only active one of its name, atomically."""
        ...


class TriageJobLogRepository(Protocol):
    """The audit trail of attempts."""

    def add(self, log: TriageJobLog) -> None: ...

    def add_many(self, logs: Sequence[TriageJobLog]) -> None: ...

    def for_ticket(self, ticket_id: UUID) -> list[TriageJobLog]:
        """Every attempt at this ticket, oldest first."""
        ...

    def for_batch(self, batch_id: UUID) -> list[TriageJobLog]:
        """Every attempt made inside this batch."""
        ...


class EvaluationRunRepository(Protocol):
    def add(self, run: EvaluationRun) -> None: ...

    def list(self, name: str, versions: Sequence[int] = ()) -> list[EvaluationRun]:
        """Runs of a prompt name (optionally only these versions), newest first."""
        ...

    def latest_calibration(self, prompt_id: UUID, model: str) -> CalibrationMap | None:
        """The calibration map fitted by this prompt version's newest evaluation with this model (a map
        fitted on another model's answers says nothing about this one's)."""
        ...


class CorrectionRepository(Protocol):
    """Human corrections of triage answers."""

    def add(self, correction: TriageCorrection) -> None: ...

    def for_ticket(self, ticket_id: UUID) -> list[TriageCorrection]:
        """Corrections of a ticket, oldest first."""
        ...

    def latest_per_ticket(self) -> list[tuple[TriageCorrection, Ticket]]:
        """The newest correction of every corrected ticket, with its ticket."""
        ...


class PromptActivationRepository(Protocol):
    """The audit trail of prompt activations."""

    def add(
        self,
        prompt: Prompt,
        previous_version: int | None,
        activated_by: str,
        now: datetime,
        *,
        forced: bool = False,
        gate: Mapping[str, Any] | None = None,
    ) -> None:
        """Only the audit row: `PromptRepository.activate` makes the switch. `forced`: the promotion gate
        refused and was overridden; `gate` holds the figures it compared."""
        ...


@dataclass(frozen=True, slots=True)
class ExampleQuery:
    """One ticket to find examples for."""

    key: UUID
    """Whatever identifies the query to the caller (a ticket's id)."""
    owner_id: UUID | None
    """Examples of this owner and shared ones; None: shared ones only."""
    title: str
    description: str


class ExampleRepository(Protocol):
    """Labelled examples, with similarity search in the database (pg_trgm)."""

    def add_many(self, examples: Sequence[TriageExample]) -> set[UUID]:
        """Store new examples; the ids of those stored (one whose text is already in its bank is not)."""
        ...

    def upsert_for_ticket(self, example: TriageExample) -> TriageExample:
        """Add the example of a corrected ticket, or update the one it has (one per ticket); the stored one."""
        ...

    def get(self, example_id: UUID) -> TriageExample | None: ...

    def delete(self, example_id: UUID) -> bool: ...

    def page(
        self, *, owner_id: UUID | None, shared_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[TriageExample], str | None]:
        """Newest first, one page. `owner_id` set: that owner's and the shared ones; None and not
        `shared_only`: every example (an admin's view)."""
        ...

    def nearest(
        self,
        queries: Sequence[ExampleQuery],
        k: int,
        categories: Sequence[str],
        *,
        exclude_same_text: bool,
    ) -> dict[UUID, list[TriageExample]]:
        """Up to `k` most similar examples per query, most similar first, restricted to `categories`.

        One statement for all queries. `exclude_same_text`: an example with the query's own normalised
        text is never returned (evaluation: a ticket must not be shown its own answer).
        """
        ...

    def bank_counts(self, queries: Sequence[ExampleQuery], *, exclude_same_text: bool) -> dict[UUID, BankEvidence]:
        """Per query, the example bank classifier's counts over its owner's and the shared examples, for the
        query's terms. Two reads for all queries, three with `exclude_same_text`: examples with the query's
        own normalised text are left out of its counts (evaluation)."""
        ...

    def count(self) -> int: ...

    def exists(self) -> bool:
        """True when there is at least one example, of any owner or shared."""
        ...

    def ids_by_text_key(self, owner_id: UUID | None, keys: Sequence[str]) -> dict[str, UUID]:
        """Examples of exactly this owner (None: shared ones) whose text key is one of `keys`."""
        ...

    def seed_mark(self, source: str) -> str | None:
        """The reference of the last example imported from the shipped file `source`; None before the first."""
        ...

    def set_seed_mark(self, source: str, reference: str) -> None: ...


class ApiKeyRepository(Protocol):
    """Issued API keys (hashes only)."""

    def add(self, key: ApiKey) -> None: ...

    def get(self, key_id: UUID) -> ApiKey | None: ...

    def by_lookup(self, lookup: str) -> ApiKey | None:
        """The key with this public lookup handle, or None."""
        ...

    def update(self, key: ApiKey) -> None:
        """Save a changed key (revocation)."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository: commit or roll back together."""

    owners: OwnerRepository
    tickets: TicketRepository
    jobs: TriageJobRepository
    batches: BatchRepository
    prompts: PromptRepository
    logs: TriageJobLogRepository
    evaluations: EvaluationRunRepository
    corrections: CorrectionRepository
    activations: PromptActivationRepository
    api_keys: ApiKeyRepository
    examples: ExampleRepository
    webhooks: WebhookRepository
    outbox: WebhookOutbox

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work per use."""

    def __call__(self) -> UnitOfWork: ...
