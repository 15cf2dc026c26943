"""Prompt versions as listed, created and activated over the API."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.schemas.text import STORABLE
from triage_pipeline.domain.prompt import FEW_SHOT_K_MAX


class PromptOut(BaseModel):
    """One immutable prompt version."""

    # `PromptOut.model_validate(prompt)` reads a domain `Prompt` (its categories tuple becomes a list).
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    version: int
    is_active: bool
    description: str
    system_text: str
    user_template: str
    categories: list[str]
    model_options: dict[str, Any]
    few_shot_k: int = Field(description="How many of the most similar labelled examples the prompt shows.")
    review_threshold: float = Field(description="Answers with a lower confidence wait for a person (NEEDS_REVIEW).")
    example_bank: bool = Field(description="Answers are settled with the example bank's classifier too.")
    created_at: datetime


class PromptIn(BaseModel):
    """A new version; omitted parts are copied from the active version."""

    model_config = ConfigDict(extra="forbid")

    # STORABLE: PostgreSQL can store no NUL character, in text or in JSONB (a NUL is a 422, not a 500).
    system_text: Annotated[Annotated[str, STORABLE] | None, Field(default=None, min_length=1, max_length=50_000)]
    user_template: Annotated[
        Annotated[str, STORABLE] | None,
        Field(default=None, min_length=1, max_length=50_000, description="Must contain {ticket}."),
    ]
    categories: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64), STORABLE]] | None, Field(default=None, max_length=50)
    ]
    model_options: dict[Annotated[str, STORABLE], float | int] | None = None
    description: Annotated[str, Field(default="", max_length=2_000), STORABLE]
    activate: bool = False
    few_shot_k: Annotated[
        int | None,
        Field(
            default=None,
            ge=0,
            le=FEW_SHOT_K_MAX,
            description="Labelled examples shown per ticket (0: none); copied from the active version when absent.",
        ),
    ]
    review_threshold: Annotated[
        float | None,
        Field(
            default=None,
            ge=0,
            le=1,
            description=(
                "An answer whose confidence is below this is NEEDS_REVIEW (0: every answer is applied);"
                " copied from the active version when absent."
            ),
        ),
    ]
    example_bank: StrictBool | None = Field(
        default=None,
        description=(
            "Settle answers with the example bank's classifier too (it needs few_shot_k > 0 to take part);"
            " copied from the active version when absent."
        ),
    )
