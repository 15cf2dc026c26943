"""Mappers between table rows and domain entities: the one place a row becomes an entity (and back).

A mapper reads a row's columns as attributes, so an ORM object and a Core row of a prebuilt statement
(the same column names) map alike; callers `cast` the latter to the ORM type.
"""

from typing import Any, cast
from uuid import UUID

from sqlalchemy import Row

from triage_pipeline.domain.api_key import ApiKey, ApiKeyRole
from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch, TriageJobBatchItem
from triage_pipeline.domain.correction import TriageCorrection
from triage_pipeline.domain.evaluation import EvaluationRun
from triage_pipeline.domain.example import ExampleSource, TriageExample, search_text, text_key
from triage_pipeline.domain.example_classifier import classifier_terms, terms_text
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.similarity_bands import similarity_bands
from triage_pipeline.domain.statuses import AttemptOutcome, BatchStatus, TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import Priority, TriageAnswer
from triage_pipeline.domain.triage_job import TriageJob
from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.infrastructure.db.bulk_statements import JOB_PREFIX, TICKET_PREFIX
from triage_pipeline.infrastructure.db.models import (
    ApiKeyRow,
    EvaluationRunRow,
    OwnerRow,
    PromptRow,
    TicketRow,
    TriageCorrectionRow,
    TriageExampleRow,
    TriageJobBatchItemRow,
    TriageJobBatchRow,
    TriageJobLogRow,
    TriageJobRow,
)


def owner_from_row(row: OwnerRow) -> Owner:
    return Owner(id=row.id, name=row.name, created_at=row.created_at, updated_at=row.updated_at)


def ticket_from_row(row: TicketRow) -> Ticket:
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
        review_status=ReviewStatus(row.review_status) if row.review_status else None,
    )


def ticket_to_values(ticket: Ticket) -> dict[str, object]:
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
        "review_status": ticket.review_status.value if ticket.review_status else None,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def job_from_row(row: TriageJobRow) -> TriageJob:
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
        heartbeat_at=row.heartbeat_at,
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
        "heartbeat_at": job.heartbeat_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


class _Prefixed:
    """One table's columns in a row of a join whose labels carry a prefix: `.id` reads `row.<prefix>id`."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Row[Any], prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def job_and_ticket_from_row(row: Row[Any]) -> tuple[TriageJob, Ticket]:
    """A row of `bulk_statements.GET_JOBS_WITH_TICKETS` -> the job and its ticket."""
    return (
        job_from_row(cast(TriageJobRow, _Prefixed(row, JOB_PREFIX))),
        ticket_from_row(cast(TicketRow, _Prefixed(row, TICKET_PREFIX))),
    )


def batch_from_row(row: TriageJobBatchRow) -> TriageJobBatch:
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
        few_shot_k=row.few_shot_k,
        review_threshold=row.review_threshold,
        example_bank=row.example_bank,
    )


def log_from_row(row: TriageJobLogRow) -> TriageJobLog:
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
        example_ids=tuple(UUID(i) for i in row.example_ids or ()),
        confidence=row.confidence,
        llm_host=row.llm_host,
    )


def log_to_values(log: TriageJobLog) -> dict[str, object]:
    """TriageJobLog -> column values; a log row is never updated, so its timestamps are its end."""
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
        "example_ids": [str(i) for i in log.example_ids] if log.example_ids else None,
        "confidence": dict(log.confidence) if log.confidence is not None else None,
        "llm_host": log.llm_host,
        "created_at": log.finished_at,
        "updated_at": log.finished_at,
    }


def evaluation_run_from_row(row: EvaluationRunRow) -> EvaluationRun:
    return EvaluationRun(
        id=row.id,
        prompt_id=row.prompt_id,
        prompt_name=row.prompt_name,
        prompt_version=row.prompt_version,
        model=row.model,
        dataset=row.dataset,
        dataset_sha256=row.dataset_sha256,
        report=row.report,
        created_at=row.created_at,
    )


def correction_from_row(row: TriageCorrectionRow) -> TriageCorrection:
    return TriageCorrection(
        id=row.id,
        ticket_id=row.ticket_id,
        category=row.category,
        priority=Priority(row.priority),
        reason=row.reason,
        model_category=row.model_category,
        model_priority=row.model_priority,
        prompt_version=row.prompt_version,
        created_at=row.created_at,
        corrected_by=row.corrected_by,
    )


def api_key_from_row(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        lookup=row.lookup,
        salt=row.salt,
        secret_hash=row.secret_hash,
        role=ApiKeyRole(row.role),
        owner_id=row.owner_id,
        name=row.name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revoked_at=row.revoked_at,
    )


def example_from_row(row: TriageExampleRow, similarity: float | None = None) -> TriageExample:
    return TriageExample(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        description=row.description,
        category=row.category,
        priority=Priority(row.priority),
        source=ExampleSource(row.source),
        created_at=row.created_at,
        sentiment=row.sentiment,
        language=row.language,
        ticket_id=row.ticket_id,
        correction_id=row.correction_id,
        reference=row.reference,
        similarity=similarity,
    )


def example_to_values(example: TriageExample) -> dict[str, object]:
    """TriageExample -> column values, with the search text, its bands, the text key and the classifier's terms
    derived from its text."""
    searched = search_text(example.title, example.description)
    return {
        "id": example.id,
        "owner_id": example.owner_id,
        "title": example.title,
        "description": example.description,
        "category": example.category,
        "priority": example.priority.value,
        "sentiment": example.sentiment,
        "language": example.language,
        "source": example.source.value,
        "ticket_id": example.ticket_id,
        "correction_id": example.correction_id,
        "reference": example.reference,
        "search_text": searched,
        "similarity_bands": similarity_bands(searched),
        "text_key": text_key(example.title, example.description),
        "classifier_terms": terms_text(classifier_terms(example.title, example.description)),
        "created_at": example.created_at,
        "updated_at": example.created_at,
    }
