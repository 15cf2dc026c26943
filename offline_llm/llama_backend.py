"""The production backend: a GGUF model run on CPU by llama-cpp-python.

llama_cpp is imported when a model is loaded, not when this module is, so everything else (and the
tests) works without it. llama.cpp contexts are not thread-safe and its OpenMP thread pool belongs to
the calling thread: the app calls `generate` from one worker thread only (`generation_worker`).

Log-probabilities (`logprobs` requests) are computed here from the logits of each sampling step, not
by llama-cpp-python's own `logprobs`: those need `logits_all=True`, which keeps a context-sized copy
of the logits (n_ctx x vocabulary floats: 0.8 GB for SmolLM2, 4 GB for Gemma 3) and sorts the whole
vocabulary in Python at every token, making an answer about 3.4 times slower. Reading the one row of
logits that each step samples from costs a few percent.
"""

import hashlib
import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Generator, Sequence
from datetime import UTC, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offline_llm.backend import GeneratedToken, GenerationStats, ScoredToken, ServedModel, TextPiece
from offline_llm.catalog import MODELS, ModelSpec
from offline_llm.errors import OfflineLlmUnavailable, RequestError
from offline_llm.grammar import json_gbnf, schema_to_gbnf
from offline_llm.model_files import INSTALL_HINT, locate_model, project_cache_dir
from offline_llm.ollama_requests import ChatMessage, ChatRequest, JsonFormat
from offline_llm.sampling import sampling_for

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512
DEFAULT_MAX_SECONDS = 30.0
DEFAULT_CTX = 4096
# Tokens kept free at the end of the context: a prompt needs room for at least a short answer.
_CTX_MARGIN = 8


def default_threads() -> int:
    """CPU threads for llama.cpp: half the cores (1 on 2 cores), at most 4.

    On 2 cores a second thread is barely faster alone, and several times slower (tens of seconds per
    answer) as soon as another process (Postgres, Dagster, tests) wants a core: llama.cpp's threads
    wait for each other at every step.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def import_llama_cpp() -> Any:
    """The llama_cpp module, or `OfflineLlmUnavailable` saying how to install it."""
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise OfflineLlmUnavailable(f"llama-cpp-python is not installed; {INSTALL_HINT}") from exc


class WallClockLimit:
    """A llama.cpp stopping criterion: stop once `seconds` have passed since it was made.

    It also notes when the first token came, which ends prompt evaluation in Ollama's figures.
    """

    def __init__(self, seconds: float, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self.started = clock()
        self._deadline = self.started + round(seconds * 1e9)
        self.first_token: int | None = None
        self.hit = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        """Called by llama.cpp after each token; True stops generating."""
        now = self._clock()
        if self.first_token is None:
            self.first_token = now
        if now > self._deadline:
            self.hit = True
        return self.hit


def step_logprobs(
    logits: npt.NDArray[np.floating[Any]], token: int, alternatives: int
) -> tuple[float, list[tuple[int, float]]]:
    """The log-probability of `token` under the softmax of one step's `logits`, and the `alternatives`
    most likely token ids with theirs, most likely first."""
    shifted = logits - logits.max()  # a copy: the logits stay as llama.cpp left them
    log_total = float(np.log(np.exp(shifted).sum(dtype=np.float64)))
    chosen = float(shifted[token]) - log_total
    best: list[tuple[int, float]] = []
    # A few argmax passes beat a partition of the whole vocabulary (0.5 ms per token for 49k tokens).
    for _ in range(min(alternatives, len(shifted))):
        index = int(shifted.argmax())
        best.append((index, float(shifted[index]) - log_total))
        shifted[index] = -np.inf
    return chosen, best


class AnswerTokens:
    """The tokens of one answer as they are sampled, handed out to the text pieces that carry them.

    llama-cpp-python streams text, not tokens: it holds text back while it might be the start of a
    stop text or an incomplete UTF-8 character, so a piece can come out after several tokens. A
    piece carries the tokens whose bytes it completes.
    """

    def __init__(self) -> None:
        self._tokens: list[GeneratedToken] = []
        self._starts: list[int] = []
        self._length = 0
        self._handed_out = 0

    def add(self, token: GeneratedToken) -> None:
        """Note the next token of the answer."""
        self._tokens.append(token)
        self._starts.append(self._length)
        self._length += len(token.piece)

    def through(self, length: int) -> tuple[GeneratedToken, ...]:
        """The tokens not handed out yet that end within the first `length` bytes of the answer."""
        end = self._handed_out
        while end < len(self._tokens) and self._starts[end] + len(self._tokens[end].piece) <= length:
            end += 1
        return self._hand_out(end)

    def remaining(self, length: int) -> tuple[GeneratedToken, ...]:
        """The tokens not handed out yet that start within the first `length` bytes of the answer.

        At the end of an answer of `length` bytes: a token that a stop text cut is part of the
        answer; a token after the cut never reached it.
        """
        end = self._handed_out
        while end < len(self._tokens) and self._starts[end] < length:
            end += 1
        return self._hand_out(end)

    def _hand_out(self, end: int) -> tuple[GeneratedToken, ...]:
        handed = tuple(self._tokens[self._handed_out : end])
        self._handed_out = max(self._handed_out, end)
        return handed


@cache
def _recording_llama(llama_cpp: Any) -> Any:
    """`llama_cpp.Llama` that shows every sampled token and the logits it was sampled from to `on_sample`.

    `Llama.generate` samples through `self.sample`; the logits of the step stay in the context until
    the token is evaluated, so the hook reads them right after sampling.
    """

    class RecordingLlama(llama_cpp.Llama):  # type: ignore[misc]  # llama_cpp is imported at run time
        on_sample: Callable[[int, npt.NDArray[np.float32]], None] | None = None

        def sample(self, *args: Any, **kwargs: Any) -> Any:
            token = super().sample(*args, **kwargs)
            if self.on_sample is not None:
                idx = kwargs.get("idx")
                row = -1 if idx is None else idx - self.n_tokens  # as `Llama.sample` reads it
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, row), shape=(self.n_vocab(),))
                self.on_sample(int(token), logits)
            return token

    return RecordingLlama


def fold_system_into_user(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The messages for a chat format without a system role: system text goes before the first user turn."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    out = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
    if system:
        first_user = next((m for m in out if m["role"] == "user"), None)
        if first_user is None:
            out.insert(0, {"role": "user", "content": system})
        else:
            first_user["content"] = f"{system}\n\n{first_user['content']}"
    return out


class LlamaCppBackend:
    """One loaded GGUF model (`ChatBackend`)."""

    def __init__(
        self,
        spec: ModelSpec,
        model_path: Path,
        *,
        n_ctx: int = DEFAULT_CTX,
        n_threads: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        llama_cpp = import_llama_cpp()
        self.spec = spec
        self.model_path = model_path
        self.max_tokens = max_tokens
        self.max_seconds = max_seconds
        self.llama_cpp_version = str(getattr(llama_cpp, "__version__", "unknown"))
        self._llama_cpp = llama_cpp
        self._chat_format: Any = importlib.import_module("llama_cpp.llama_chat_format")
        self._grammars: dict[str, Any] = {}
        started = time.monotonic_ns()
        self.llm: Any = _recording_llama(llama_cpp)(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads or default_threads(),
            chat_format=spec.chat_format,
            verbose=False,
        )
        self.n_ctx = int(self.llm.n_ctx())
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.load_duration = time.monotonic_ns() - started
        self._formatter = self._make_formatter()

    @property
    def model_name(self) -> str:
        return self.spec.ollama_name

    def describe(self) -> ServedModel:
        """The model's details; the first call hashes the model file (a fraction of a second)."""
        return self._described

    @cached_property
    def _described(self) -> ServedModel:
        stat = self.model_path.stat()
        sha = hashlib.sha256()
        with self.model_path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return ServedModel(
            name=self.spec.ollama_name,
            display_name=self.spec.display_name,
            family=self.spec.family,
            parameter_size=self.spec.parameter_size,
            quantization=self.spec.quantization,
            size=stat.st_size,
            digest=sha.hexdigest(),
            modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
        )

    def generate(self, request: ChatRequest) -> Generator[str, None, GenerationStats]:
        """The answer's pieces as llama.cpp writes them, within the token cap and the wall-clock limit."""
        grammar = self._grammar(request.format)
        messages = (
            fold_system_into_user(request.messages)
            if self.spec.system_in_user
            else [{"role": m.role, "content": m.content} for m in request.messages]
        )
        sampling = sampling_for(request.options, self.max_tokens)
        formatted = self._formatter(messages=messages)
        prompt = list(
            self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
        )
        if len(prompt) >= self.n_ctx - _CTX_MARGIN:
            raise RequestError(f"the prompt has {len(prompt)} tokens, over this server's context of {self.n_ctx}")
        stop = list(sampling.stop)
        if formatted.stop:
            stop += [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop)
        limit = WallClockLimit(self.max_seconds)
        tokens = AnswerTokens() if request.logprobs else None
        stream = self.llm.create_completion(
            prompt=prompt,
            max_tokens=min(sampling.max_tokens, self.n_ctx - len(prompt)),
            stop=stop,
            stream=True,
            grammar=grammar,
            stopping_criteria=self._llama_cpp.StoppingCriteriaList([limit]),
            **sampling.arguments,
        )
        text: list[str] = []
        finish: str | None = None
        written = 0  # bytes of the answer so far
        try:
            self.llm.on_sample = None if tokens is None else self._recorder(tokens, request.alternatives)
            for chunk in stream:
                choice = chunk["choices"][0]
                piece = str(choice.get("text") or "")
                finish = choice.get("finish_reason") or finish
                if piece:
                    text.append(piece)
                    if tokens is None:
                        yield piece
                    else:
                        written += len(piece.encode("utf-8"))
                        yield TextPiece(piece, tokens.through(written))
        finally:
            stream.close()  # also when the client went away and the worker closed this generator
            self.llm.on_sample = None
        ended = time.monotonic_ns()
        content = "".join(text)
        first = limit.first_token or ended
        stats = GenerationStats(
            prompt_eval_count=len(prompt),
            eval_count=len(self.llm.tokenize(content.encode("utf-8"), add_bos=False, special=True)),
            prompt_eval_duration=first - limit.started,
            eval_duration=ended - first,
            done_reason="length" if limit.hit or finish == "length" else "stop",
            tokens=() if tokens is None else tokens.remaining(written),
        )
        if limit.hit:
            logger.warning(
                "generation stopped at the wall-clock limit",
                extra={"fields": {"max_seconds": self.max_seconds, "eval_count": stats.eval_count}},
            )
        return stats

    def _recorder(self, tokens: AnswerTokens, alternatives: int) -> Callable[[int, npt.NDArray[np.float32]], None]:
        """The `on_sample` hook that adds each sampled token of the answer to `tokens`.

        The logprobs are those of the model's own distribution at each step: the softmax of the raw
        logits, before repetition penalties, the `format` grammar, temperature and top-k/top-p reshape
        it for sampling. That is what llama.cpp's logits give, what llama-cpp-python's own `logprobs`
        report and what Ollama's runners report. Under a grammar a token can therefore have a low
        logprob: the model leaned towards something the grammar forbids.
        """

        def record(token: int, logits: npt.NDArray[np.float32]) -> None:
            if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
                return  # the end of the turn is not part of the answer (Ollama leaves it out too)
            logprob, best = step_logprobs(logits, token, alternatives)
            top = tuple(ScoredToken(self._piece(index, special=True), value) for index, value in best)
            tokens.add(GeneratedToken(self._piece(token), logprob, top))

        return record

    def _piece(self, token: int, *, special: bool = False) -> bytes:
        """A token's bytes; `special` names control tokens (`<|im_end|>`) that the answer's text leaves out."""
        return bytes(self.llm.detokenize([token], special=special))

    def _make_formatter(self) -> Callable[..., Any]:
        if self.spec.chat_format == "gemma":
            return self._chat_format.format_gemma  # type: ignore[no-any-return]
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise OfflineLlmUnavailable(f"{self.model_path} has no chat template")

        def token_text(token: int) -> str:
            return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", "replace")

        return self._chat_format.Jinja2ChatFormatter(  # type: ignore[no-any-return]
            template=template,
            eos_token=token_text(self.llm.token_eos()),
            bos_token=token_text(self.llm.token_bos()),
            stop_token_ids=[self.llm.token_eos()],
        )

    def _grammar(self, fmt: JsonFormat) -> Any:
        """The compiled grammar of `format` (cached per distinct format), None for free text."""
        if fmt is None:
            return None
        key = "json" if fmt == "json" else json.dumps(fmt, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            try:
                gbnf = json_gbnf() if fmt == "json" else schema_to_gbnf(fmt)
                grammar = self._llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
            except Exception as exc:
                raise RequestError(f"cannot turn `format` into a grammar: {exc}") from exc
            self._grammars[key] = grammar
        return grammar


def load_backend(model: str, cache_dir: Path | None = None, **options: Any) -> LlamaCppBackend:
    """Locate (assemble once) the GGUF of `model` (a `catalog.MODELS` key) and load it.

    `options` are `LlamaCppBackend`'s: n_ctx, n_threads, max_tokens, max_seconds.
    """
    if model not in MODELS:
        raise OfflineLlmUnavailable(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    import_llama_cpp()
    spec = MODELS[model]
    return LlamaCppBackend(spec, locate_model(spec, cache_dir or project_cache_dir()), **options)
