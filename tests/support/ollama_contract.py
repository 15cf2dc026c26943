"""What every Ollama-protocol server of the tests must answer (the fake Ollama and the offline LLM alike)."""

from datetime import datetime

import ollama

from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES
from triage_pipeline.infrastructure.llm.answer_model import answer_model

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
