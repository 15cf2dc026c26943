"""The Owner entity: a tenant whose tickets are triaged."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

DEFAULT_OWNER_ID = UUID("00000000-0000-0000-0000-000000000000")
OWNER_NAME_MAX_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Owner:
    """A tenant; tickets belong to exactly one owner."""

    id: UUID
    name: str
    created_at: datetime
    updated_at: datetime
