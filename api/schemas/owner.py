"""An owner (tenant) as created by a client and as returned by the API."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.text import NUL_FREE_PATTERN, STORABLE
from triage_pipeline.domain.owner import OWNER_NAME_MAX_LENGTH

OwnerName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=OWNER_NAME_MAX_LENGTH,
        description=f"Display name, 1 to {OWNER_NAME_MAX_LENGTH} characters, no NUL.",
        json_schema_extra={"pattern": NUL_FREE_PATTERN},
    ),
    STORABLE,
]


class OwnerCreate(BaseModel):
    """A new owner; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Acme Support"}]})

    name: OwnerName


class OwnerOut(BaseModel):
    """An owner as stored."""

    # `OwnerOut.model_validate(owner)` reads a domain `Owner`.
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    created_at: datetime
    updated_at: datetime
