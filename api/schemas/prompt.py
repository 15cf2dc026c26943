"""Prompt versions as listed, created and activated over the API."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


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

    system_text: Annotated[str | None, Field(default=None, min_length=1, max_length=50_000)]
    user_template: Annotated[
        str | None, Field(default=None, min_length=1, max_length=50_000, description="Must contain {ticket}.")
    ]
    categories: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]] | None, Field(default=None, max_length=50)
    ]
    model_options: dict[str, float | int] | None = None
    description: Annotated[str, Field(default="", max_length=2_000)]
    activate: bool = False
