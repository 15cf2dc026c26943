"""One ticket with its triage answer and the state of its triage job."""

from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.ticket import TicketOut
from triage_pipeline.application.ticket_queries import TicketView
from triage_pipeline.domain.statuses import TriageJobStatus
from triage_pipeline.domain.triage_answer import Priority, Sentiment


class TriageAnswerOut(BaseModel):
    """What the LLM concluded about the ticket."""

    model_config = ConfigDict(from_attributes=True)

    category: str
    priority: Priority
    sentiment: Sentiment
    language: str
    summary: str
    confidence: float


class TriageJobOut(BaseModel):
    """Where the ticket's triage job stands."""

    model_config = ConfigDict(from_attributes=True)

    status: TriageJobStatus
    attempts: int
    last_error: str | None


class TicketDetail(TicketOut):
    """A ticket, its triage answer (null until triaged) and its latest job."""

    triage: TriageAnswerOut | None = Field(description="The triage answer; null until the ticket is triaged.")
    job: TriageJobOut | None = Field(description="The ticket's latest triage job.")

    @classmethod
    def from_view(cls, view: TicketView) -> Self:
        """The view's ticket, with the ticket's answer as `triage` and the view's job as `job`."""
        ticket = TicketOut.model_validate(view.ticket)
        return cls(**dict(ticket), triage=view.ticket.answer, job=view.job)
