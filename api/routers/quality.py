"""Human corrections and re-triage of tickets."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, status

from api.dependencies import provide
from api.problems import problem_responses
from api.schemas.correction import CorrectionIn, CorrectionOut, RetriageOut
from triage_pipeline.application.corrections import CorrectTriage, CorrectTriageCommand, RetriageCommand, RetriageTicket

router = APIRouter(prefix="/tickets", tags=["quality"])


@router.put(
    "/{ticket_id}/triage",
    status_code=status.HTTP_201_CREATED,
    summary="Correct a ticket's category and priority",
    responses=problem_responses(400, 404, 409, 413, 422, 503),
)
def correct_triage(
    ticket_id: UUID, body: CorrectionIn, use_case: Annotated[CorrectTriage, provide(CorrectTriage)]
) -> CorrectionOut:
    """Store the correction beside the model's answer (which is kept); 409 when there is no answer yet."""
    correction = use_case.execute(
        CorrectTriageCommand(
            ticket_id=ticket_id,
            category=body.category,
            priority=body.priority,
            reason=body.reason,
            actor=body.corrected_by,
        )
    )
    return CorrectionOut.model_validate(correction)


@router.post(
    "/{ticket_id}/retriage",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a completed or failed ticket for triage again",
    responses=problem_responses(404, 409, 422, 503),
)
def retriage(ticket_id: UUID, use_case: Annotated[RetriageTicket, provide(RetriageTicket)]) -> RetriageOut:
    """A new PENDING job (attempts reset); the old job and its logs are kept."""
    ticket, job = use_case.execute(RetriageCommand(ticket_id))
    return RetriageOut(
        ticket_id=ticket.id, triage_status=ticket.status.value, job_id=job.id, job_status=job.status.value
    )
