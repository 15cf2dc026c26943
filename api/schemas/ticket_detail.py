"""One ticket with its triage answer and the state of its triage job."""

from typing import Self

from pydantic import BaseModel, Field

from api.schemas.ticket import TicketOut
from triage_pipeline.application.ticket_queries import TicketView
from triage_pipeline.domain.statuses import TriageJobStatus
from triage_pipeline.domain.triage_answer import Priority, Sentiment, TriageAnswer
from triage_pipeline.domain.triage_job import TriageJob


class TriageAnswerOut(BaseModel):
    """What the LLM concluded about the ticket."""

    category: str
    priority: Priority
    sentiment: Sentiment
    language: str
    summary: str
    confidence: float

    @classmethod
    def from_domain(cls, answer: TriageAnswer) -> Self:
        """The DTO of a domain answer."""
        return cls(
            category=answer.category,
            priority=answer.priority,
            sentiment=answer.sentiment,
            language=answer.language,
            summary=answer.summary,
            confidence=answer.confidence,
        )


class TriageJobOut(BaseModel):
    """Where the ticket's triage job stands."""

    status: TriageJobStatus
    attempts: int
    last_error: str | None

    @classmethod
    def from_domain(cls, job: TriageJob) -> Self:
        """The DTO of a domain job."""
        return cls(status=job.status, attempts=job.attempts, last_error=job.last_error)


class TicketDetail(TicketOut):
    """A ticket, its triage answer (null until triaged) and its latest job."""

    triage: TriageAnswerOut | None = Field(description="The triage answer; null until the ticket is triaged.")
    job: TriageJobOut | None = Field(description="The ticket's latest triage job.")

    @classmethod
    def from_view(cls, view: TicketView) -> Self:
        """The DTO of a ticket view."""
        ticket = TicketOut.from_domain(view.ticket)
        return cls(
            **ticket.model_dump(),
            triage=TriageAnswerOut.from_domain(view.ticket.answer) if view.ticket.answer else None,
            job=TriageJobOut.from_domain(view.job) if view.job else None,
        )
