"""Human corrections and re-triage of tickets."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, status

from api.dependencies import provide
from api.problems import problem_responses
from api.schemas.correction import CorrectionIn, CorrectionOut, RetriageOut, ReviewIn
from api.schemas.problem import Problem
from api.schemas.ticket import TicketOut
from triage_pipeline.application.corrections import (
    AcceptTriage,
    AcceptTriageCommand,
    CorrectTriage,
    CorrectTriageCommand,
    RetriageCommand,
    RetriageTicket,
)

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
    """Store the correction beside the model's answer (which is kept); 409 when there is no answer yet.

    The corrected labels become the ticket's example in its owner's bank (a later correction updates it), and
    the ticket is REVIEWED.
    """
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


@router.post(
    "/{ticket_id}/review",
    summary="Accept a ticket's triage answer as it is",
    responses=problem_responses(
        400,
        404,
        409,
        413,
        422,
        503,
        models={409: Problem},
        descriptions={409: "The ticket has no triage answer yet (`not_correctable`)."},
    ),
)
def accept_triage(
    ticket_id: UUID,
    use_case: Annotated[AcceptTriage, provide(AcceptTriage)],
    body: Annotated[ReviewIn | None, Body()] = None,
) -> TicketOut:
    """The ticket leaves the review queue: its `review_status` becomes REVIEWED; the answer is unchanged.

    Accepting again is harmless. 409 `not_correctable` when the ticket has no answer yet.
    """
    actor = body.reviewed_by if body is not None else ""
    return TicketOut.model_validate(use_case.execute(AcceptTriageCommand(ticket_id=ticket_id, actor=actor)))
