"""OllamaClient against a real HTTP fake of Ollama: answers, classified failures, concurrency."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.fake_ollama import OLLAMA_VERSION, Behaviour, FakeOllama
from tests.support.ollama_contract import OPTIONS, rendered
from triage_pipeline.domain.llm_errors import (
    InvalidJsonOutput,
    LlmHttpError,
    LlmTimeout,
    LlmUnavailable,
    ModelNotFound,
    SchemaViolation,
)
from triage_pipeline.domain.ports import LlmAnswer, LlmGateway
from triage_pipeline.domain.prompt import RenderedPrompt
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES, Priority
from triage_pipeline.infrastructure.llm.answer_model import answer_json_schema
from triage_pipeline.infrastructure.llm.ollama_client import TOP_LOGPROBS, OllamaClient

MODEL = "gemma3:270m"
READ_TIMEOUT_S = 0.5


@pytest.fixture
def client(fake_ollama: FakeOllama) -> Iterator[OllamaClient]:
    with OllamaClient(fake_ollama.url, MODEL, connect_timeout_s=1.0, read_timeout_s=READ_TIMEOUT_S) as llm:
        yield llm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_client_satisfies_the_llm_gateway_protocol(client: OllamaClient) -> None:
    gateway: LlmGateway = client
    assert gateway.model == MODEL


def test_valid_answer_becomes_an_llm_answer_with_tokens_and_duration(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.latency_s = 0.05

    result = client.triage(rendered())

    assert isinstance(result, LlmAnswer)
    assert result.answer.category == "billing"
    assert result.answer.priority is Priority.HIGH
    assert result.answer.language == "en"
    assert result.answer.summary == "Customer writes: Charged twice for my order"
    assert result.answer.confidence == pytest.approx(0.8)
    assert json.loads(result.raw_output)["category"] == "billing"
    assert result.model == MODEL
    assert result.prompt_tokens is not None and result.prompt_tokens > 0
    assert result.completion_tokens is not None and result.completion_tokens > 0
    assert result.total_duration_ms is not None and result.total_duration_ms >= 50


def test_request_is_non_streaming_chat_with_system_and_user_messages_schema_and_options(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    prompt = rendered()

    client.triage(prompt)

    sent = fake_ollama.last_chat_request
    assert sent is not None
    assert sent["model"] == MODEL
    assert sent["stream"] is False
    assert sent["messages"] == [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": prompt.user},
    ]
    assert sent["format"] == answer_json_schema(DEFAULT_CATEGORIES)
    assert sent["options"] == OPTIONS
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, TOP_LOGPROBS)


def test_probabilities_of_the_category_and_priority_come_from_the_logprobs_of_their_tokens(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.answer_probabilities(category=0.95, priority=0.4)

    result = client.triage(rendered())

    assert result.answer.category == "billing"
    assert result.category_probability == pytest.approx(0.95)
    assert result.priority_probability == pytest.approx(0.4)
    assert result.answer.confidence == pytest.approx(0.8)  # what the model says of itself is kept as it is


def test_the_categories_the_model_leaned_to_are_read_from_the_top_logprobs_where_the_value_begins(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.answer_probabilities(category=0.6, priority=0.9, category_alternatives={"bug": 0.25, "outage": 0.05})

    result = client.triage(rendered())

    assert result.answer.category == "billing"
    assert result.category_distribution == pytest.approx({"billing": 0.6, "bug": 0.25, "outage": 0.05})
    assert result.priority_distribution == pytest.approx({result.answer.priority.value: 0.9})


def test_probabilities_are_those_of_each_answer(client: OllamaClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.answer_probabilities(category=0.3, priority=0.6, when_ticket_contains="unsure")

    sure = client.triage(rendered())
    unsure = client.triage(rendered("An unsure one", "Something about account_access and my login"))

    assert sure.category_probability == pytest.approx(0.9)
    assert sure.priority_probability == pytest.approx(0.9)
    assert unsure.answer.category == "account_access"  # a value of several tokens
    assert unsure.category_probability == pytest.approx(0.3)
    assert unsure.priority_probability == pytest.approx(0.6)


def test_a_server_without_logprobs_gives_a_valid_answer_without_probabilities(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.logprobs_supported = False  # an Ollama older than 0.12.11

    result = client.triage(rendered())

    assert result.answer.category == "billing"
    assert result.category_probability is None
    assert result.priority_probability is None
    assert result.category_distribution is None


def test_answer_is_validated_against_the_prompts_own_category_vocabulary(
    client: OllamaClient,
) -> None:
    categories = ("shipping", "returns", "other")

    result = client.triage(rendered("Where is my parcel", "The shipping status is stuck", categories))

    assert result.answer.category == "shipping"


def test_category_outside_the_prompts_vocabulary_is_a_schema_violation(client: OllamaClient) -> None:
    # The schema sent allows "billing", but the prompt's vocabulary does not: the client trusts the prompt.
    prompt = rendered()
    narrower = RenderedPrompt(prompt.system, prompt.user, prompt.output_schema, prompt.options, ("bug", "other"))

    with pytest.raises(SchemaViolation) as caught:
        client.triage(narrower)

    assert "category" in str(caught.value)
    assert caught.value.raw_output is not None and '"billing"' in caught.value.raw_output


def test_output_that_is_not_json_raises_invalid_json_output_keeping_the_raw_output(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.INVALID_JSON

    with pytest.raises(InvalidJsonOutput) as caught:
        client.triage(rendered())

    assert caught.value.error_class == "invalid_json"
    assert caught.value.raw_output is not None
    assert caught.value.raw_output.startswith("Sure! Here is the triage:")


def test_json_not_matching_the_answer_schema_raises_schema_violation_naming_the_bad_fields(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.SCHEMA_VIOLATION

    with pytest.raises(SchemaViolation) as caught:
        client.triage(rendered())

    message = str(caught.value)
    assert "category:" in message
    assert "confidence: Field required" in message
    assert caught.value.raw_output is not None
    assert json.loads(caught.value.raw_output)["category"] == "not_a_category"


def test_http_500_raises_llm_http_error_with_the_status_code_and_ollamas_error(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.HTTP_500

    with pytest.raises(LlmHttpError) as caught:
        client.triage(rendered())

    assert type(caught.value) is LlmHttpError
    assert caught.value.status_code == 500
    assert "llama runner process has terminated" in str(caught.value)
    assert caught.value.raw_output is not None and "error" in caught.value.raw_output


def test_missing_model_raises_model_not_found_telling_to_pull_it(client: OllamaClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.behaviour = Behaviour.MODEL_NOT_FOUND

    with pytest.raises(ModelNotFound) as caught:
        client.triage(rendered())

    assert isinstance(caught.value, LlmHttpError)
    assert caught.value.status_code == 404
    assert caught.value.error_class == "model_not_found"
    assert f"ollama pull {MODEL}" in str(caught.value)


def test_model_unknown_to_the_server_raises_model_not_found(fake_ollama: FakeOllama) -> None:
    fake_ollama.strict_models = True

    with (
        OllamaClient(fake_ollama.url, "llama3.2:1b", read_timeout_s=READ_TIMEOUT_S) as other,
        pytest.raises(ModelNotFound, match=r"ollama pull llama3\.2:1b"),
    ):
        other.triage(rendered())


def test_404_without_ollamas_error_body_is_an_http_error_not_a_missing_model(fake_ollama: FakeOllama) -> None:
    # A wrong base URL path: the server's plain "404 page not found" must not blame the model.
    with (
        OllamaClient(f"{fake_ollama.url}/wrong", MODEL, read_timeout_s=READ_TIMEOUT_S) as misconfigured,
        pytest.raises(LlmHttpError) as caught,
    ):
        misconfigured.triage(rendered())

    assert type(caught.value) is LlmHttpError
    assert caught.value.status_code == 404


def test_a_200_body_that_is_not_ollamas_raises_llm_http_error_keeping_the_body(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.NOT_OLLAMA

    with pytest.raises(LlmHttpError) as caught:
        client.triage(rendered())

    assert caught.value.status_code == 200
    assert "not a JSON object" in str(caught.value)
    assert caught.value.raw_output is not None and "nginx" in caught.value.raw_output


def test_hanging_server_raises_llm_timeout_within_the_read_timeout(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.HANG
    started = time.monotonic()

    with pytest.raises(LlmTimeout) as caught:
        client.triage(rendered())

    elapsed = time.monotonic() - started
    assert READ_TIMEOUT_S * 0.9 <= elapsed < READ_TIMEOUT_S + 1.0
    assert caught.value.error_class == "timeout"
    assert caught.value.raw_output is None


def test_dropped_connection_raises_llm_unavailable(client: OllamaClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.behaviour = Behaviour.DROP_CONNECTION

    with pytest.raises(LlmUnavailable) as caught:
        client.triage(rendered())

    assert caught.value.error_class == "unavailable"
    assert "RemoteProtocolError" in str(caught.value)


def test_refused_connection_raises_llm_unavailable() -> None:
    with (
        OllamaClient(f"http://127.0.0.1:{free_port()}", MODEL, connect_timeout_s=1.0) as nowhere,
        pytest.raises(LlmUnavailable),
    ):
        nowhere.triage(rendered())


def test_client_recovers_on_the_next_call_after_failures(client: OllamaClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_first(1, Behaviour.DROP_CONNECTION)
    fake_ollama.when_ticket_contains("flaky", Behaviour.HTTP_500, times=1)

    with pytest.raises(LlmUnavailable):
        client.triage(rendered())
    with pytest.raises(LlmHttpError):
        client.triage(rendered("flaky export", "The CSV export fails"))
    result = client.triage(rendered("flaky export", "The CSV export fails"))

    assert result.answer.category == "bug"
    assert fake_ollama.chat_count == 3


def test_per_ticket_override_fails_only_the_matching_ticket(client: OllamaClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.when_ticket_contains("POISON", Behaviour.SCHEMA_VIOLATION)

    with pytest.raises(SchemaViolation):
        client.triage(rendered("Order POISON", "anything"))
    assert client.triage(rendered("Order fine", "anything")).answer.category == "other"


def test_sixteen_concurrent_calls_from_threads_all_succeed_on_one_client(
    client: OllamaClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.latency_s = 0.2
    calls = 16
    barrier = threading.Barrier(calls)

    def call(i: int) -> LlmAnswer:
        barrier.wait()
        return client.triage(rendered(f"Ticket {i}", "How do I export my orders?"))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=calls) as pool:
        results = list(pool.map(call, range(calls)))
    elapsed = time.monotonic() - started

    assert [r.answer.summary for r in results] == [f"Customer writes: Ticket {i}" for i in range(calls)]
    assert all(r.answer.category == "how_to" for r in results)
    assert fake_ollama.max_concurrent_chats == calls
    assert elapsed < 0.2 * calls / 4  # concurrent, not serialised


def test_connections_are_reused_across_calls(client: OllamaClient, fake_ollama: FakeOllama) -> None:
    for _ in range(5):
        client.triage(rendered())

    assert fake_ollama.connections_accepted == 1


def test_version_and_list_models_report_the_server(client: OllamaClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.models = [MODEL, "qwen2.5:0.5b"]

    assert client.version() == OLLAMA_VERSION
    assert client.list_models() == [MODEL, "qwen2.5:0.5b"]


def test_version_with_a_short_timeout_gives_up_within_it_on_a_server_that_never_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with OllamaClient(url, MODEL, connect_timeout_s=1.0, read_timeout_s=30.0) as client:
            started = time.monotonic()
            with pytest.raises(LlmTimeout) as caught:
                client.version(timeout_s=0.2)
            elapsed = time.monotonic() - started

    assert 0.15 <= elapsed < 2.0  # the short bound, not the 30 s read timeout
    assert "0.2 s" in str(caught.value) and "/api/version" in str(caught.value)


def test_health_checks_raise_llm_unavailable_when_the_server_is_down() -> None:
    with OllamaClient(f"http://127.0.0.1:{free_port()}", MODEL, connect_timeout_s=1.0) as nowhere:
        with pytest.raises(LlmUnavailable):
            nowhere.version()
        with pytest.raises(LlmUnavailable):
            nowhere.list_models()


@pytest.mark.parametrize("base_url", ["localhost:11434", "ftp://host", "http://"])
def test_base_url_without_http_scheme_and_host_is_rejected(base_url: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        OllamaClient(base_url, MODEL)
