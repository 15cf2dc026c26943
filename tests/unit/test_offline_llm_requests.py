"""The offline LLM reads chat requests as Ollama does, and answers to the served model's Ollama name."""

import pytest
from pydantic import ValidationError

from offline_llm.app import describe_validation_errors
from offline_llm.backend import answers_to
from offline_llm.ollama_requests import ChatRequest, ShowRequest

MESSAGES = [{"role": "user", "content": "hi"}]


def test_a_chat_streams_unless_told_not_to_and_null_fields_take_their_defaults() -> None:
    request = ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": None}], "stream": None, "options": None}
    )

    assert request.stream is True
    assert request.messages[0].content == ""
    assert request.options.num_predict is None
    assert ChatRequest.model_validate({"model": "m", "messages": MESSAGES, "stream": False}).stream is False


def test_an_empty_format_means_free_text_and_json_or_a_schema_are_kept() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}

    formats = [
        ChatRequest.model_validate({"model": "m", "messages": MESSAGES, "format": value}).format
        for value in ("", None, "json", schema)
    ]

    assert formats == [None, None, "json", schema]


def test_options_this_server_does_not_use_are_accepted_and_ignored() -> None:
    request = ChatRequest.model_validate({"model": "m", "messages": MESSAGES, "options": {"num_ctx": 2048}})

    assert request.options.model_dump(exclude_none=True) == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": MESSAGES}, "model is required"),
        ({"model": "m", "messages": MESSAGES, "format": ["json"]}, '`format` must be "json" or a JSON schema object'),
        ({"model": "m", "messages": []}, "messages: List should have at least 1 item after validation, not 0"),
        ({"model": "m", "messages": MESSAGES, "options": {"seed": 1.5}}, "options.seed:"),
    ],
)
def test_validation_errors_read_as_one_line_naming_the_field(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChatRequest.model_validate(body)

    # FastAPI reports body errors under a leading "body" location.
    errors = [dict(error, loc=("body", *error["loc"])) for error in caught.value.errors()]
    assert describe_validation_errors(errors).startswith(message)


def test_validation_errors_do_not_echo_the_request_text() -> None:
    with pytest.raises(ValidationError) as caught:
        ChatRequest.model_validate({"model": "m", "messages": [{"role": "robot", "content": "my secret ticket"}]})

    assert "secret" not in describe_validation_errors(caught.value.errors())


def test_show_takes_the_model_or_the_older_name_field() -> None:
    assert ShowRequest.model_validate({"model": "a:1"}).requested == "a:1"
    assert ShowRequest.model_validate({"name": "b:2"}).requested == "b:2"
    with pytest.raises(ValidationError, match="model is required"):
        ShowRequest.model_validate({})


def test_a_name_without_a_tag_means_latest_as_in_ollama() -> None:
    assert answers_to("smollm2:135m", "smollm2:135m")
    assert answers_to("tiny:latest", "tiny")
    assert not answers_to("smollm2:135m", "smollm2")
    assert not answers_to("smollm2:135m", "smollm2:360m")
    assert not answers_to("smollm2:135m", "")
