"""Mappers between ORM rows and domain entities."""

from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.domain.statuses import AttemptOutcome, BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import TriageAnswer
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.infrastructure.db.models import (
    OwnerRow,
    PromptRow,
    TicketRow,
    TriageJobBatchItemRow,
    TriageJobBatchRow,
    TriageJobLogRow,
    TriageJobRow,
)


def owner_from_row(row: OwnerRow) -> Owner:
    """Row -> Owner."""
    return Owner(id=row.id, name=row.name, created_at=row.created_at, updated_at=row.updated_at)


def ticket_from_row(row: TicketRow) -> Ticket:
    """Row -> Ticket."""
    return Ticket(
        id=row.id,
        owner_id=row.owner_id,
        external_id=row.external_id,
        title=row.title,
        description=row.description,
        status=TicketStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        answer=TriageAnswer.from_dict(row.triage_result) if row.triage_result else None,
    )


def ticket_to_values(ticket: Ticket) -> dict[str, object]:
    """Ticket -> column values."""
    return {
        "id": ticket.id,
        "owner_id": ticket.owner_id,
        "external_id": ticket.external_id,
        "title": ticket.title,
        "description": ticket.description,
        "status": ticket.status.value,
        "category": ticket.answer.category if ticket.answer else None,
        "priority": ticket.answer.priority.value if ticket.answer else None,
        "triage_result": ticket.answer.as_dict() if ticket.answer else None,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def job_from_row(row: TriageJobRow) -> TriageJob:
    """Row -> TriageJob."""
    return TriageJob(
        id=row.id,
        ticket_id=row.ticket_id,
        status=TriageJobStatus(row.status),
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_error=row.last_error,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def job_to_values(job: TriageJob) -> dict[str, object]:
    """TriageJob -> column values (batch membership is managed by the repository)."""
    return {
        "id": job.id,
        "ticket_id": job.ticket_id,
        "status": job.status.value,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def batch_from_row(row: TriageJobBatchRow) -> TriageJobBatch:
    """Row -> TriageJobBatch."""
    return TriageJobBatch(
        id=row.id,
        status=BatchStatus(row.status),
        total_items=row.total_items,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        origin=BatchOrigin(row.origin),
    )


def item_from_row(row: TriageJobBatchItemRow) -> TriageJobBatchItem:
    """Row -> TriageJobBatchItem."""
    return TriageJobBatchItem(
        id=row.id,
        batch_id=row.batch_id,
        job_id=row.job_id,
        status=TriageJobStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def prompt_from_row(row: PromptRow) -> Prompt:
    """Row -> Prompt; the category vocabulary is read from the output schema's enum."""
    category = row.output_schema.get("properties", {}).get("category", {})
    return Prompt(
        id=row.id,
        name=row.name,
        version=row.version,
        system_text=row.system_text,
        user_template=row.user_template,
        output_schema=row.output_schema,
        model_options=row.model_options,
        is_active=row.is_active,
        created_at=row.created_at,
        description=row.description,
        categories=tuple(category.get("enum", ())),
    )


def log_from_row(row: TriageJobLogRow) -> TriageJobLog:
    """Row -> TriageJobLog."""
    return TriageJobLog(
        id=row.id,
        job_id=row.job_id,
        ticket_id=row.ticket_id,
        batch_id=row.batch_id,
        attempt=row.attempt,
        outcome=AttemptOutcome(row.outcome),
        prompt_id=row.prompt_id,
        prompt_version=row.prompt_version,
        model=row.model,
        started_at=row.started_at,
        finished_at=row.finished_at,
        latency_ms=row.latency_ms,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        raw_output=row.raw_output,
        answer=row.answer,
        error_class=row.error_class,
        error_message=row.error_message,
    )


def log_to_values(log: TriageJobLog) -> dict[str, object]:
    """TriageJobLog -> column values."""
    return {
        "id": log.id,
        "job_id": log.job_id,
        "ticket_id": log.ticket_id,
        "batch_id": log.batch_id,
        "attempt": log.attempt,
        "outcome": log.outcome.value,
        "prompt_id": log.prompt_id,
        "prompt_version": log.prompt_version,
        "model": log.model,
        "started_at": log.started_at,
        "finished_at": log.finished_at,
        "latency_ms": log.latency_ms,
        "prompt_tokens": log.prompt_tokens,
        "completion_tokens": log.completion_tokens,
        "raw_output": log.raw_output,
        "answer": dict(log.answer) if log.answer is not None else None,
        "error_class": log.error_class,
        "error_message": log.error_message,
        "created_at": log.finished_at,
        "updated_at": log.finished_at,
    }
