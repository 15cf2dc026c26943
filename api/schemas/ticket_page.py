"""One page of the ticket list."""

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.ticket import TicketOut


class TicketPageOut(BaseModel):
    """Tickets newest first and the cursor of the next page (null on the last page)."""

    # `TicketPageOut.model_validate(page)` reads a domain `TicketPage`, each item as a `TicketOut`.
    model_config = ConfigDict(from_attributes=True)

    items: list[TicketOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null when there is none.")
