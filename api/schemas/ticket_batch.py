"""The multi-status result of a bulk ticket intake: one entry per item, in request order."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.field_error import FieldError

MAX_BATCH_ITEMS = 1_000
"""Most items one `POST /tickets/batch` accepts."""


class CreatedItem(BaseModel):
    """The item became a new ticket (with a PENDING triage job)."""

    index: int = Field(description="Position of the item in the request.")
    status: Literal["CREATED"] = "CREATED"
    ticket_id: UUID
    external_id: str
    owner_id: UUID


class DuplicateItem(BaseModel):
    """A ticket with this (owner_id, external_id) already exists, or appears earlier in the request."""

    index: int = Field(description="Position of the item in the request.")
    status: Literal["DUPLICATE"] = "DUPLICATE"
    ticket_id: UUID = Field(description="The existing ticket.")
    external_id: str
    owner_id: UUID


class InvalidItem(BaseModel):
    """The item was rejected; nothing was stored for it."""

    index: int = Field(description="Position of the item in the request.")
    status: Literal["INVALID"] = "INVALID"
    errors: list[FieldError]
    external_id: str | None = Field(default=None, description="The item's external_id when it was valid.")
    owner_id: UUID | None = Field(default=None, description="The item's owner_id when it was valid.")


ItemResult = Annotated[CreatedItem | DuplicateItem | InvalidItem, Field(discriminator="status")]


class TicketBatchResult(BaseModel):
    """One result per item, in request order."""

    results: list[ItemResult]
