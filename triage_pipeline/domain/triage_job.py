"""The TriageJob entity: one ticket's way through triage, with its attempt count."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from triage_pipeline.domain.exceptions import AttemptsExhausted, InvalidTransition
from triage_pipeline.domain.statuses import TriageJobStatus

MAX_ATTEMPTS = 3
ERROR_MAX_LENGTH = 2_000


@dataclass(frozen=True, slots=True)
class TriageJob:
    """PENDING | FAILED -> RUNNING -> DONE | FAILED, at most MAX_ATTEMPTS starts."""

    id: UUID
    ticket_id: UUID
    status: TriageJobStatus
    attempts: int
    created_at: datetime
    updated_at: datetime
    last_error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    """Last sign of life of the worker running this attempt; None when its worker sends none (lease only)."""

    @property
    def is_eligible(self) -> bool:
        """True when a new batch may take this job (its own state only; batch membership aside)."""
        return self.status is TriageJobStatus.PENDING or (
            self.status is TriageJobStatus.FAILED and self.attempts < MAX_ATTEMPTS
        )

    @property
    def is_final(self) -> bool:
        """True when nothing more will happen to this job."""
        return self.status is TriageJobStatus.DONE or (
            self.status is TriageJobStatus.FAILED and self.attempts >= MAX_ATTEMPTS
        )

    def start(self, now: datetime, *, heartbeat: bool = False) -> "TriageJob":
        """PENDING | FAILED -> RUNNING, counting one attempt.

        `heartbeat=True`: the worker promises to renew `heartbeat_at` while the attempt runs, so a
        silence longer than the heartbeat timeout (not the whole lease) means that worker is dead.
        """
        if self.status not in (TriageJobStatus.PENDING, TriageJobStatus.FAILED):
            raise InvalidTransition("triage job", self.status, TriageJobStatus.RUNNING)
        if self.attempts >= MAX_ATTEMPTS:
            raise AttemptsExhausted(self.id, self.attempts)
        return replace(
            self,
            status=TriageJobStatus.RUNNING,
            attempts=self.attempts + 1,
            started_at=now,
            finished_at=None,
            updated_at=now,
            heartbeat_at=now if heartbeat else None,
        )

    def complete(self, now: datetime) -> "TriageJob":
        """RUNNING -> DONE."""
        if self.status is not TriageJobStatus.RUNNING:
            raise InvalidTransition("triage job", self.status, TriageJobStatus.DONE)
        return replace(self, status=TriageJobStatus.DONE, last_error=None, finished_at=now, updated_at=now)

    def fail(self, error: str, now: datetime) -> "TriageJob":
        """RUNNING -> FAILED with the reason; eligible again while attempts remain."""
        if self.status is not TriageJobStatus.RUNNING:
            raise InvalidTransition("triage job", self.status, TriageJobStatus.FAILED)
        return replace(
            self,
            status=TriageJobStatus.FAILED,
            last_error=error[:ERROR_MAX_LENGTH],
            finished_at=now,
            updated_at=now,
        )

    def fail_unreached(self, error: str, now: datetime) -> "TriageJob":
        """RUNNING -> FAILED without using up the attempt: the request never reached a model.

        The attempt count goes back to what it was before this start, so an outage of every LLM host
        does not exhaust the job's MAX_ATTEMPTS; the job is eligible again at once.
        """
        failed = self.fail(error, now)
        return replace(failed, attempts=max(self.attempts - 1, 0))

    def lease_expired(self, now: datetime, lease: timedelta) -> bool:
        """True when the job has been RUNNING longer than its lease (its worker is presumed dead)."""
        return self.status is TriageJobStatus.RUNNING and self.started_at is not None and now - self.started_at > lease

    def heartbeat_lost(self, now: datetime, timeout: timedelta) -> bool:
        """True when the worker of this RUNNING attempt sends heartbeats and has been silent past `timeout`."""
        return (
            self.status is TriageJobStatus.RUNNING
            and self.heartbeat_at is not None
            and now - self.heartbeat_at > timeout
        )

    def presumed_dead(self, now: datetime, lease: timedelta, heartbeat_timeout: timedelta) -> bool:
        """Its worker is presumed dead: the lease ran out, or its heartbeats stopped."""
        return self.lease_expired(now, lease) or self.heartbeat_lost(now, heartbeat_timeout)
