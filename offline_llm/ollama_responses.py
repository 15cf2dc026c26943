"""The JSON bodies Ollama answers with, as pydantic models.

The offline LLM sends them and so does the fake Ollama of the tests (`tests/support/fake_ollama.py`):
one definition keeps both in step with what the official `ollama` client and the project's
`OllamaClient` read. Durations are nanoseconds and counts are tokens, as in Ollama.
"""

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, NonNegativeInt


def created_at_now() -> str:
    """Ollama's `created_at`: the current UTC time in RFC 3339 with microseconds and a `Z`."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _omitted_when_none() -> Any:
    """A field that defaults to None and is then left out of the JSON, as Go's `omitempty` does."""
    return Field(default=None, exclude_if=lambda value: value is None)


class AssistantMessage(BaseModel):
    """The model's message; in a stream, one piece of it per line."""

    role: Literal["assistant"] = "assistant"
    content: str


class TokenLogprob(BaseModel):
    """A token and its log-probability (natural log).

    `bytes` are the token's UTF-8 bytes: exact also for a token that ends inside a multi-byte
    character, whose `token` text then has a replacement character.
    """

    token: str
    logprob: float
    bytes: list[int] | None = _omitted_when_none()


class Logprob(TokenLogprob):
    """One generated token of `logprobs`, with the most likely tokens at its position when asked for."""

    top_logprobs: list[TokenLogprob] | None = _omitted_when_none()


class ChatChunk(BaseModel):
    """One NDJSON line of a streaming chat before the last: a piece of the answer.

    `logprobs` (when asked for) holds the tokens that wrote this piece, one entry per token.
    """

    model: str
    created_at: str = Field(default_factory=created_at_now)
    message: AssistantMessage
    done: Literal[False] = False
    logprobs: list[Logprob] | None = _omitted_when_none()


class ChatResponse(BaseModel):
    """A non-streaming chat answer, or the last line of a stream (whose `message.content` is then empty).

    `done_reason` is "length" when the token cap or the time limit cut the answer off. `logprobs`
    (when asked for) has one entry per generated token of the whole answer; on the last line of a
    stream, only those of tokens no earlier line carried (usually none).
    """

    model: str
    created_at: str = Field(default_factory=created_at_now)
    message: AssistantMessage
    done: Literal[True] = True
    done_reason: str = "stop"
    total_duration: NonNegativeInt
    load_duration: NonNegativeInt = 0
    prompt_eval_count: NonNegativeInt
    prompt_eval_duration: NonNegativeInt
    eval_count: NonNegativeInt
    eval_duration: NonNegativeInt
    logprobs: list[Logprob] | None = _omitted_when_none()


class ModelDetails(BaseModel):
    """The `details` of a model in /api/tags, /api/ps and /api/show."""

    parent_model: str = ""
    format: str = "gguf"
    family: str
    families: list[str]
    parameter_size: str
    quantization_level: str


class ModelEntry(BaseModel):
    """One model of /api/tags; clients use `model` (older ones `name`) as the name to ask for."""

    name: str
    model: str
    modified_at: datetime
    size: NonNegativeInt
    digest: str
    details: ModelDetails


class RunningModel(ModelEntry):
    """One model of /api/ps: loaded in memory; a zero `expires_at` means it stays loaded."""

    expires_at: datetime = datetime(1, 1, 1, tzinfo=UTC)
    size_vram: NonNegativeInt = 0


class TagsResponse(BaseModel):
    """GET /api/tags: the models the server can answer with."""

    models: list[ModelEntry]


class PsResponse(BaseModel):
    """GET /api/ps: the models loaded right now."""

    models: list[RunningModel]


class VersionResponse(BaseModel):
    """GET /api/version."""

    version: str


class ShowResponse(BaseModel):
    """POST /api/show: a model's details; `model_info` holds GGUF metadata such as `general.name`."""

    details: ModelDetails
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    model_info: dict[str, Any]


class ErrorResponse(BaseModel):
    """Every error body of Ollama: `{"error": "..."}` (also a line of a stream that fails midway)."""

    error: str

    @classmethod
    def model_not_found(cls, name: str) -> Self:
        """Ollama's 404 for a model it does not have; clients look for "not found" in it."""
        return cls(error=f'model "{name}" not found, try pulling it first')
