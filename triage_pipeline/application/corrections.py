"""Human corrections of triage answers, re-triage of finished tickets, and corrections as labelled data."""

import logging
from dataclasses import dataclass
from uuid import UUID, uuid4

from triage_pipeline.domain.correction import REASON_MAX_LENGTH, TriageCorrection
from triage_pipeline.domain.evaluation import LabelledTicket
from triage_pipeline.domain.example import ExampleSource, TriageExample
from triage_pipeline.domain.exceptions import NotCorrectable, NotFound, RetriageNotAllowed, UnknownLabel
from triage_pipeline.domain.ports import Clock, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME
from triage_pipeline.domain.statuses import TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import Priority
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.domain.webhook import corrected_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CorrectTriageCommand:
    """An agent's verdict on a ticket's category and priority."""

    ticket_id: UUID
    category: str
    priority: Priority
    reason: str = ""
    actor: str = ""


class CorrectTriage:
    """Keep a correction beside the model's answer; the answer itself is never overwritten."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: CorrectTriageCommand) -> TriageCorrection:
        """The stored correction; the category must be in the vocabulary of the active prompt."""
        with self._uow() as uow:
            ticket = uow.tickets.get(command.ticket_id)
            if ticket is None:
                raise NotFound("ticket", command.ticket_id)
            if ticket.answer is None:
                raise NotCorrectable(f"ticket {ticket.id} has no triage answer to correct yet")
            logs = uow.logs.for_ticket(ticket.id)
            version = next((log.prompt_version for log in reversed(logs) if log.answer is not None), None)
            prompt = (
                uow.prompts.by_version(DEFAULT_PROMPT_NAME, version)
                if version
                else uow.prompts.active(DEFAULT_PROMPT_NAME)
            )
            vocabulary = prompt.categories if prompt else ()
            if vocabulary and command.category not in vocabulary:
                raise UnknownLabel("category", command.category, vocabulary)
            correction = TriageCorrection(
                id=uuid4(),
                ticket_id=ticket.id,
                category=command.category,
                priority=command.priority,
                reason=command.reason[:REASON_MAX_LENGTH],
                model_category=ticket.answer.category,
                model_priority=ticket.answer.priority.value,
                prompt_version=version,
                created_at=self._clock.now(),
                corrected_by=command.actor,
            )
            uow.corrections.add(correction)
            # The person's labels become the ticket's example (one per ticket, the latest correction wins),
            # so the next similar ticket is shown this answer: a correction improves the next triage.
            uow.examples.upsert_for_ticket(
                TriageExample(
                    id=uuid4(),
                    owner_id=ticket.owner_id,
                    title=ticket.title,
                    description=ticket.description,
                    category=correction.category,
                    priority=correction.priority,
                    source=ExampleSource.CORRECTION,
                    created_at=correction.created_at,
                    sentiment=ticket.answer.sentiment.value,
                    language=ticket.answer.language,
                    ticket_id=ticket.id,
                    correction_id=correction.id,
                    reference=f"correction {correction.id}",
                )
            )
            # REVIEWED only if still COMPLETED: a ticket being triaged again gets its review status from the new
            # answer, and the correction (with its example) is kept either way.
            uow.tickets.mark_reviewed(ticket.id, correction.created_at)
            uow.outbox.add(
                [
                    corrected_event(
                        ticket,
                        correction_id=correction.id,
                        category=correction.category,
                        priority=correction.priority.value,
                        corrected_by=correction.corrected_by,
                        now=correction.created_at,
                    )
                ]
            )
            uow.commit()
        return correction


@dataclass(frozen=True, slots=True)
class AcceptTriageCommand:
    """A person confirms a ticket's answer as it is."""

    ticket_id: UUID
    actor: str = ""


class AcceptTriage:
    """Mark the answer REVIEWED (it leaves the review queue); the answer itself is unchanged."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: AcceptTriageCommand) -> Ticket:
        """NotFound for an unknown ticket; NotCorrectable when it has no answer yet or is being triaged again."""
        with self._uow() as uow:
            ticket = uow.tickets.get(command.ticket_id)
            if ticket is None:
                raise NotFound("ticket", command.ticket_id)
            reviewed = ticket.mark_reviewed(self._clock.now())
            # The row is written only if still COMPLETED: a worker may have started it again since the read.
            if not uow.tickets.mark_reviewed(ticket.id, reviewed.updated_at):
                raise NotCorrectable(f"ticket {ticket.id} is being triaged again: its answer can no longer be accepted")
            uow.commit()
        logger.info("triage answer accepted", extra={"ticket_id": ticket.id, "fields": {"actor": command.actor}})
        return reviewed


@dataclass(frozen=True, slots=True)
class RetriageCommand:
    """Queue a finished ticket again."""

    ticket_id: UUID


class RetriageTicket:
    """A COMPLETED ticket, or a FAILED one out of attempts, gets a new PENDING job; old jobs and logs stay."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: RetriageCommand) -> tuple[Ticket, TriageJob]:
        """NotFound for an unknown ticket; RetriageNotAllowed while its latest job may still run or be retried."""
        with self._uow() as uow:
            ticket = uow.tickets.get(command.ticket_id)
            if ticket is None:
                raise NotFound("ticket", command.ticket_id)
            current = uow.jobs.latest_for_ticket(ticket.id)
            if current is not None and not current.is_final:
                raise RetriageNotAllowed(
                    f"ticket {ticket.id} is {ticket.status.value} and its job is {current.status.value} with "
                    f"{current.attempts} attempt(s): it is still being triaged or will be retried by the next batch"
                )
            if ticket.status not in (TicketStatus.COMPLETED, TicketStatus.FAILED):
                raise RetriageNotAllowed(f"ticket {ticket.id} is {ticket.status.value}")
            now = self._clock.now()
            requeued = ticket.requeue(now)
            job = TriageJob(
                id=uuid4(),
                ticket_id=ticket.id,
                status=TriageJobStatus.PENDING,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            uow.tickets.update(requeued)
            uow.jobs.add(job)
            uow.commit()
        return requeued, job


@dataclass(frozen=True, slots=True)
class CorrectionsAsLabelsQuery:
    """No parameters: it exists so that every use case keeps the one `execute(command)` shape."""


class ExportCorrectionsAsLabels:
    """Corrected tickets in the labelled-file shape: human category/priority, model sentiment/language."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: CorrectionsAsLabelsQuery) -> list[LabelledTicket]:
        """One labelled ticket per corrected ticket (its newest correction)."""
        with self._uow() as uow:
            pairs = uow.corrections.latest_per_ticket()
        labelled = []
        for correction, ticket in pairs:
            labels = {"category": correction.category, "priority": correction.priority.value}
            if ticket.answer is not None:
                labels |= {"sentiment": ticket.answer.sentiment.value, "language": ticket.answer.language}
            labelled.append(LabelledTicket(ticket.external_id, ticket.title, ticket.description, labels))
        return labelled
