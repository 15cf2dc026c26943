"""The Ticket entity and its state rules."""

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from triage_pipeline.domain.exceptions import InvalidTransition, NotCorrectable
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.triage_answer import TriageAnswer

TITLE_MAX_LENGTH = 300
DESCRIPTION_MAX_LENGTH = 20_000
EXTERNAL_ID_MAX_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Ticket:
    """A support ticket; it keeps the latest triage answer once there is one."""

    id: UUID
    owner_id: UUID
    external_id: str
    title: str
    description: str
    status: TicketStatus
    created_at: datetime
    updated_at: datetime
    answer: TriageAnswer | None = None
    review_status: ReviewStatus | None = None
    """Set with each stored answer (see `domain.review`); None until the first one."""

    def start_triage(self, now: datetime) -> "Ticket":
        """PENDING (first attempt) or FAILED (a retry) -> ON_TRIAGE."""
        if self.status not in (TicketStatus.PENDING, TicketStatus.FAILED):
            raise InvalidTransition("ticket", self.status, TicketStatus.ON_TRIAGE)
        return replace(self, status=TicketStatus.ON_TRIAGE, updated_at=now)

    def complete(
        self, answer: TriageAnswer, now: datetime, review_status: ReviewStatus = ReviewStatus.AUTO_APPLIED
    ) -> "Ticket":
        """ON_TRIAGE -> COMPLETED, keeping the answer and whether it waits for a person."""
        if self.status is not TicketStatus.ON_TRIAGE:
            raise InvalidTransition("ticket", self.status, TicketStatus.COMPLETED)
        return replace(self, status=TicketStatus.COMPLETED, answer=answer, review_status=review_status, updated_at=now)

    def mark_reviewed(self, now: datetime) -> "Ticket":
        """A person accepted the answer: only a COMPLETED ticket's answer can be (one being triaged again still
        shows its previous answer, which the next one replaces)."""
        if self.answer is None:
            raise NotCorrectable(f"ticket {self.id} has no triage answer to review yet")
        if self.status is not TicketStatus.COMPLETED:
            raise NotCorrectable(
                f"ticket {self.id} is {self.status.value}: only a COMPLETED ticket's answer can be accepted"
            )
        return replace(self, review_status=ReviewStatus.REVIEWED, updated_at=now)

    def requeue(self, now: datetime) -> "Ticket":
        """COMPLETED | FAILED -> PENDING, for a re-triage by a new job (the last answer is kept until replaced)."""
        if self.status not in (TicketStatus.COMPLETED, TicketStatus.FAILED):
            raise InvalidTransition("ticket", self.status, TicketStatus.PENDING)
        return replace(self, status=TicketStatus.PENDING, updated_at=now)

    def fail(self, now: datetime) -> "Ticket":
        """ON_TRIAGE -> FAILED; a later retry of its job moves it back to ON_TRIAGE."""
        if self.status is not TicketStatus.ON_TRIAGE:
            raise InvalidTransition("ticket", self.status, TicketStatus.FAILED)
        return replace(self, status=TicketStatus.FAILED, updated_at=now)
