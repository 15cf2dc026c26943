"""Prompt versions as listed, created and activated over the API."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.text import STORABLE


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
