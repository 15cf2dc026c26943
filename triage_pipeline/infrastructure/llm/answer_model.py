"""The pydantic model of a triage answer and its JSON schema (sent to Ollama as `format`)."""

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator

from triage_pipeline.domain.triage_answer import SUMMARY_MAX_LENGTH, Priority, Sentiment, TriageAnswer


class TriageAnswerBase(BaseModel):
    """Fields common to every prompt version; `category` is added per vocabulary."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    priority: Literal["low", "normal", "high", "urgent"]
    sentiment: Literal["negative", "neutral", "positive"]
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX_LENGTH, strip_whitespace=True)]
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]

    @field_validator("language", mode="before")
    @classmethod
    def _normalise_language(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("confidence", mode="before")
    @classmethod
    def _clamp_confidence(cls, value: Any) -> Any:
        # Grammar-constrained small models ignore numeric bounds; clamp rather than reject.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return min(1.0, max(0.0, float(value)))
        return value


@lru_cache(maxsize=32)
def answer_model(categories: tuple[str, ...]) -> type[TriageAnswerBase]:
    """The answer model whose `category` is one of `categories`."""
    category_type: Any = Literal[categories]
    return create_model("TriageAnswerModel", __base__=TriageAnswerBase, category=(category_type, ...))


def answer_json_schema(categories: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of the answer, fields in the order a model should write them."""
    schema = answer_model(tuple(categories)).model_json_schema()
    order = ["category", "priority", "sentiment", "language", "summary", "confidence"]
    schema["properties"] = {name: schema["properties"][name] for name in order}
    schema["required"] = order
    schema.pop("title", None)
    return schema


def to_domain(model: TriageAnswerBase) -> TriageAnswer:
    return TriageAnswer(
        category=str(getattr(model, "category")),  # noqa: B009 - added per vocabulary
        priority=Priority(model.priority),
        sentiment=Sentiment(model.sentiment),
        language=model.language,
        summary=model.summary,
        confidence=model.confidence,
    )
