"""Attempt logs in table `triage_job_logs` (insert-only)."""

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.infrastructure.db.bulk_statements import INSERT_LOGS, LOG_COLUMNS, LOG_JSON_COLUMNS, json_text
from triage_pipeline.infrastructure.db.mappers import log_from_row, log_to_values
from triage_pipeline.infrastructure.db.models import TriageJobLogRow


class SqlTriageJobLogRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, log: TriageJobLog) -> None:
        self._session.execute(insert(TriageJobLogRow).values(**log_to_values(log)))

    def add_many(self, logs: Sequence[TriageJobLog]) -> None:
        """Store many attempts' records in one statement."""
        if logs:
            rows = [log_to_values(log) for log in logs]
            self._session.connection().execute(
                INSERT_LOGS,
                {
                    name: [json_text(r[name]) for r in rows] if name in LOG_JSON_COLUMNS else [r[name] for r in rows]
                    for name in LOG_COLUMNS
                },
            )

    def for_ticket(self, ticket_id: UUID) -> list[TriageJobLog]:
        """Every attempt at this ticket, oldest first."""
        rows = self._session.scalars(
            select(TriageJobLogRow)
            .where(TriageJobLogRow.ticket_id == ticket_id)
            .order_by(TriageJobLogRow.started_at, TriageJobLogRow.attempt)
        )
        return [log_from_row(r) for r in rows]

    def for_batch(self, batch_id: UUID) -> list[TriageJobLog]:
        """Every attempt made inside this batch, oldest first."""
        rows = self._session.scalars(
            select(TriageJobLogRow).where(TriageJobLogRow.batch_id == batch_id).order_by(TriageJobLogRow.started_at)
        )
        return [log_from_row(r) for r in rows]
