"""What the tests send to an Ollama-protocol server, and what every one of them must answer (the fake
Ollama and the offline LLM alike)."""

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import ollama

from triage_pipeline.domain.prompt import Prompt, RenderedPrompt
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES
from triage_pipeline.infrastructure.llm.answer_model import answer_json_schema, answer_model

SCHEMA = answer_json_schema(DEFAULT_CATEGORIES)
MESSAGES = [
    {"role": "system", "content": "You triage support tickets."},
    {
        "role": "user",
        "content": 'Triage this ticket.\n<ticket>\n{"title": "Site is down", '
        '"description": "Everyone gets a 502 since 9am"}\n</ticket>',
    },
]
OPTIONS = {"temperature": 0.0, "seed": 42, "num_predict": 256}
DURATION_FIELDS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def assert_complete_chat_response(response: ollama.ChatResponse, model: str) -> None:
    """Every field a real Ollama sends with a finished answer, and an answer that is a valid triage."""
    assert response.model == model
    assert response.created_at is not None
    datetime.fromisoformat(response.created_at)
    assert response.message.role == "assistant"
    assert response.done is True
    assert response.done_reason == "stop"
    assert response.prompt_eval_count is not None and response.prompt_eval_count > 0
    assert response.eval_count is not None and response.eval_count > 0
    for field in DURATION_FIELDS:
        assert isinstance(response[field], int), field
    assert response.total_duration is not None and response.total_duration > 0
    assert response.message.content is not None
    answer = answer_model(DEFAULT_CATEGORIES).model_validate_json(response.message.content)
    assert answer.model_dump()["category"] == "outage"


def assert_logprobs_spell_the_answer(content: str, logprobs: Sequence[Mapping[str, Any]], top_logprobs: int) -> None:
    """Ollama's `logprobs` entries (as JSON objects) of an answer: one per token, logprobs of a
    distribution, `bytes` that spell `content` in order, and `top_logprobs` alternatives each
    (left out when none were asked for), most likely first."""
    assert logprobs, "no logprobs"
    assert b"".join(bytes(entry["bytes"]) for entry in logprobs) == content.encode()
    for entry in logprobs:
        assert entry["token"] == bytes(entry["bytes"]).decode("utf-8", "replace")
        assert -math.inf < entry["logprob"] <= 0.0
        if top_logprobs == 0:
            assert "top_logprobs" not in entry
            continue
        alternatives = entry["top_logprobs"]
        assert len(alternatives) == top_logprobs
        values = [alt["logprob"] for alt in alternatives]
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(value) for value in values) <= 1.0 + 1e-9


def rendered(
    title: str = "Charged twice for my order",
    description: str = "My card shows two charges for invoice 1042, please refund one.",
    categories: tuple[str, ...] = DEFAULT_CATEGORIES,
) -> RenderedPrompt:
    """A prompt rendered the way production renders it (ticket as JSON inside <ticket> tags)."""
    prompt = Prompt(
        id=uuid4(),
        name="triage",
        version=1,
        system_text="You triage support tickets. Answer with one JSON object.",
        user_template="Triage this ticket.\n<ticket>\n{ticket}\n</ticket>",
        output_schema=answer_json_schema(categories),
        model_options=OPTIONS,
        is_active=True,
        created_at=datetime.now(UTC),
        categories=categories,
    )
    return prompt.render(title, description)
