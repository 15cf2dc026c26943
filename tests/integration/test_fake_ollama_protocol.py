"""The fake Ollama speaks Ollama's protocol: proven with the official `ollama` Python client."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import ollama
import pytest

from offline_llm.ollama_responses import ChatChunk, ChatResponse, ErrorResponse, ModelEntry, VersionResponse
from tests.support.fake_ollama import OLDER_OLLAMA_VERSION, OLLAMA_VERSION, Behaviour, FakeOllama
from tests.support.ollama_contract import (
    MESSAGES,
    SCHEMA,
    assert_complete_chat_response,
    assert_logprobs_spell_the_answer,
)
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES
from triage_pipeline.infrastructure.llm.answer_model import answer_json_schema, answer_model
from triage_pipeline.infrastructure.llm.value_probability import read_token_logprobs, value_probability

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL = "gemma3:270m"


@pytest.fixture
def official(fake_ollama: FakeOllama) -> Iterator[ollama.Client]:
    with ollama.Client(host=fake_ollama.url, timeout=5.0) as client:
        yield client


def test_non_streaming_chat_has_every_field_of_an_ollama_chat_response(official: ollama.Client) -> None:
    response = official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=False)

    assert_complete_chat_response(response, MODEL)


def test_streaming_chat_sends_ndjson_chunks_that_join_into_the_answer(official: ollama.Client) -> None:
    parts = list(official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=True))

    assert len(parts) > 2
    assert all(part.done is False for part in parts[:-1])
    final = parts[-1]
    assert final.done is True and final.done_reason == "stop"
    assert final.eval_count is not None and final.prompt_eval_count is not None
    content = "".join(part.message.content or "" for part in parts)
    answer_model(DEFAULT_CATEGORIES).model_validate_json(content)


def test_chat_streams_when_the_request_omits_stream(fake_ollama: FakeOllama) -> None:
    # Ollama's own default: no `stream` field means an NDJSON stream.
    response = httpx.post(f"{fake_ollama.url}/api/chat", json={"model": MODEL, "messages": MESSAGES})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["transfer-encoding"] == "chunked"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) > 1 and lines[-1]["done"] is True


def test_answer_category_is_taken_from_the_format_enum(official: ollama.Client) -> None:
    schema = answer_json_schema(("incident", "question"))

    response = official.chat(model=MODEL, messages=MESSAGES, format=schema, stream=False)

    assert response.message.content is not None
    assert json.loads(response.message.content)["category"] in ("incident", "question")


def test_list_returns_the_configured_models_with_details(official: ollama.Client, fake_ollama: FakeOllama) -> None:
    fake_ollama.models = [MODEL, "qwen2.5:0.5b"]

    listed = official.list()

    assert [m.model for m in listed.models] == [MODEL, "qwen2.5:0.5b"]
    first = listed.models[0]
    assert first.details is not None and first.details.family == "gemma3"
    assert first.size is not None and first.size > 0
    assert first.digest and first.modified_at is not None


def test_bodies_have_exactly_the_fields_of_the_offline_llms_ollama_shapes(fake_ollama: FakeOllama) -> None:
    body = {"model": MODEL, "messages": MESSAGES}
    whole = httpx.post(f"{fake_ollama.url}/api/chat", json=body | {"stream": False}).json()
    lines = [json.loads(line) for line in httpx.post(f"{fake_ollama.url}/api/chat", json=body).text.splitlines()]
    [tag] = httpx.get(f"{fake_ollama.url}/api/tags").json()["models"]
    version = httpx.get(f"{fake_ollama.url}/api/version").json()
    fake_ollama.behaviour = Behaviour.MODEL_NOT_FOUND
    missing = httpx.post(f"{fake_ollama.url}/api/chat", json=body).json()

    # Like Ollama, `logprobs` is left out unless asked for.
    assert set(whole) == set(lines[-1]) == set(ChatResponse.model_fields) - {"logprobs"}
    assert all(set(line) == set(ChatChunk.model_fields) - {"logprobs"} for line in lines[:-1])
    assert set(tag) == set(ModelEntry.model_fields)
    assert VersionResponse.model_validate(version).version == OLLAMA_VERSION
    assert ErrorResponse.model_validate(missing) == ErrorResponse.model_not_found(MODEL)


def test_logprobs_when_asked_spell_the_answer_with_the_configured_probabilities(
    official: ollama.Client, fake_ollama: FakeOllama
) -> None:
    fake_ollama.answer_probabilities(category=0.95, priority=0.4)
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "format": SCHEMA,
        "stream": False,
        "logprobs": True,
        "top_logprobs": 3,
    }

    whole = httpx.post(f"{fake_ollama.url}/api/chat", json=body).json()
    via_official = official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=False, logprobs=True)

    content = whole["message"]["content"]
    assert_logprobs_spell_the_answer(content, whole["logprobs"], top_logprobs=3)
    tokens = read_token_logprobs(whole["logprobs"])
    assert json.loads(content)["category"] == "outage"
    assert value_probability(content, tokens, "category") == pytest.approx(0.95)
    assert value_probability(content, tokens, "priority") == pytest.approx(0.4)
    assert via_official.logprobs is not None
    assert "".join(entry.token for entry in via_official.logprobs) == via_official.message.content
    assert all(entry.top_logprobs is None for entry in via_official.logprobs)


def test_a_stream_carries_the_logprobs_of_each_piece_on_its_line(fake_ollama: FakeOllama) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "format": SCHEMA, "logprobs": True}

    lines = [json.loads(line) for line in httpx.post(f"{fake_ollama.url}/api/chat", json=body).text.splitlines()]

    assert len(lines) > 2
    for line in lines[:-1]:
        assert_logprobs_spell_the_answer(line["message"]["content"], line["logprobs"], top_logprobs=0)
    assert "logprobs" not in lines[-1]
    content = "".join(line["message"]["content"] for line in lines)
    tokens = read_token_logprobs([entry for line in lines[:-1] for entry in line["logprobs"]])
    assert value_probability(content, tokens, "category") == pytest.approx(0.9)


def test_an_older_server_ignores_logprobs(fake_ollama: FakeOllama) -> None:
    fake_ollama.logprobs_supported = False
    body = {"model": MODEL, "messages": MESSAGES, "logprobs": True, "top_logprobs": 99}

    whole = httpx.post(f"{fake_ollama.url}/api/chat", json=body | {"stream": False})
    lines = [json.loads(line) for line in httpx.post(f"{fake_ollama.url}/api/chat", json=body).text.splitlines()]

    assert whole.status_code == 200 and "logprobs" not in whole.json()
    assert all("logprobs" not in line for line in lines)
    assert httpx.get(f"{fake_ollama.url}/api/version").json() == {"version": OLDER_OLLAMA_VERSION}


def test_top_logprobs_out_of_range_is_ollamas_400(fake_ollama: FakeOllama) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": False, "logprobs": True, "top_logprobs": 21}

    response = httpx.post(f"{fake_ollama.url}/api/chat", json=body)

    assert response.status_code == 400
    assert response.json() == {"error": "top_logprobs must be between 0 and 20"}
    assert fake_ollama.chat_count == 0


def test_version_and_root_answer_like_ollama(fake_ollama: FakeOllama) -> None:
    assert httpx.get(f"{fake_ollama.url}/api/version").json() == {"version": OLLAMA_VERSION}
    assert httpx.get(f"{fake_ollama.url}/").text == "Ollama is running"
    assert httpx.head(f"{fake_ollama.url}/").status_code == 200


def test_missing_model_is_a_404_response_error_with_ollamas_message(
    official: ollama.Client, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.MODEL_NOT_FOUND

    with pytest.raises(ollama.ResponseError) as caught:
        official.chat(model=MODEL, messages=MESSAGES, stream=False)

    assert caught.value.status_code == 404
    assert caught.value.error == f'model "{MODEL}" not found, try pulling it first'


def test_missing_model_fails_a_streaming_chat_before_any_chunk(
    official: ollama.Client, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.MODEL_NOT_FOUND

    with pytest.raises(ollama.ResponseError) as caught:
        list(official.chat(model=MODEL, messages=MESSAGES, stream=True))

    assert caught.value.status_code == 404


def test_strict_models_reject_an_unlisted_model_like_ollama(official: ollama.Client, fake_ollama: FakeOllama) -> None:
    fake_ollama.strict_models = True

    with pytest.raises(ollama.ResponseError) as caught:
        official.chat(model="llama3.2:1b", messages=MESSAGES, stream=False)
    accepted = official.chat(model=MODEL, messages=MESSAGES, stream=False)

    assert caught.value.status_code == 404
    assert accepted.done is True


def test_http_500_is_a_response_error_with_ollamas_error_text(official: ollama.Client, fake_ollama: FakeOllama) -> None:
    fake_ollama.behaviour = Behaviour.HTTP_500

    with pytest.raises(ollama.ResponseError) as caught:
        official.chat(model=MODEL, messages=MESSAGES, stream=False)

    assert caught.value.status_code == 500
    assert "llama runner" in caught.value.error


def test_invalid_json_and_schema_violation_are_delivered_as_normal_chat_content(
    official: ollama.Client, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.INVALID_JSON
    invalid = official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=False).message.content
    fake_ollama.behaviour = Behaviour.SCHEMA_VIOLATION
    violating = official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=False).message.content

    assert invalid is not None and violating is not None
    with pytest.raises(json.JSONDecodeError):
        json.loads(invalid)
    data = json.loads(violating)
    assert data["category"] == "not_a_category" and "confidence" not in data


def test_dropped_connection_gives_no_response_at_all(official: ollama.Client, fake_ollama: FakeOllama) -> None:
    fake_ollama.behaviour = Behaviour.DROP_CONNECTION

    with pytest.raises(httpx.RemoteProtocolError):
        official.chat(model=MODEL, messages=MESSAGES, stream=False)


def test_counts_requests_and_records_chat_bodies(official: ollama.Client, fake_ollama: FakeOllama) -> None:
    official.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=False, options={"temperature": 0})
    official.list()

    assert fake_ollama.request_count == 2
    assert fake_ollama.chat_count == 1
    recorded = fake_ollama.last_chat_request
    assert recorded is not None
    assert recorded["messages"] == MESSAGES
    assert recorded["format"] == SCHEMA
    assert recorded["options"] == {"temperature": 0}
    assert fake_ollama.chat_requests == [recorded]


def test_fail_first_n_then_valid(official: ollama.Client, fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_first(2, Behaviour.HTTP_500)
    statuses = []
    for _ in range(3):
        try:
            official.chat(model=MODEL, messages=MESSAGES, stream=False)
            statuses.append(200)
        except ollama.ResponseError as exc:
            statuses.append(exc.status_code)

    assert statuses == [500, 500, 200]


def test_serves_32_concurrent_keep_alive_connections(fake_ollama: FakeOllama) -> None:
    fake_ollama.latency_s = 0.1
    workers, calls_each = 32, 4
    barrier = threading.Barrier(workers)
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    body = {"model": MODEL, "messages": MESSAGES, "stream": False}

    with httpx.Client(base_url=fake_ollama.url, limits=limits, timeout=10.0) as http:

        def work(_: int) -> list[int]:
            barrier.wait()
            return [http.post("/api/chat", json=body).status_code for _ in range(calls_each)]

        with ThreadPoolExecutor(max_workers=workers) as pool:
            statuses = [status for batch in pool.map(work, range(workers)) for status in batch]

    assert statuses == [200] * workers * calls_each
    assert fake_ollama.max_concurrent_chats == workers
    assert fake_ollama.connections_accepted <= workers  # every later call reused a kept-alive connection


def test_stop_returns_promptly_while_a_call_hangs() -> None:
    fake = FakeOllama(behaviour=Behaviour.HANG, hang_s=60.0).start()
    url = fake.url
    failures: list[BaseException] = []

    def hang() -> None:
        try:
            httpx.post(f"{url}/api/chat", json={"model": MODEL, "messages": MESSAGES, "stream": False})
        except httpx.HTTPError as exc:
            failures.append(exc)

    caller = threading.Thread(target=hang)
    caller.start()
    deadline = time.monotonic() + 5.0
    while fake.chat_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    caller.join(timeout=5.0)

    assert time.monotonic() - started < 2.0
    assert not caller.is_alive()


def test_runs_as_a_separate_process_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_ollama", "--port", "0", "--latency", "0.01"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("FAKE_OLLAMA_URL=http://127.0.0.1:")
        with ollama.Client(host=line.split("=", 1)[1], timeout=5.0) as client:
            response = client.chat(model=MODEL, messages=MESSAGES, format=SCHEMA, stream=False)
        assert response.done is True
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)

    assert process.returncode == 0
    assert "served 1 requests (1 chats)" in stderr


def chat_body(title: str) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": f'<ticket>\n{{"title": "{title}", "description": "x"}}\n</ticket>'}],
        "stream": False,
    }


def test_parallel_answers_at_most_n_chats_at_once_the_others_wait_in_the_server() -> None:
    calls = 6
    with FakeOllama(parallel=2, latency_s=0.1) as fake, httpx.Client(base_url=fake.url, timeout=10.0) as http:
        barrier = threading.Barrier(calls)

        def call(i: int) -> int:
            barrier.wait()
            return http.post("/api/chat", json=chat_body(f"Ticket {i}")).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=calls) as pool:
            statuses = list(pool.map(call, range(calls)))
        elapsed = time.monotonic() - started

        assert statuses == [200] * calls
        assert fake.max_concurrent_answers == 2
        assert fake.max_concurrent_chats == calls  # all were received at once; four waited their turn
        assert (fake.chat_count, fake.chats_answered) == (calls, calls)
        assert elapsed >= 0.1 * calls / 2 * 0.9  # latency starts once a call's turn has come


def test_parallel_serves_waiting_chats_in_arrival_order() -> None:
    with FakeOllama(parallel=1, latency_s=0.15) as fake, httpx.Client(base_url=fake.url, timeout=10.0) as http:
        finished: list[int] = []

        def call(i: int) -> None:
            http.post("/api/chat", json=chat_body(f"Ticket {i}"))
            finished.append(i)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for arrived, thread in enumerate(threads, start=1):
            thread.start()
            deadline = time.monotonic() + 5.0
            while fake.chat_count < arrived and time.monotonic() < deadline:  # in the server before the next
                time.sleep(0.005)
        for thread in threads:
            thread.join(timeout=10.0)

    assert finished == [0, 1, 2, 3]


def test_errors_are_not_counted_as_answered_chats(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_first(1, Behaviour.HTTP_500)
    with httpx.Client(base_url=fake_ollama.url, timeout=5.0) as http:
        statuses = [http.post("/api/chat", json=chat_body("t")).status_code for _ in range(2)]

    assert statuses == [500, 200]
    assert (fake_ollama.chat_count, fake_ollama.chats_answered) == (2, 1)


def test_parallel_is_a_command_line_flag_of_the_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_ollama", "--port", "0", "--latency", "0.2", "--parallel", "1"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().split("=", 1)[1]
        with httpx.Client(base_url=url, timeout=10.0) as http, ThreadPoolExecutor(max_workers=2) as pool:
            started = time.monotonic()
            statuses = list(pool.map(lambda i: http.post("/api/chat", json=chat_body(f"T{i}")).status_code, range(2)))
            elapsed = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)

    assert statuses == [200, 200]
    assert elapsed >= 0.4 * 0.9  # one at a time
    assert "2 chats answered" in stderr
