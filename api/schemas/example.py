"""Labelled examples: one as posted in a bulk import, the multi-status result of an import, and one as returned."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.field_error import FieldError
from api.schemas.text import NUL_FREE_PATTERN, STORABLE
from api.schemas.ticket import Description
from api.schemas.ticket_batch import MAX_BATCH_ITEMS
from triage_pipeline.application.examples import NewExample
from triage_pipeline.domain.example import ExampleSource
from triage_pipeline.domain.ticket import TITLE_MAX_LENGTH
from triage_pipeline.domain.triage_answer import Priority, Sentiment

MAX_EXAMPLE_ITEMS = MAX_BATCH_ITEMS
"""Most items one `POST /examples` accepts."""
REFERENCE_MAX_LENGTH = 500
LABEL_MAX_LENGTH = 64

ExampleTitle = Annotated[
    str,
    Field(
        max_length=TITLE_MAX_LENGTH,
        description=f"Subject line, up to {TITLE_MAX_LENGTH} characters; an example needs a title or a description.",
        json_schema_extra={"pattern": NUL_FREE_PATTERN},
    ),
    STORABLE,
]
Label = Annotated[str, Field(max_length=LABEL_MAX_LENGTH), STORABLE]


class ExampleCreate(BaseModel):
    """A solved ticket to learn from; its labels are checked against the active prompt's vocabulary."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Charged twice for my subscription",
                    "description": "My card shows two charges for March.",
                    "category": "billing",
                    "priority": "high",
                    "reference": "ZD-1042",
                }
            ]
        },
    )

    title: ExampleTitle = ""
    description: Description = ""
    category: Annotated[Label, Field(description="One of the active prompt's categories.")]
    priority: Annotated[Label, Field(description=f"One of {', '.join(p.value for p in Priority)}.")]
    sentiment: Annotated[
        Label | None, Field(default=None, description=f"One of {', '.join(s.value for s in Sentiment)}, or absent.")
    ]
    language: Annotated[
        Annotated[str, Field(max_length=8), STORABLE] | None,
        Field(default=None, description="An ISO 639-1 code such as `en`, or absent."),
    ]
    reference: Annotated[
        str,
        Field(
            default="",
            max_length=REFERENCE_MAX_LENGTH,
            description="Where the example comes from (the client's own id), for people.",
            json_schema_extra={"pattern": NUL_FREE_PATTERN},
        ),
        STORABLE,
    ]

    def to_new(self) -> NewExample:
        """The use-case input."""
        return NewExample(
            title=self.title,
            description=self.description,
            category=self.category,
            priority=self.priority,
            sentiment=self.sentiment,
            language=self.language,
            reference=self.reference,
        )


class ExampleImport(BaseModel):
    """Examples for one bank: the caller's own, an owner's (admins), or the shared one (admins)."""

    model_config = ConfigDict(extra="forbid")

    owner_id: UUID | None = Field(
        default=None,
        description=(
            "The bank the examples go to. Absent: an owner key's own bank, or for an admin the shared bank (every"
            " owner's prompts may be shown those). null: the shared bank (admins only). An owner key may name only"
            " its own owner."
        ),
    )
    items: list[Annotated[ExampleCreate | Any, Field(union_mode="left_to_right")]] = Field(
        json_schema_extra={"maxItems": MAX_EXAMPLE_ITEMS},
        description=(
            f"Up to {MAX_EXAMPLE_ITEMS} examples (ExampleCreate), each validated on its own: an item that is not a"
            " valid ExampleCreate, or whose labels are outside the active prompt's vocabulary, is reported INVALID"
            " instead of failing the request; more items answer 413 `too_many_items`."
        ),
    )


class CreatedExample(BaseModel):
    """The item became a new example."""

    index: int = Field(description="Position of the item in `items`.")
    status: Literal["CREATED"] = "CREATED"
    example_id: UUID


class DuplicateExample(BaseModel):
    """The bank already holds an example with the same text (or the item repeats an earlier one): nothing added."""

    index: int = Field(description="Position of the item in `items`.")
    status: Literal["DUPLICATE"] = "DUPLICATE"
    example_id: UUID = Field(description="The existing example.")


class InvalidExample(BaseModel):
    """The item was rejected; nothing was stored for it."""

    index: int = Field(description="Position of the item in `items`.")
    status: Literal["INVALID"] = "INVALID"
    errors: list[FieldError]


ExampleItemResult = Annotated[CreatedExample | DuplicateExample | InvalidExample, Field(discriminator="status")]


class ExampleImportResult(BaseModel):
    """The bank the examples went to (null: shared) and one result per item, in request order."""

    owner_id: UUID | None
    results: list[ExampleItemResult]


class ExampleOut(BaseModel):
    """A labelled example as stored."""

    # `ExampleOut.model_validate(example)` reads a domain `TriageExample`.
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    owner_id: UUID | None = Field(description="The owner whose prompts are shown it; null: shared by every owner.")
    source: ExampleSource = Field(description="`correction` (a person corrected that ticket) or `import`.")
    title: str
    description: str
    category: str
    priority: Priority
    sentiment: str | None
    language: str | None
    reference: str
    ticket_id: UUID | None = Field(description="The corrected ticket (source `correction`).")
    created_at: datetime


class ExamplePageOut(BaseModel):
    """Examples newest first and the cursor of the next page (null on the last page)."""

    items: list[ExampleOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null when there is none.")
