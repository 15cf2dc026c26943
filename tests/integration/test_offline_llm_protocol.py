"""The offline LLM speaks Ollama's protocol: its app, served by a real uvicorn over a deterministic backend
(no llama.cpp), driven by the official `ollama` Python client and by the project's `OllamaClient`."""

import json
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import ollama
import pytest

from offline_llm.app import SERVER_VERSION
from tests.support.keyword_backend import KEYWORD_MODEL, KeywordTriageBackend
from tests.support.live_offline_llm import live_offline_llm
from tests.support.ollama_contract import (
    MESSAGES,
    SCHEMA,
    assert_complete_chat_response,
    assert_logprobs_spell_the_answer,
    rendered,
)
from triage_pipeline.domain.llm_errors import ModelNotFound
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES
from triage_pipeline.infrastructure.llm.answer_model import answer_json_schema, answer_model
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient

MODEL = KEYWORD_MODEL
OTHER_MODEL = "llama3.2:1b"


@pytest.fixture
def backend() -> KeywordTriageBackend:
    return KeywordTriageBackend()


@pytest.fixture
def url(backend: KeywordTriageBackend) -> Iterator[str]:
    with live_offline_llm(backend) as base_url:
        yield base_url


@pytest.fixture
def official(url: str) -> Iterator[ollama.Client]:
    with ollama.Client(host=url, timeout=10.0) as client:
        yield client


def chat_body(**fields: Any) -> dict[str, Any]:
    """A valid non-streaming chat request body, with `fields` replacing or adding fields."""
    return {"model": MODEL, "messages": MESSAGES, "stream": False} | fields


# -- chat ----------------------------------------------------------------------------------------------


def test_non_streaming_chat_has_every_field_of_an_ollama_chat_response(official: ollama.Client) -> None:
    response = official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=False)

    assert_complete_chat_response(response, MODEL)


def test_streaming_chat_sends_ndjson_chunks_that_join_into_the_answer(official: ollama.Client) -> None:
    parts = list(official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=True))

    assert len(parts) > 2
    assert all(part.done is False for part in parts[:-1])
    final = parts[-1]
    assert final.done is True and final.done_reason == "stop"
    assert final.message.content == ""
    assert final.eval_count == len(parts) - 1 and final.prompt_eval_count is not None
    content = "".join(part.message.content or "" for part in parts)
    assert answer_model(DEFAULT_CATEGORIES).model_validate_json(content).model_dump()["category"] == "outage"


def test_chat_streams_chunked_ndjson_when_the_request_omits_stream(url: str) -> None:
    # Ollama's own default: no `stream` field means an NDJSON stream.
    response = httpx.post(f"{url}/api/chat", json={"model": MODEL, "messages": MESSAGES})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["transfer-encoding"] == "chunked"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) > 1 and lines[-1]["done"] is True
    assert all(line["done"] is False and line["message"]["role"] == "assistant" for line in lines[:-1])


def test_format_schema_options_and_messages_reach_the_backend_as_sent(
    official: ollama.Client, backend: KeywordTriageBackend
) -> None:
    schema = answer_json_schema(("incident", "question"))
    options = {"temperature": 0, "seed": 42, "num_predict": 256, "stop": ["\n\n"], "num_ctx": 2048}

    response = official.chat(model=MODEL, messages=MESSAGES, format=schema, options=options, stream=False)

    [received] = backend.requests
    assert received.format == schema
    assert [(m.role, m.content) for m in received.messages] == [(m["role"], m["content"]) for m in MESSAGES]
    assert (received.options.temperature, received.options.seed, received.options.num_predict) == (0, 42, 256)
    assert received.options.stop == ["\n\n"]
    assert response.message.content is not None
    assert json.loads(response.message.content)["category"] in ("incident", "question")


def test_format_json_reaches_the_backend_and_no_format_reaches_it_as_none(
    official: ollama.Client, backend: KeywordTriageBackend
) -> None:
    official.chat(model=MODEL, messages=MESSAGES, format="json", stream=False)
    official.chat(model=MODEL, messages=MESSAGES, stream=False)

    assert [request.format for request in backend.requests] == ["json", None]


def test_an_answer_cut_by_num_predict_reports_done_reason_length(official: ollama.Client) -> None:
    response = official.chat(model=MODEL, messages=MESSAGES, options={"num_predict": 2}, stream=False)

    assert response.done_reason == "length"
    assert response.eval_count == 2


# -- logprobs ------------------------------------------------------------------------------------------


def test_a_whole_answer_has_one_logprob_per_token_when_asked(url: str, backend: KeywordTriageBackend) -> None:
    plain = httpx.post(f"{url}/api/chat", json=chat_body(format=SCHEMA)).json()
    asked = httpx.post(f"{url}/api/chat", json=chat_body(format=SCHEMA, logprobs=True, top_logprobs=3)).json()

    content = asked["message"]["content"]
    assert "logprobs" not in plain  # left out unless asked for, as Ollama does
    assert_logprobs_spell_the_answer(content, asked["logprobs"], top_logprobs=3)
    assert len(asked["logprobs"]) == math.ceil(len(content) / backend.token_chars)
    assert [(request.logprobs, request.top_logprobs) for request in backend.requests] == [(False, 0), (True, 3)]


def test_each_streamed_line_carries_the_logprobs_of_its_piece(url: str) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "logprobs": True}

    with httpx.stream("POST", f"{url}/api/chat", json=body) as response:
        lines = [json.loads(line) for line in response.iter_lines()]

    assert len(lines) > 2
    for line in lines[:-1]:
        assert_logprobs_spell_the_answer(line["message"]["content"], line["logprobs"], top_logprobs=0)
    assert lines[-1]["done"] is True and "logprobs" not in lines[-1]


def test_the_official_client_reads_the_logprobs(official: ollama.Client) -> None:
    whole = official.chat(model=MODEL, messages=MESSAGES, stream=False, logprobs=True, top_logprobs=2)
    parts = list(official.chat(model=MODEL, messages=MESSAGES, stream=True, logprobs=True))

    assert whole.logprobs is not None and whole.message.content is not None
    assert "".join(entry.token for entry in whole.logprobs) == whole.message.content
    assert all(entry.top_logprobs is not None and len(entry.top_logprobs) == 2 for entry in whole.logprobs)
    streamed = [entry.token for part in parts for entry in part.logprobs or ()]
    assert "".join(streamed) == "".join(part.message.content or "" for part in parts)


def test_project_client_reads_the_probability_of_the_category_from_the_logprobs(
    url: str, backend: KeywordTriageBackend
) -> None:
    backend.token_probability = 0.8

    with OllamaClient(url, MODEL, connect_timeout_s=1.0, read_timeout_s=10.0) as client:
        answer = client.triage(rendered())

    content = answer.raw_output
    start = content.index('"category": "') + len('"category": "')
    value_tokens = {index // backend.token_chars for index in range(start, start + len("billing"))}
    assert answer.answer.category == "billing"
    assert answer.category_probability == pytest.approx(0.8 ** len(value_tokens))
    assert answer.priority_probability is not None and 0.0 < answer.priority_probability < 1.0


# -- the project's client ------------------------------------------------------------------------------


def test_project_client_triages_lists_models_and_reads_the_version(url: str) -> None:
    with OllamaClient(url, MODEL, connect_timeout_s=1.0, read_timeout_s=10.0) as client:
        answer = client.triage(rendered())
        models = client.list_models()
        version = client.version()

    assert answer.answer.category == "billing"
    assert answer.model == MODEL
    assert answer.prompt_tokens is not None and answer.prompt_tokens > 0
    assert answer.completion_tokens is not None and answer.completion_tokens > 0
    assert answer.total_duration_ms is not None
    assert models == [MODEL]
    assert version == SERVER_VERSION


def test_project_client_reports_a_model_the_server_does_not_have_as_model_not_found(
    url: str, backend: KeywordTriageBackend
) -> None:
    with (
        OllamaClient(url, OTHER_MODEL, connect_timeout_s=1.0, read_timeout_s=10.0) as client,
        pytest.raises(ModelNotFound) as caught,
    ):
        client.triage(rendered())

    assert caught.value.status_code == 404
    assert backend.requests == []


# -- model endpoints -----------------------------------------------------------------------------------


def test_tags_ps_and_show_describe_the_served_model(official: ollama.Client) -> None:
    listed = official.list()
    running = official.ps()
    shown = official.show(MODEL)

    [entry] = listed.models
    assert entry.model == MODEL
    assert entry.details is not None and entry.details.family == "keyword"
    assert entry.size is not None and entry.digest and entry.modified_at is not None
    [loaded] = running.models
    assert loaded.model == MODEL and loaded.name == MODEL
    assert loaded.size_vram == 0 and loaded.expires_at is not None
    assert shown.details is not None and shown.details.quantization_level == "none"
    assert shown.modelinfo == {"general.name": "Keyword triage (test backend)"}


def test_version_and_root_answer_like_ollama_also_to_head(url: str) -> None:
    assert httpx.get(f"{url}/api/version").json() == {"version": SERVER_VERSION}
    root = httpx.get(f"{url}/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    for path in ("/", "/api/version", "/api/tags"):
        head = httpx.head(f"{url}{path}")
        assert (head.status_code, head.content) == (200, b""), path


def test_a_model_the_server_does_not_have_is_ollamas_404_for_chat_stream_and_show(
    official: ollama.Client, backend: KeywordTriageBackend
) -> None:
    expected = f'model "{OTHER_MODEL}" not found, try pulling it first'
    failures: list[ollama.ResponseError] = []
    for call in (
        lambda: official.chat(model=OTHER_MODEL, messages=MESSAGES, stream=False),
        lambda: list(official.chat(model=OTHER_MODEL, messages=MESSAGES, stream=True)),
        lambda: official.show(OTHER_MODEL),
    ):
        with pytest.raises(ollama.ResponseError) as caught:
            call()
        failures.append(caught.value)

    assert [(failure.status_code, failure.error) for failure in failures] == [(404, expected)] * 3
    assert backend.requests == []


# -- bad requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b'{"model": "x", ', "the body is not JSON", id="malformed-json"),
        pytest.param(b"", "missing request body", id="empty-body"),
        pytest.param(b"[]", "the body must be a JSON object", id="array-body"),
        pytest.param(json.dumps({"messages": MESSAGES}).encode(), "model is required", id="missing-model"),
        pytest.param(json.dumps(chat_body(model="")).encode(), "model is required", id="empty-model"),
        pytest.param(json.dumps(chat_body(model=7)).encode(), "model:", id="model-not-a-string"),
        pytest.param(json.dumps(chat_body(messages="hi")).encode(), "messages:", id="messages-not-a-list"),
        pytest.param(json.dumps(chat_body(messages=[])).encode(), "messages:", id="no-messages"),
        pytest.param(
            json.dumps(chat_body(messages=[{"role": "robot", "content": "hi"}])).encode(),
            "messages.0.role:",
            id="unknown-role",
        ),
        pytest.param(
            json.dumps(chat_body(messages=[{"role": "user", "content": 5}])).encode(),
            "messages.0.content:",
            id="content-not-a-string",
        ),
        pytest.param(
            json.dumps(chat_body(format=5)).encode(), '`format` must be "json" or a JSON schema object', id="bad-format"
        ),
        pytest.param(
            json.dumps(chat_body(format="yaml")).encode(),
            '`format` must be "json" or a JSON schema object',
            id="unknown-format",
        ),
        pytest.param(
            json.dumps(chat_body(options={"temperature": "hot"})).encode(), "options.temperature:", id="bad-option"
        ),
        pytest.param(json.dumps(chat_body(options=[1])).encode(), "options:", id="options-not-an-object"),
        pytest.param(json.dumps(chat_body(stream="maybe")).encode(), "stream:", id="stream-not-a-boolean"),
        pytest.param(
            json.dumps(chat_body(logprobs=True, top_logprobs=21)).encode(),
            "top_logprobs must be between 0 and 20",
            id="too-many-top-logprobs",
        ),
        pytest.param(
            json.dumps(chat_body(top_logprobs=-1)).encode(),
            "top_logprobs must be between 0 and 20",
            id="negative-top-logprobs",
        ),
        pytest.param(json.dumps(chat_body(logprobs="yes please")).encode(), "logprobs:", id="logprobs-not-a-boolean"),
    ],
)
def test_a_bad_chat_request_is_a_400_with_an_ollama_error_naming_the_problem(
    url: str, backend: KeywordTriageBackend, content: bytes, expected: str
) -> None:
    response = httpx.post(f"{url}/api/chat", content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and expected in body["error"]
    assert backend.requests == []


def test_a_body_posted_like_curl_d_or_without_content_type_is_read_as_json(url: str) -> None:
    content = json.dumps(chat_body()).encode()
    with httpx.Client(base_url=url) as http:
        as_form = http.post("/api/chat", content=content, headers={"Content-Type": "application/x-www-form-urlencoded"})
        untyped = http.send(httpx.Request("POST", f"{url}/api/chat", content=content))

    assert (as_form.status_code, untyped.status_code) == (200, 200)
    assert "content-type" not in untyped.request.headers
    assert as_form.json()["done"] is True and untyped.json()["done"] is True


def test_a_format_the_backend_cannot_serve_is_a_400_before_any_chunk(official: ollama.Client) -> None:
    array_schema = {"type": "array", "items": {"type": "string"}}

    with pytest.raises(ollama.ResponseError) as whole:
        official.chat(model=MODEL, messages=MESSAGES, format=array_schema, stream=False)
    with pytest.raises(ollama.ResponseError) as streamed:
        list(official.chat(model=MODEL, messages=MESSAGES, format=array_schema, stream=True))

    for failure in (whole.value, streamed.value):
        assert failure.status_code == 400
        assert failure.error.startswith("cannot turn `format` into a grammar")


def test_a_backend_failure_mid_stream_ends_the_stream_with_an_error_line(
    url: str, official: ollama.Client, backend: KeywordTriageBackend
) -> None:
    backend.fail_after_pieces = 2

    with httpx.stream("POST", f"{url}/api/chat", json={"model": MODEL, "messages": MESSAGES}) as response:
        lines = [json.loads(line) for line in response.iter_lines()]
    with pytest.raises(ollama.ResponseError) as streamed:
        list(official.chat(model=MODEL, messages=MESSAGES, stream=True))
    with pytest.raises(ollama.ResponseError) as whole:
        official.chat(model=MODEL, messages=MESSAGES, stream=False)

    assert response.status_code == 200
    assert [line["done"] for line in lines[:2]] == [False, False]
    assert lines[2:] == [{"error": "internal error in the offline LLM server"}]
    assert streamed.value.error == "internal error in the offline LLM server"
    assert (whole.value.status_code, whole.value.error) == (500, "internal error in the offline LLM server")


def test_unknown_paths_and_methods_answer_with_an_ollama_error_body(url: str) -> None:
    missing = httpx.get(f"{url}/api/generate")
    wrong_method = httpx.get(f"{url}/api/chat")

    assert missing.status_code == 404
    assert missing.json() == {"error": "not found: /api/generate (this offline server has /api/chat)"}
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json() == {"error": "method GET not allowed on /api/chat"}


# -- one generation at a time --------------------------------------------------------------------------


def test_generations_run_one_at_a_time_on_one_thread_while_other_endpoints_answer(
    url: str, backend: KeywordTriageBackend
) -> None:
    backend.piece_delay_s = 0.05  # about 0.5 s per answer
    callers = 3
    barrier = threading.Barrier(callers)

    def triage() -> int:
        barrier.wait()
        return httpx.post(f"{url}/api/chat", json=chat_body(), timeout=30.0).status_code

    with ThreadPoolExecutor(max_workers=callers) as pool:
        chats = [pool.submit(triage) for _ in range(callers)]
        deadline = time.monotonic() + 10.0
        while not backend.requests and time.monotonic() < deadline:
            time.sleep(0.005)
        tags = httpx.get(f"{url}/api/tags", timeout=5.0)
        chats_done_before_tags = sum(chat.done() for chat in chats)
        statuses = [chat.result() for chat in chats]

    assert tags.status_code == 200
    assert chats_done_before_tags < callers  # /api/tags did not wait for the queued generations
    assert statuses == [200] * callers
    assert len(backend.requests) == callers
    assert backend.max_concurrent == 1
    [thread] = backend.threads
    assert thread.startswith("offline-llm-generation")


def test_a_client_leaving_a_stream_stops_its_generation_and_frees_the_worker(
    url: str, backend: KeywordTriageBackend
) -> None:
    backend.piece_delay_s = 0.05

    with httpx.stream("POST", f"{url}/api/chat", json={"model": MODEL, "messages": MESSAGES}) as response:
        first = json.loads(next(response.iter_lines()))
    deadline = time.monotonic() + 5.0
    while backend.stopped_early == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    backend.piece_delay_s = 0.0
    after = httpx.post(f"{url}/api/chat", json=chat_body(), timeout=10.0)

    assert first["done"] is False
    assert backend.stopped_early == 1
    assert after.status_code == 200 and after.json()["done"] is True
