"""One page of the ticket list."""

from typing import Self

from pydantic import BaseModel, Field

from api.schemas.ticket import TicketOut
from triage_pipeline.domain.ports import TicketPage


class TicketPageOut(BaseModel):
    """Tickets newest first and the cursor of the next page (null on the last page)."""

    items: list[TicketOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null when there is none.")

    @classmethod
    def from_domain(cls, page: TicketPage) -> Self:
        """The DTO of a domain page."""
        return cls(items=[TicketOut.from_domain(t) for t in page.items], next_cursor=page.next_cursor)
