"""A labelled example: a solved ticket the triage prompt is shown as a case to learn from.

Examples belong to one owner (their prompts only) or to nobody (`owner_id` None: shared by every owner,
managed by admins). A human correction keeps one example per corrected ticket, updated by later
corrections; imported ones come from a labelled file or `POST /examples`.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from triage_pipeline.domain.triage_answer import Priority

SEARCH_TEXT_MAX_LENGTH = 500
"""Similarity is judged on the start of a ticket: its title and first lines say what it is about, and a
bounded text keeps the trigram index small and each comparison cheap."""


class ExampleSource(StrEnum):
    CORRECTION = "correction"
    IMPORT = "import"


def normalised_text(title: str, description: str) -> str:
    """Lower case, whitespace runs folded to one space: two tickets with this same text are the same ticket."""
    return " ".join(f"{title}\n{description}".lower().split())


def search_text(title: str, description: str) -> str:
    """The text an example is found by (and a ticket searches with)."""
    return normalised_text(title, description)[:SEARCH_TEXT_MAX_LENGTH]


def text_key(title: str, description: str) -> str:
    """sha256 of the normalised text: how evaluation keeps a ticket from being shown itself as an example."""
    return hashlib.sha256(normalised_text(title, description).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TriageExample:
    """A ticket with the category and priority a person gave it (sentiment and language when known)."""

    id: UUID
    owner_id: UUID | None
    title: str
    description: str
    category: str
    priority: Priority
    source: ExampleSource
    created_at: datetime
    sentiment: str | None = None
    language: str | None = None
    ticket_id: UUID | None = None
    """The corrected ticket (source `correction`)."""
    correction_id: UUID | None = None
    """The correction it was last set from (source `correction`)."""
    reference: str = ""
    """Where an imported example came from: the file and its row's id, or the client's own id."""
    similarity: float | None = None
    """Set when found by similarity: 0..1 (pg_trgm's trigram similarity to the ticket searched with)."""


@dataclass(frozen=True, slots=True)
class NeighbourVote:
    """How the examples found for a ticket vote on a label, each weighted by its similarity."""

    shares: dict[str, float]
    """label -> share of the total weight (sums to 1), empty when no example was found."""

    @classmethod
    def of(cls, labels: Sequence[tuple[str, float]]) -> "NeighbourVote":
        """From (label, similarity) pairs; a similarity of 0 or less still counts a little."""
        weights: dict[str, float] = {}
        for label, similarity in labels:
            weights[label] = weights.get(label, 0.0) + max(similarity, 0.01)
        total = sum(weights.values())
        return cls({label: weight / total for label, weight in weights.items()} if total else {})

    @classmethod
    def of_examples(
        cls, examples: Sequence[TriageExample], field: Literal["category", "priority"]
    ) -> "NeighbourVote | None":
        """The vote of these examples on their category or priority; None when there is no example."""
        if not examples:
            return None
        if field == "category":
            return cls.of([(e.category, e.similarity or 0.0) for e in examples])
        return cls.of([(e.priority.value, e.similarity or 0.0) for e in examples])

    @property
    def winner(self) -> str | None:
        """The label with the most weight (ties: the first found, which is the most similar)."""
        return max(self.shares, key=lambda label: self.shares[label]) if self.shares else None

    def share(self, label: str) -> float:
        return self.shares.get(label, 0.0)
