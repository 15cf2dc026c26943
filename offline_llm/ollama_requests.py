"""The request bodies the offline LLM reads (POST /api/chat and /api/show), validated as Ollama reads them.

Fields Ollama has but this server does not use (`tools`, `think`, `keep_alive`, images, other
`options` such as `num_ctx`) are accepted and ignored, as Ollama ignores what a model cannot do.
A request that fails validation is answered with HTTP 400 and `{"error": ...}` naming the field.
"""

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


def _null_is_empty(value: object) -> object:
    return "" if value is None else value


def _json_format(value: object) -> object:
    if value is None or value == "":
        return None
    if value == "json" or isinstance(value, dict):
        return value
    raise ValueError('`format` must be "json" or a JSON schema object')


def _stop_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _null_is_default(value: object) -> object:
    return {} if value is None else value


def _null_is_true(value: object) -> object:
    return True if value is None else value


def _null_is_false(value: object) -> object:
    return False if value is None else value


def _null_is_zero(value: object) -> object:
    return 0 if value is None else value


MAX_TOP_LOGPROBS = 20
"""Ollama's limit on `top_logprobs`."""


class ChatMessage(BaseModel):
    """One message of the conversation; a missing or null `content` is empty."""

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, BeforeValidator(_null_is_empty)] = ""


class ChatOptions(BaseModel):
    """The sampling `options` this server honours (Ollama's names); unset ones keep Ollama's defaults.

    `num_predict` <= 0 means "up to the server's token cap"; a larger one is lowered to that cap.
    """

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    mirostat: int | None = None
    mirostat_tau: float | None = None
    mirostat_eta: float | None = None
    stop: Annotated[list[str] | None, BeforeValidator(_stop_list)] = None


JsonFormat = Annotated[Literal["json"] | dict[str, Any] | None, BeforeValidator(_json_format)]
"""`format`: None (free text), "json" (any JSON object) or a JSON schema the answer must follow."""


class ChatRequest(BaseModel):
    """POST /api/chat. Ollama streams NDJSON unless `stream` is false; a null `stream` streams too.

    `logprobs` asks for the log-probability of every generated token, `top_logprobs` (0-20, as
    Ollama checks) for that many most likely tokens at each position too; without `logprobs`,
    `top_logprobs` does nothing, as in Ollama.
    """

    model: str = Field(default="", validate_default=True)
    messages: list[ChatMessage] = Field(min_length=1)
    format: JsonFormat = None
    options: Annotated[ChatOptions, BeforeValidator(_null_is_default)] = Field(default_factory=ChatOptions)
    stream: Annotated[bool, BeforeValidator(_null_is_true)] = True
    logprobs: Annotated[bool, BeforeValidator(_null_is_false)] = False
    top_logprobs: Annotated[int, BeforeValidator(_null_is_zero)] = 0

    @field_validator("model")
    @classmethod
    def _model_is_required(cls, value: str) -> str:
        if not value:
            raise ValueError("model is required")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs_in_range(cls, value: int) -> int:
        if not 0 <= value <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")  # Ollama's words
        return value

    @property
    def alternatives(self) -> int:
        """How many most likely tokens to report per position: `top_logprobs` when `logprobs` is on, else 0."""
        return self.top_logprobs if self.logprobs else 0


class ShowRequest(BaseModel):
    """POST /api/show; older clients send the model as `name`."""

    model: str = ""
    name: str = ""

    @model_validator(mode="after")
    def _model_is_required(self) -> Self:
        if not (self.model or self.name):
            raise ValueError("model is required")
        return self

    @property
    def requested(self) -> str:
        """`model`, else `name` (older clients); never empty, the validator rejects a body without either."""
        return self.model or self.name
