"""Prompt versions in table `prompts`."""

from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.infrastructure.db.mappers import prompt_from_row
from triage_pipeline.infrastructure.db.models import PromptRow


class SqlPromptRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, prompt: Prompt) -> None:
        """Store a new version (inactive unless `is_active`; use `activate` to switch)."""
        self._session.execute(
            insert(PromptRow).values(
                id=prompt.id,
                name=prompt.name,
                version=prompt.version,
                description=prompt.description,
                system_text=prompt.system_text,
                user_template=prompt.user_template,
                output_schema=dict(prompt.output_schema),
                model_options=dict(prompt.model_options),
                is_active=prompt.is_active,
                few_shot_k=prompt.few_shot_k,
                review_threshold=prompt.review_threshold,
                example_bank=prompt.example_bank,
                created_at=prompt.created_at,
                updated_at=prompt.created_at,
            )
        )

    def get(self, prompt_id: UUID) -> Prompt | None:
        row = self._session.get(PromptRow, prompt_id)
        return prompt_from_row(row) if row else None

    def active(self, name: str) -> Prompt | None:
        row = self._session.scalars(select(PromptRow).where(PromptRow.name == name, PromptRow.is_active)).one_or_none()
        return prompt_from_row(row) if row else None

    def by_version(self, name: str, version: int) -> Prompt | None:
        row = self._session.scalars(
            select(PromptRow).where(PromptRow.name == name, PromptRow.version == version)
        ).one_or_none()
        return prompt_from_row(row) if row else None

    def versions(self, name: str) -> list[Prompt]:
        """Every version of this name, oldest first."""
        rows = self._session.scalars(select(PromptRow).where(PromptRow.name == name).order_by(PromptRow.version))
        return [prompt_from_row(r) for r in rows]

    def next_version(self, name: str) -> int:
        """max(version) + 1, or 1 for a new name."""
        return int(
            self._session.scalar(
                select(func.coalesce(func.max(PromptRow.version), 0) + 1).where(PromptRow.name == name)
            )
            or 1
        )

    def activate(self, name: str, version: int) -> None:
        """Deactivate every version of the name, then activate this one, in the caller's transaction."""
        self._session.execute(
            update(PromptRow)
            .where(PromptRow.name == name, PromptRow.is_active)
            .values(is_active=False, updated_at=func.now())
        )
        self._session.execute(
            update(PromptRow)
            .where(PromptRow.name == name, PromptRow.version == version)
            .values(is_active=True, activated_at=func.now(), updated_at=func.now())
        )
