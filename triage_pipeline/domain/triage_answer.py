"""The validated answer of one triage: what the LLM concluded about a ticket."""

from dataclasses import dataclass
from enum import StrEnum


class Priority(StrEnum):
    """How soon a ticket needs attention."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Sentiment(StrEnum):
    """The customer's tone."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


DEFAULT_CATEGORIES: tuple[str, ...] = (
    "bug",
    "outage",
    "billing",
    "account_access",
    "feature_request",
    "how_to",
    "security",
    "other",
)
SUMMARY_MAX_LENGTH = 400


@dataclass(frozen=True, slots=True)
class TriageAnswer:
    """Category, priority, sentiment, language, summary and confidence of one ticket."""

    category: str
    priority: Priority
    sentiment: Sentiment
    language: str
    summary: str
    confidence: float

    def as_dict(self) -> dict[str, object]:
        """The answer as plain JSON-ready values."""
        return {
            "category": self.category,
            "priority": self.priority.value,
            "sentiment": self.sentiment.value,
            "language": self.language,
            "summary": self.summary,
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "TriageAnswer":
        """Rebuild an answer stored by `as_dict` (trusted data, already validated once)."""
        return cls(
            category=str(data["category"]),
            priority=Priority(str(data["priority"])),
            sentiment=Sentiment(str(data["sentiment"])),
            language=str(data["language"]),
            summary=str(data["summary"]),
            confidence=float(str(data["confidence"])),
        )
