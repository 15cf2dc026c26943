"""Triage batches: queue the eligible jobs into one, and follow its progress."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Response, status

from api.dependencies import provide
from api.problems import problem_responses
from api.schemas.triage_batch import (
    BatchCreated,
    BatchProgressOut,
    BatchRef,
    EmptyBatch,
    QueuedBatch,
    TriageBatchCreate,
)
from triage_pipeline.application.batches import BatchStatusQuery, CreateBatch, GetBatchProgress

router = APIRouter(prefix="/triage-jobs", tags=["triage batches"])


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue the eligible triage jobs into a batch",
    description=(
        "Claims up to `max_items` eligible jobs (PENDING, or FAILED with attempts left) into a RUNNING batch that"
        " the pipeline then processes. Answers EMPTY (and creates nothing) when no job is eligible."
    ),
    responses=problem_responses(400, 413, 422, 503),
)
def create_batch(
    use_case: Annotated[CreateBatch, provide(CreateBatch)],
    response: Response,
    body: Annotated[TriageBatchCreate | None, Body()] = None,
) -> BatchCreated:
    """Create a batch of eligible jobs, or report that there is none."""
    created = use_case.execute((body or TriageBatchCreate()).to_command())
    if created is None:
        return EmptyBatch()
    response.headers["Location"] = f"/triage-jobs/batches/{created.batch.id}"
    return QueuedBatch(batch=BatchRef.model_validate(created.batch))


@router.get("/batches/{batch_id}", summary="A batch's progress", responses=problem_responses(404, 422, 503))
def get_batch(batch_id: UUID, use_case: Annotated[GetBatchProgress, provide(GetBatchProgress)]) -> BatchProgressOut:
    """Status, total items, item counts by status, and when it started and finished."""
    return BatchProgressOut.from_domain(use_case.execute(BatchStatusQuery(batch_id)))
