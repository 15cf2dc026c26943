"""The LLM gateway over Ollama's HTTP API (`POST /api/chat`, non-streaming, JSON-schema output).

Every failure is raised as a classified `LlmError`:

- connection refused, DNS failure, connect timeout -> `ConnectFailed`, an `LlmUnavailable`: the request
  never reached the server (a connect timeout means it could not be reached, not that it was slow to
  answer), so the host pool may send it to another host;
- connection reset or dropped after the request was sent -> `LlmUnavailable`: the server had it;
- no response within the read (or write) timeout -> `LlmTimeout`;
- HTTP status >= 400 -> `LlmHttpError` with the status code, or `ModelNotFound` for Ollama's
  404 "model ... not found" (the message says to `ollama pull` it);
- a 2xx body that is not an Ollama chat response (not JSON, no `message.content` string) ->
  `LlmHttpError` with the real status code: it is a server/proxy/protocol fault (for example the base
  URL points at something that is not Ollama), not a model-quality failure, so it must not be counted
  as `invalid_json`;
- `message.content` that is not JSON -> `InvalidJsonOutput`;
- JSON that does not fit the answer model of the prompt's categories -> `SchemaViolation`.

Every request asks for the tokens' log-probabilities (`logprobs`, `top_logprobs`, Ollama 0.12.11+):
the answer then carries the model's probability of the category and of the priority it wrote
(`value_probability`), and of the other labels it hesitated between (`value_distribution`): a
confidence measured rather than the `confidence` the model states about itself. An older server
ignores the two fields and sends no logprobs: the probabilities and distributions are then None, and
so they are when the logprobs do not spell the answer; neither is ever an error.
"""

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from triage_pipeline.domain.llm_errors import (
    InvalidJsonOutput,
    LlmHttpError,
    LlmTimeout,
    LlmUnavailable,
    ModelNotFound,
    SchemaViolation,
)
from triage_pipeline.domain.ports import LlmAnswer
from triage_pipeline.domain.prompt import RenderedPrompt
from triage_pipeline.domain.triage_answer import Priority
from triage_pipeline.infrastructure.llm.answer_model import answer_model, to_domain
from triage_pipeline.infrastructure.llm.value_probability import (
    read_token_logprobs,
    value_distribution,
    value_probability,
)

# Enough of an error body to diagnose it without storing a whole HTML error page per attempt.
_ERROR_BODY_MAX_CHARS = 4000
# Most likely tokens per position asked of the server. The alternatives are read only along the
# category and priority values (`value_distribution`); ten reach the labels a small model hesitates
# between and keep the response small (Ollama allows up to 20).
TOP_LOGPROBS = 10


class ConnectFailed(LlmUnavailable):
    """The request never reached the server: connection refused, DNS failure, TLS or connect timeout.

    Nothing was sent, so nothing ran: the host pool (`host_pool.py`) takes the host out and sends the same
    call to another host. Its `error_class` stays `unavailable`.
    """


class OllamaClient:
    """`LlmGateway` over Ollama's HTTP API; one pooled, thread-safe `httpx.Client` per instance."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_connections: int = 32,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Ollama base URL must be http(s)://host[:port], got {base_url!r}")
        if not model:
            raise ValueError("Ollama model name must not be empty")
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("Ollama timeouts must be positive")
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._read_timeout_s = read_timeout_s
        self._http = httpx.Client(
            base_url=self._base_url,
            # pool=None: waiting for a free pooled connection is queueing behind our own calls,
            # each of which is bounded by connect/read timeouts; it is not the server being slow.
            timeout=httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=connect_timeout_s, pool=None),
            # Keep every connection alive: the batch runner calls from many threads at once and a
            # reconnect per call would cost more than a small model's answer.
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    def triage(self, prompt: RenderedPrompt) -> LlmAnswer:
        """Ask the model; raise a classified `LlmError` when no valid answer comes back."""
        if not prompt.categories:
            raise ValueError("the rendered prompt has no category vocabulary to validate against")
        payload = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "stream": False,
            "format": dict(prompt.output_schema),
            "options": dict(prompt.options),
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        response = self._send("POST", "/api/chat", payload)
        body = self._json_body(response, "chat")
        message = body.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise LlmHttpError(
                "Ollama chat response has no message.content string",
                response.status_code,
                raw_output=_clip(response.text),
            )
        data = self._parse_content(content, body.get("done_reason"))
        try:
            validated = answer_model(prompt.categories).model_validate(data)
        except ValidationError as exc:
            raise SchemaViolation(
                f"model output does not match the answer schema: {_describe(exc)}", raw_output=content
            ) from None
        model_name = body.get("model")
        tokens = read_token_logprobs(body.get("logprobs"))
        return LlmAnswer(
            answer=to_domain(validated),
            raw_output=content,
            model=model_name if isinstance(model_name, str) and model_name else self._model,
            prompt_tokens=_count(body.get("prompt_eval_count")),
            completion_tokens=_count(body.get("eval_count")),
            total_duration_ms=_ns_to_ms(body.get("total_duration")),
            category_probability=value_probability(content, tokens, "category"),
            priority_probability=value_probability(content, tokens, "priority"),
            category_distribution=value_distribution(content, tokens, "category", prompt.categories),
            priority_distribution=value_distribution(content, tokens, "priority", [p.value for p in Priority]),
        )

    def version(self, *, timeout_s: float | None = None) -> str:
        """The Ollama server's version (`GET /api/version`).

        `timeout_s` bounds the whole exchange instead of the client's timeouts: the connect, the write, the
        read and the wait for a pooled connection (the host pool's probe passes its connect timeout)."""
        response = self._send("GET", "/api/version", timeout_s=timeout_s)
        version = self._json_body(response, "version").get("version")
        if not isinstance(version, str):
            raise LlmHttpError(
                "Ollama version response has no version string",
                response.status_code,
                raw_output=_clip(response.text),
            )
        return version

    def list_models(self) -> list[str]:
        """Names of the models pulled on the server (`GET /api/tags`)."""
        response = self._send("GET", "/api/tags")
        models = self._json_body(response, "tags").get("models")
        if not isinstance(models, list):
            raise LlmHttpError(
                "Ollama tags response has no models list", response.status_code, raw_output=_clip(response.text)
            )
        names: list[str] = []
        for entry in models:
            if isinstance(entry, dict):
                # Newer servers send `model`, older ones only `name`; both carry the pull name.
                name = entry.get("model") or entry.get("name")
                if isinstance(name, str) and name:
                    names.append(name)
        return names

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(
        self, method: str, path: str, payload: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> httpx.Response:
        url = f"{self._base_url}{path}"
        read_timeout_s = self._read_timeout_s if timeout_s is None else timeout_s
        try:
            timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
            response = self._http.request(method, path, json=payload, timeout=timeout)
        except httpx.ConnectTimeout as exc:
            raise ConnectFailed(f"could not connect to Ollama at {url} in time: {exc}") from exc
        except httpx.ConnectError as exc:
            # Refused, DNS, TLS handshake: raised before the request's first byte left.
            raise ConnectFailed(f"Ollama at {url} is unavailable: {type(exc).__name__}: {exc or 'no detail'}") from exc
        except httpx.TimeoutException as exc:
            raise LlmTimeout(
                f"Ollama at {url} did not answer within the timeout ({read_timeout_s:g} s read): {type(exc).__name__}"
            ) from exc
        except httpx.RequestError as exc:
            # Reset or dropped after the request was sent (ReadError, RemoteProtocolError): the server had it.
            raise LlmUnavailable(f"Ollama at {url} is unavailable: {type(exc).__name__}: {exc or 'no detail'}") from exc
        if response.status_code >= 400:
            raise self._http_error(response, url)
        return response

    def _http_error(self, response: httpx.Response, url: str) -> LlmHttpError:
        text = response.text
        detail = text
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            detail = parsed["error"]
        status = response.status_code
        # Only Ollama's own JSON error names a missing model; a bare 404 means a wrong base URL or path.
        if status == 404 and isinstance(parsed, dict) and "not found" in detail.lower():
            return ModelNotFound(
                f"model {self._model!r} is not available on the Ollama server at {self._base_url} "
                f"({detail}); run `ollama pull {self._model}`",
                status,
                raw_output=_clip(text),
            )
        return LlmHttpError(f"Ollama returned HTTP {status} for {url}: {_clip(detail, 500)}", status, _clip(text))

    @staticmethod
    def _json_body(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise LlmHttpError(
                f"Ollama {what} response is not a JSON object (HTTP {response.status_code}, "
                f"content-type {response.headers.get('content-type', 'none')!r})",
                response.status_code,
                raw_output=_clip(response.text),
            )
        return body

    @staticmethod
    def _parse_content(content: str, done_reason: object) -> object:
        try:
            return json.loads(content)
        except ValueError as exc:
            # `length` means num_predict cut the answer off: a prompt/options problem, not a model whim.
            hint = " (generation stopped at the num_predict limit)" if done_reason == "length" else ""
            raise InvalidJsonOutput(f"model output is not valid JSON{hint}: {exc}", raw_output=content) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "<root>"
        problems.append(f"{field}: {error['msg']}")
    return "; ".join(problems)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _ns_to_ms(value: object) -> int | None:
    count = _count(value)
    return None if count is None else round(count / 1_000_000)


def _clip(text: str, limit: int = _ERROR_BODY_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
