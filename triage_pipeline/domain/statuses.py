"""Status enums of every stateful entity."""

from enum import StrEnum


class TicketStatus(StrEnum):
    """Lifecycle of a ticket: PENDING -> ON_TRIAGE -> COMPLETED | FAILED."""

    PENDING = "PENDING"
    ON_TRIAGE = "ON_TRIAGE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class TriageJobStatus(StrEnum):
    """Lifecycle of a triage job: PENDING | FAILED -> RUNNING -> DONE | FAILED."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class BatchStatus(StrEnum):
    """Lifecycle of a batch: RUNNING -> DONE."""

    RUNNING = "RUNNING"
    DONE = "DONE"


class AttemptOutcome(StrEnum):
    """How one triage attempt ended, as written in its log row."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
