"""What the HTTP app needs from a model, whatever runs it: llama.cpp in production, a test double in tests."""

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, Self

from offline_llm.ollama_requests import ChatRequest


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What /api/tags, /api/ps and /api/show tell about the one model a backend serves."""

    name: str
    """The Ollama name clients must ask for, e.g. "smollm2:135m"."""
    display_name: str
    family: str
    parameter_size: str
    quantization: str
    size: int
    """Bytes of the model file."""
    digest: str
    """sha256 of the model file, hex."""
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class ScoredToken:
    """A token of the vocabulary and its log-probability (natural log) at one position."""

    piece: bytes
    """The token's bytes as they appear in text (a special token's name, such as `<|im_end|>`)."""
    logprob: float


@dataclass(frozen=True, slots=True)
class GeneratedToken:
    """A token of the answer: its bytes, its log-probability, and the most likely tokens at its position."""

    piece: bytes
    """The token's bytes in the answer; the pieces of all tokens, in order, spell the answer."""
    logprob: float
    top: tuple[ScoredToken, ...] = ()
    """Most likely first; empty unless the request asked for `top_logprobs`."""


class TextPiece(str):
    """A piece of the answer's text that also carries the tokens that wrote it (`logprobs` requests).

    It is a `str` so that it travels as any text piece does (the generation worker queues text
    pieces to the event loop, unchanged); the app reads `tokens` from it when the request asked for
    logprobs. A token that ends inside a multi-byte character rides with the piece that completes it.
    """

    tokens: tuple[GeneratedToken, ...]

    def __new__(cls, text: str, tokens: Iterable[GeneratedToken] = ()) -> Self:
        piece = super().__new__(cls, text)
        piece.tokens = tuple(tokens)
        return piece


def tokens_of(piece: str) -> tuple[GeneratedToken, ...]:
    """The tokens a piece carries; none for a plain `str` (a request without logprobs)."""
    return piece.tokens if isinstance(piece, TextPiece) else ()


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """The figures of one finished answer: token counts and nanoseconds, as Ollama reports them."""

    prompt_eval_count: int
    eval_count: int
    prompt_eval_duration: int
    eval_duration: int
    done_reason: Literal["stop", "length"] = "stop"
    """"length": the token cap or the wall-clock limit cut the answer off."""
    tokens: tuple[GeneratedToken, ...] = ()
    """Tokens of a `logprobs` request that no piece carried: those a stop text cut off part of."""


def answers_to(served_name: str, requested: str) -> bool:
    """Whether a request for `requested` is served by `served_name`: Ollama reads a name without a tag as `:latest`."""
    return requested == served_name or (":" not in requested and f"{requested}:latest" == served_name)


class ChatBackend(Protocol):
    """A loaded model that answers chats. The app runs `generate` on one thread, one call at a time."""

    @property
    def model_name(self) -> str:
        """The Ollama name of the served model (`describe().name`), cheap to read on every request."""
        ...

    def describe(self) -> ServedModel:
        """The served model's details; the first call may be slow (a checksum of the model file)."""
        ...

    def generate(self, request: ChatRequest) -> Generator[str, None, GenerationStats]:
        """The answer's text pieces as they are produced; the generator returns the figures when done.

        When `request.logprobs` is on, each piece is a `TextPiece` carrying the tokens that wrote it
        (with `request.alternatives` most likely tokens each), so that every generated token of the
        answer is carried once, by a piece or by the figures.

        Raise `RequestError` before the first piece for a request that cannot be served (a `format`
        that is no usable schema, a prompt over the context size). Closing the generator early (the
        client went away) must stop generating.
        """
        ...
