"""A deterministic `ChatBackend` for the offline LLM's tests: no model, no llama.cpp.

It answers like the fake Ollama (the keyword-rule triage of the ticket, category from the `format`
schema's enum) and streams the JSON in small pieces, so the HTTP app is tested on its protocol alone.
It records what reached it and how it was called (concurrency, thread, answers stopped early).
"""

import hashlib
import json
import math
import threading
import time
from collections.abc import Generator
from datetime import UTC, datetime

from offline_llm.backend import GeneratedToken, GenerationStats, ScoredToken, ServedModel, TextPiece
from offline_llm.errors import RequestError
from offline_llm.ollama_requests import ChatRequest
from tests.support.keyword_triage import schema_categories, ticket_of, triage_answer

KEYWORD_MODEL = "keyword-triage:1"


class KeywordTriageBackend:
    """Answers every chat with the keyword triage of its ticket, as JSON text in `piece_chars` pieces.

    `piece_delay_s` waits before each piece (to hold the generation slot); `fail_after_pieces` raises
    after that many pieces (a backend crash mid-answer); a `num_predict` option caps the pieces and
    makes `done_reason` "length". A `format` schema whose `type` is not "object" is refused, as a
    backend refuses a format it cannot turn into a grammar.

    With `logprobs`, every piece is a `TextPiece` of `token_chars`-character tokens, each as likely
    as `token_probability`; its alternatives are the token itself and made-up `<alt N>` tokens that
    share the rest of the probability.
    """

    def __init__(
        self,
        *,
        name: str = KEYWORD_MODEL,
        piece_chars: int = 16,
        piece_delay_s: float = 0.0,
        fail_after_pieces: int | None = None,
        token_chars: int = 4,
        token_probability: float = 0.9,
    ) -> None:
        self.name = name
        self.piece_chars = piece_chars
        self.token_chars = token_chars
        self.token_probability = token_probability
        self.piece_delay_s = piece_delay_s
        self.fail_after_pieces = fail_after_pieces
        self._lock = threading.Lock()
        self._requests: list[ChatRequest] = []
        self._active = 0
        self._max_active = 0
        self._threads: set[str] = set()
        self._stopped_early = 0

    # -- ChatBackend ---------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self.name

    def describe(self) -> ServedModel:
        """Fixed details; the digest is the sha256 of the name."""
        return ServedModel(
            name=self.name,
            display_name="Keyword triage (test backend)",
            family="keyword",
            parameter_size="0",
            quantization="none",
            size=len(self.name),
            digest=hashlib.sha256(self.name.encode()).hexdigest(),
            modified_at=datetime(2026, 1, 1, tzinfo=UTC),
        )

    def generate(self, request: ChatRequest) -> Generator[str, None, GenerationStats]:
        """The keyword answer's pieces; see the class docstring for the knobs."""
        started = time.monotonic_ns()
        with self._lock:
            self._requests.append(request)
            self._active += 1
            self._max_active = max(self._max_active, self._active)
            self._threads.add(threading.current_thread().name)
        finished = False
        try:
            if isinstance(request.format, dict) and request.format.get("type", "object") != "object":
                raise RequestError("cannot turn `format` into a grammar: this backend answers JSON objects only")
            messages = [message.model_dump() for message in request.messages]
            title, description = ticket_of(messages)
            content = json.dumps(triage_answer(title, description, schema_categories(request.format)))
            pieces = [content[i : i + self.piece_chars] for i in range(0, len(content), self.piece_chars)]
            cap = request.options.num_predict
            truncated = cap is not None and 0 < cap < len(pieces)
            if truncated:
                pieces = pieces[:cap]
            first_piece = time.monotonic_ns()
            for index, piece in enumerate(pieces):
                if self.fail_after_pieces is not None and index == self.fail_after_pieces:
                    raise RuntimeError("the keyword backend failed mid-answer")
                if self.piece_delay_s:
                    time.sleep(self.piece_delay_s)
                yield TextPiece(piece, self._tokens(piece, request.alternatives)) if request.logprobs else piece
            finished = True
            return GenerationStats(
                prompt_eval_count=sum(len(message.content.split()) for message in request.messages),
                eval_count=len(pieces),
                prompt_eval_duration=first_piece - started,
                eval_duration=time.monotonic_ns() - first_piece,
                done_reason="length" if truncated else "stop",
            )
        finally:
            with self._lock:
                self._active -= 1
                if not finished:
                    self._stopped_early += 1

    def _tokens(self, piece: str, alternatives: int) -> list[GeneratedToken]:
        logprob = math.log(self.token_probability)
        tokens = [piece[i : i + self.token_chars] for i in range(0, len(piece), self.token_chars)]
        return [GeneratedToken(token.encode(), logprob, _top(token, logprob, alternatives)) for token in tokens]

    # -- observations --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[ChatRequest]:
        """The chat requests that reached the backend, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def max_concurrent(self) -> int:
        """The most generations that ran at the same time."""
        with self._lock:
            return self._max_active

    @property
    def threads(self) -> set[str]:
        """Names of the threads `generate` ran on."""
        with self._lock:
            return set(self._threads)

    @property
    def stopped_early(self) -> int:
        """Generations that ended before their last piece (closed, refused or failed)."""
        with self._lock:
            return self._stopped_early


def _top(token: str, logprob: float, alternatives: int) -> tuple[ScoredToken, ...]:
    """The token and `alternatives - 1` made-up ones sharing the rest of the probability, most likely first."""
    if alternatives <= 0:
        return ()
    others = alternatives - 1
    rest = math.log(max(1e-12, -math.expm1(logprob)) / others) if others else 0.0
    top = [ScoredToken(token.encode(), logprob)] + [
        ScoredToken(f"<alt {n}>".encode(), rest) for n in range(1, others + 1)
    ]
    return tuple(sorted(top, key=lambda scored: -scored.logprob))
