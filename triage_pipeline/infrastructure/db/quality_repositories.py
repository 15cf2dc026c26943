"""Repositories of the quality features: evaluation runs, corrections, prompt activation audit."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.calibration import CalibrationMap
from triage_pipeline.domain.correction import TriageCorrection
from triage_pipeline.domain.evaluation import EvaluationRun
from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.infrastructure.db.mappers import correction_from_row, evaluation_run_from_row, ticket_from_row
from triage_pipeline.infrastructure.db.models import (
    EvaluationRunRow,
    PromptActivationRow,
    TicketRow,
    TriageCorrectionRow,
)


class SqlEvaluationRunRepository:
    """Evaluation runs in table `evaluation_runs`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, run: EvaluationRun) -> None:
        self._session.execute(
            insert(EvaluationRunRow).values(
                id=run.id,
                prompt_id=run.prompt_id,
                prompt_name=run.prompt_name,
                prompt_version=run.prompt_version,
                model=run.model,
                dataset=run.dataset,
                dataset_sha256=run.dataset_sha256,
                report=dict(run.report),
                created_at=run.created_at,
                updated_at=run.created_at,
            )
        )

    def list(self, name: str, versions: Sequence[int] = ()) -> list[EvaluationRun]:
        """Runs of a prompt name, newest first."""
        query = select(EvaluationRunRow).where(EvaluationRunRow.prompt_name == name)
        if versions:
            query = query.where(EvaluationRunRow.prompt_version.in_(list(versions)))
        rows = self._session.scalars(query.order_by(EvaluationRunRow.created_at.desc()))
        return [evaluation_run_from_row(r) for r in rows]

    def latest_calibration(self, prompt_id: UUID, model: str) -> CalibrationMap | None:
        """The calibration map of this prompt version's newest evaluation with this model that fitted one."""
        fitted = EvaluationRunRow.report["calibration"]["map"]
        data = self._session.scalar(
            select(fitted)
            # A JSON null map ("too few answers to fit") has no steps: SQL NULL, so left out.
            .where(
                EvaluationRunRow.prompt_id == prompt_id,
                EvaluationRunRow.model == model,
                fitted["steps"].isnot(None),
            )
            .order_by(EvaluationRunRow.created_at.desc())
            .limit(1)
        )
        return CalibrationMap.from_dict(data) if data is not None else None


class SqlCorrectionRepository:
    """Corrections in table `triage_corrections` (insert-only)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, correction: TriageCorrection) -> None:
        self._session.execute(
            insert(TriageCorrectionRow).values(
                id=correction.id,
                ticket_id=correction.ticket_id,
                category=correction.category,
                priority=correction.priority.value,
                reason=correction.reason,
                model_category=correction.model_category,
                model_priority=correction.model_priority,
                prompt_version=correction.prompt_version,
                corrected_by=correction.corrected_by,
                created_at=correction.created_at,
                updated_at=correction.created_at,
            )
        )

    def for_ticket(self, ticket_id: object) -> list[TriageCorrection]:
        """Corrections of a ticket, oldest first."""
        rows = self._session.scalars(
            select(TriageCorrectionRow)
            .where(TriageCorrectionRow.ticket_id == ticket_id)
            .order_by(TriageCorrectionRow.created_at)
        )
        return [correction_from_row(r) for r in rows]

    def latest_per_ticket(self) -> list[tuple[TriageCorrection, Ticket]]:
        """The newest correction of every corrected ticket, with its ticket."""
        newest = (
            select(TriageCorrectionRow.ticket_id, func.max(TriageCorrectionRow.created_at).label("at"))
            .group_by(TriageCorrectionRow.ticket_id)
            .subquery()
        )
        rows = self._session.execute(
            select(TriageCorrectionRow, TicketRow)
            .join(
                newest,
                (newest.c.ticket_id == TriageCorrectionRow.ticket_id) & (newest.c.at == TriageCorrectionRow.created_at),
            )
            .join(TicketRow, TicketRow.id == TriageCorrectionRow.ticket_id)
            .order_by(TriageCorrectionRow.created_at)
        )
        return [(correction_from_row(c), ticket_from_row(t)) for c, t in rows]


class SqlPromptActivationRepository:
    """The audit trail in table `prompt_activations`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        prompt: Prompt,
        previous_version: int | None,
        activated_by: str,
        now: datetime,
        *,
        forced: bool = False,
        gate: Mapping[str, Any] | None = None,
    ) -> None:
        self._session.execute(
            insert(PromptActivationRow).values(
                id=uuid4(),
                prompt_id=prompt.id,
                name=prompt.name,
                version=prompt.version,
                previous_version=previous_version,
                activated_by=activated_by,
                forced=forced,
                gate=dict(gate) if gate is not None else None,
                created_at=now,
                updated_at=now,
            )
        )
