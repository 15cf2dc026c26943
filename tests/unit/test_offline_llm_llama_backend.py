"""The llama.cpp backend: its pure parts (the wall-clock limit, system messages for templates without them,
token log-probabilities), and one real generation with logprobs (skipped without llama.cpp or the model)."""

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from offline_llm.backend import GeneratedToken, GenerationStats, TextPiece
from offline_llm.errors import OfflineLlmUnavailable
from offline_llm.llama_backend import AnswerTokens, WallClockLimit, fold_system_into_user, load_backend, step_logprobs
from offline_llm.ollama_requests import ChatMessage, ChatRequest
from tests.support.ollama_contract import MESSAGES, OPTIONS, SCHEMA


class FakeClock:
    """A monotonic clock in nanoseconds that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def test_the_wall_clock_limit_stops_generation_once_its_seconds_have_passed() -> None:
    clock = FakeClock()
    limit = WallClockLimit(2.0, clock=clock)

    clock.now += 500_000_000
    first = limit(None, None)
    clock.now += 1_500_000_000
    at_the_limit = limit(None, None)
    clock.now += 1
    past_it = limit(None, None)

    assert (first, at_the_limit, past_it) == (False, False, True)
    assert limit.hit is True
    assert limit.first_token == 1_000 + 500_000_000  # the end of prompt evaluation in Ollama's figures


def test_system_text_goes_before_the_first_user_turn() -> None:
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Triage this."),
        ChatMessage(role="assistant", content="{}"),
        ChatMessage(role="system", content="Answer in JSON."),
        ChatMessage(role="user", content="Again."),
    ]

    assert fold_system_into_user(messages) == [
        {"role": "user", "content": "Be brief.\n\nAnswer in JSON.\n\nTriage this."},
        {"role": "assistant", "content": "{}"},
        {"role": "user", "content": "Again."},
    ]


def test_system_text_alone_becomes_the_user_turn() -> None:
    assert fold_system_into_user([ChatMessage(role="system", content="Hello")]) == [
        {"role": "user", "content": "Hello"}
    ]


def test_step_logprobs_are_the_log_softmax_of_the_logits_with_the_most_likely_first() -> None:
    logits = np.array([1.0, 3.0, 0.5, 2.0, -1.0], dtype=np.float32)
    expected = logits.astype(np.float64) - math.log(np.exp(logits.astype(np.float64)).sum())

    chosen, best = step_logprobs(logits, 2, 3)
    _, none = step_logprobs(logits, 2, 0)
    _, all_of_them = step_logprobs(logits, 2, 20)

    assert chosen == pytest.approx(expected[2], abs=1e-6)
    assert [index for index, _ in best] == [1, 3, 0]
    assert [value for _, value in best] == pytest.approx([expected[1], expected[3], expected[0]], abs=1e-6)
    assert none == []
    assert len(all_of_them) == len(logits)
    assert logits.tolist() == [1.0, 3.0, 0.5, 2.0, -1.0]  # llama.cpp's logits are left as they were


def test_step_logprobs_stay_finite_for_large_logits() -> None:
    chosen, [(top, value)] = step_logprobs(np.array([1000.0, 990.0], dtype=np.float32), 1, 1)

    assert chosen == pytest.approx(-10.0, abs=1e-3)
    assert top == 0
    assert value == pytest.approx(0.0, abs=1e-3)


def token(text: str) -> GeneratedToken:
    return GeneratedToken(text.encode(), -0.1)


def test_pieces_carry_the_tokens_whose_bytes_they_complete() -> None:
    tokens = AnswerTokens()
    for text in ('{"', "cat", "é", "gory"):
        tokens.add(token(text))

    first = tokens.through(len('{"c'))  # a piece that ends inside "cat" carries only what it completed
    second = tokens.through(len('{"caté'.encode()))
    third = tokens.through(len('{"catégory'.encode()))

    assert [t.piece for t in first] == [b'{"']
    assert [t.piece for t in second] == [b"cat", "é".encode()]
    assert [t.piece for t in third] == [b"gory"]
    assert tokens.through(100) == ()


def test_at_the_end_a_token_cut_by_a_stop_text_is_kept_and_later_ones_are_dropped() -> None:
    tokens = AnswerTokens()
    for text in ('{"a": 1}', "\n\nST", "OP"):
        tokens.add(token(text))
    answer = len('{"a": 1}\n')  # the stop text "\nSTOP" cut the second token

    handed = tokens.through(answer) + tokens.remaining(answer)

    assert [t.piece for t in handed] == [b'{"a": 1}', b"\n\nST"]


# -- a real generation ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2() -> Iterator[Any]:
    pytest.importorskip("llama_cpp")
    try:
        yield load_backend("smollm2", n_threads=1)
    except OfflineLlmUnavailable as exc:
        pytest.skip(f"the smollm2 model is not installed: {exc}")


def test_a_real_generation_with_logprobs_has_one_per_generated_token_spelling_the_answer(smollm2: Any) -> None:
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(smollm2.llm.model)
    sampled: list[int] = []
    record_sample = smollm2.llm.sample

    def count_sample(*args: Any, **kwargs: Any) -> Any:
        token = record_sample(*args, **kwargs)
        if not llama_cpp.llama_vocab_is_eog(vocab, token):
            sampled.append(int(token))
        return token

    request = ChatRequest.model_validate(
        {"model": "smollm2:135m", "messages": MESSAGES, "format": SCHEMA, "options": OPTIONS}
        | {"logprobs": True, "top_logprobs": 3}
    )
    smollm2.llm.sample = count_sample
    try:
        pieces: list[str] = []
        generation = smollm2.generate(request)
        while True:
            try:
                pieces.append(next(generation))
            except StopIteration as done:
                stats: GenerationStats = done.value
                break
    finally:
        del smollm2.llm.sample

    content = "".join(pieces)
    assert all(isinstance(piece, TextPiece) for piece in pieces)
    tokens = [t for piece in pieces if isinstance(piece, TextPiece) for t in piece.tokens] + list(stats.tokens)
    assert len(tokens) == len(sampled)  # one logprob per generated token
    assert b"".join(t.piece for t in tokens) == content.encode()
    assert [t.piece for t in tokens] == [bytes(smollm2.llm.detokenize([id_])) for id_ in sampled]
    assert all(t.logprob <= 0.0 and len(t.top) == 3 for t in tokens)
    assert all(t.top[0].logprob >= t.logprob for t in tokens)  # the raw distribution: the chosen token need not lead
