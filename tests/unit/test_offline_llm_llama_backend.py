"""The pure parts of the llama.cpp backend: the wall-clock limit and system messages for templates without them."""

from offline_llm.llama_backend import WallClockLimit, fold_system_into_user
from offline_llm.ollama_requests import ChatMessage


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
