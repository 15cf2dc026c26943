"""A fake Ollama server: real HTTP/1.1 on 127.0.0.1, Ollama's endpoints and response shapes.

Use it in-process (`with FakeOllama() as server:` or the `fake_ollama` fixture) or as a separate
process for benchmarks: `python -m tests.support.fake_ollama --port 11435 --latency 0.2`.

Endpoints: `POST /api/chat` (non-streaming, or NDJSON streaming when `stream` is true or absent, as
Ollama does), `GET /api/tags`, `GET /api/version`, `GET|HEAD /`. Only `/api/chat` misbehaves; the
other endpoints always answer, so health checks work while chat faults are being injected.
The bodies it sends are the offline LLM's shapes (`offline_llm.ollama_responses`), and a VALID answer
is the keyword-rule triage of `tests.support.keyword_triage`. It stays a hand-written server because
some faults (DROP_CONNECTION) act on the raw socket.

What a chat call does is chosen, in this order, by: a per-ticket override (`when_ticket_contains`),
then the "fail first N" budget (`fail_first`), then `behaviour`. Latency (`latency_s` plus a uniform
random `latency_jitter_s`) is applied before every chat answer except HANG, which waits `hang_s`
instead; every wait ends early when the server stops.

`parallel` plays OLLAMA_NUM_PARALLEL: at most that many chat calls are answered at once; the others
wait in the server, first come first served, before their latency starts (None: no limit). The
counters say what each fake host did: `chat_count` (received), `chats_answered` (a 200 chat answer
sent), `max_concurrent_chats` (received and not yet ended, waiting ones included) and
`max_concurrent_answers` (past the `parallel` gate at once).

A chat with `"logprobs": true` gets Ollama's `logprobs` list (Ollama 0.12.11+): the answer is cut
into word-piece tokens, and the tokens of the category's value and of the priority's value carry
logprobs whose joint probability is what `answer_probabilities` set (0.9 unless told); every other
token is 0.99 likely. The first token of the category's value lists, in its `top_logprobs`, the
other categories `answer_probabilities(category_alternatives=...)` names, each as a token that begins
it. `logprobs_supported=False` plays an older Ollama, which ignores the request
fields and sends no logprobs.
"""

import argparse
import contextlib
import hashlib
import json
import math
import random
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel

from offline_llm.ollama_responses import (
    AssistantMessage,
    ChatChunk,
    ChatResponse,
    ErrorResponse,
    Logprob,
    ModelDetails,
    ModelEntry,
    TagsResponse,
    TokenLogprob,
    VersionResponse,
)
from tests.support.keyword_triage import schema_categories, ticket_of, triage_answer

DEFAULT_MODEL = "gemma3:270m"
OLLAMA_VERSION = "0.12.11"
"""The first Ollama with `logprobs`; the fake reports it unless `logprobs_supported` is off."""
OLDER_OLLAMA_VERSION = "0.12.6"
_MODIFIED_AT = datetime(2025, 9, 1, 10, 0, 0, 123456, tzinfo=UTC)
_STREAM_PIECE_CHARS = 24
DEFAULT_VALUE_PROBABILITY = 0.9
OTHER_TOKEN_PROBABILITY = 0.99
_MAX_TOP_LOGPROBS = 20
# Word pieces of up to 4 characters and single other characters: "account_access" is 4 tokens.
_TOKEN = re.compile(r"\w{1,4}|\W")


class Behaviour(StrEnum):
    """What a chat call does."""

    VALID = "valid"
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    HTTP_500 = "http_500"
    MODEL_NOT_FOUND = "model_not_found"
    HANG = "hang"
    DROP_CONNECTION = "drop_connection"
    NOT_OLLAMA = "not_ollama"
    """A 200 whose body is not Ollama's (an HTML page from a proxy in front of the wrong thing)."""


@dataclass(slots=True)
class _Override:
    text: str
    behaviour: Behaviour
    remaining: int | None


@dataclass(frozen=True, slots=True)
class _Probabilities:
    category: float
    priority: float
    category_alternatives: tuple[tuple[str, float], ...] = ()


_DEFAULT_PROBABILITIES = _Probabilities(DEFAULT_VALUE_PROBABILITY, DEFAULT_VALUE_PROBABILITY)


class FakeOllama:
    """A fake Ollama HTTP server; set `behaviour`, `latency_s`, ... at any time, even mid-run."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviour: Behaviour = Behaviour.VALID,
        latency_s: float = 0.0,
        latency_jitter_s: float = 0.0,
        hang_s: float = 30.0,
        models: Iterable[str] = (DEFAULT_MODEL,),
        strict_models: bool = False,
        seed: int | None = None,
        keep_requests: int = 256,
        logprobs_supported: bool = True,
        parallel: int | None = None,
    ) -> None:
        if parallel is not None and parallel < 1:
            raise ValueError("parallel must be at least 1 (or None: no limit)")
        self.behaviour = behaviour
        # OLLAMA_NUM_PARALLEL: chat calls answered at once, the rest wait in line (None: no limit).
        self.parallel = parallel
        # False: an Ollama older than 0.12.11, which ignores `logprobs` and `top_logprobs`.
        self.logprobs_supported = logprobs_supported
        self.latency_s = latency_s
        self.latency_jitter_s = latency_jitter_s
        self.hang_s = hang_s
        self.models = list(models)
        # False: any model name is served; True: a model not in `models` is Ollama's 404, as for real.
        self.strict_models = strict_models
        self._host = host
        self._requested_port = port
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._overrides: list[_Override] = []
        self._probabilities = _DEFAULT_PROBABILITIES
        self._ticket_probabilities: list[tuple[str, _Probabilities]] = []
        self._fail_first_remaining = 0
        self._fail_first_behaviour = Behaviour.HTTP_500
        self._request_count = 0
        self._chat_count = 0
        self._connections_accepted = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._chats_answered = 0
        self._answering = 0
        self._max_answering = 0
        self._line: deque[object] = deque()
        self._gate = threading.Condition()
        self._chat_requests: deque[dict[str, Any]] = deque(maxlen=keep_requests)
        self._connections: set[socket.socket] = set()
        self._connections_gone = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("fake Ollama already started")
        self._stopping.clear()
        self._server = _Server((self._host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-ollama", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging handlers and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._gate:
            self._gate.notify_all()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # Handlers idle in keep-alive reads only return once their socket is shut down.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        with self._connections_gone:
            self._connections_gone.wait_for(lambda: not self._connections, timeout=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually bound (the one the OS chose for `port=0`); RuntimeError unless the server is running."""
        if self._server is None:
            raise RuntimeError("fake Ollama is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:40123`."""
        return f"http://{self._host}:{self.port}"

    # -- behaviour ---------------------------------------------------------------------------------

    def set_behaviour(
        self,
        behaviour: Behaviour,
        *,
        latency_s: float | None = None,
        latency_jitter_s: float | None = None,
    ) -> None:
        """Set what every later chat call does (and optionally its latency)."""
        self.behaviour = behaviour
        if latency_s is not None:
            self.latency_s = latency_s
        if latency_jitter_s is not None:
            self.latency_jitter_s = latency_jitter_s

    def fail_first(self, n: int, behaviour: Behaviour = Behaviour.HTTP_500) -> None:
        """Make the next `n` chat calls misbehave as `behaviour`, then fall back to `behaviour`."""
        with self._lock:
            self._fail_first_remaining = n
            self._fail_first_behaviour = behaviour

    def when_ticket_contains(self, text: str, behaviour: Behaviour, *, times: int | None = None) -> None:
        """Calls whose ticket text contains `text` do `behaviour` (`times` calls, or always if None)."""
        with self._lock:
            self._overrides.append(_Override(text, behaviour, times))

    def answer_probabilities(
        self,
        *,
        category: float,
        priority: float,
        when_ticket_contains: str | None = None,
        category_alternatives: Mapping[str, float] | None = None,
    ) -> None:
        """How sure the model is of the category and the priority it writes: the joint probability
        of each value's tokens in `logprobs`. For every later answer, or (winning over that) for the
        answers to tickets containing `when_ticket_contains`, the first such setting that matches.
        `category_alternatives`: other categories the model leaned to, with the probability of the token
        that begins each, listed where the category's value begins."""
        alternatives = tuple((category_alternatives or {}).items())
        if not (0.0 < category <= 1.0 and 0.0 < priority <= 1.0) or not all(0.0 < p < 1.0 for _, p in alternatives):
            raise ValueError("probabilities must be in (0, 1]")
        if category + sum(p for _, p in alternatives) > 1.0:
            raise ValueError("the category and its alternatives are one step's choices: they must sum to at most 1")
        probabilities = _Probabilities(category, priority, alternatives)
        with self._lock:
            if when_ticket_contains is None:
                self._probabilities = probabilities
            else:
                self._ticket_probabilities.append((when_ticket_contains, probabilities))

    def reset(self) -> None:
        """Back to VALID, no latency, no overrides, counters and recorded requests cleared."""
        with self._lock:
            self.behaviour = Behaviour.VALID
            self.latency_s = 0.0
            self.latency_jitter_s = 0.0
            self.logprobs_supported = True
            self._probabilities = _DEFAULT_PROBABILITIES
            self._ticket_probabilities.clear()
            self._overrides.clear()
            self._fail_first_remaining = 0
            self._request_count = 0
            self._chat_count = 0
            self._chats_answered = 0
            self._connections_accepted = 0
            self._max_in_flight = self._in_flight
            self._chat_requests.clear()
        with self._gate:
            self._max_answering = self._answering

    # -- observations ------------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """Requests received on any endpoint."""
        with self._lock:
            return self._request_count

    @property
    def chat_count(self) -> int:
        """`/api/chat` requests received."""
        with self._lock:
            return self._chat_count

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted; fewer than requests means clients reuse keep-alive connections."""
        with self._lock:
            return self._connections_accepted

    @property
    def max_concurrent_chats(self) -> int:
        """The most chat requests that were being handled at the same time."""
        with self._lock:
            return self._max_in_flight

    @property
    def chats_answered(self) -> int:
        """Chat calls answered with a 200 (a valid, invalid-JSON or schema-violating answer)."""
        with self._lock:
            return self._chats_answered

    @property
    def max_concurrent_answers(self) -> int:
        """The most chat calls past the `parallel` gate at the same time (never above `parallel`)."""
        with self._gate:
            return self._max_answering

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The last chat request bodies (oldest first, up to `keep_requests`)."""
        with self._lock:
            return list(self._chat_requests)

    @property
    def last_chat_request(self) -> dict[str, Any] | None:
        with self._lock:
            return self._chat_requests[-1] if self._chat_requests else None

    # -- used by the handler -----------------------------------------------------------------------

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)
            self._connections_accepted += 1

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
            if not self._connections:
                self._connections_gone.notify_all()

    def _count_request(self) -> None:
        with self._lock:
            self._request_count += 1

    def _begin_chat(self, request: dict[str, Any], ticket_text: str) -> Behaviour:
        with self._lock:
            self._chat_count += 1
            self._chat_requests.append(request)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            for override in self._overrides:
                if override.text in ticket_text and override.remaining != 0:
                    if override.remaining is not None:
                        override.remaining -= 1
                    return override.behaviour
            if self._fail_first_remaining > 0:
                self._fail_first_remaining -= 1
                return self._fail_first_behaviour
            return self.behaviour

    def _value_probabilities(self, ticket_text: str) -> _Probabilities:
        with self._lock:
            return next(
                (probabilities for text, probabilities in self._ticket_probabilities if text in ticket_text),
                self._probabilities,
            )

    def _end_chat(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _count_answer(self) -> None:
        with self._lock:
            self._chats_answered += 1

    def _enter_gate(self) -> bool:
        """Wait for a turn to answer, first come first served (`parallel`); False when the server stops first."""
        me = object()
        with self._gate:
            self._line.append(me)
            while not self._stopping.is_set():
                limit = self.parallel
                if self._line[0] is me and (limit is None or self._answering < limit):
                    self._line.popleft()
                    self._answering += 1
                    self._max_answering = max(self._max_answering, self._answering)
                    self._gate.notify_all()
                    return True
                self._gate.wait(0.1)
            self._line.remove(me)
            return False

    def _leave_gate(self) -> None:
        with self._gate:
            self._answering -= 1
            self._gate.notify_all()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _latency(self) -> float:
        jitter = self.latency_jitter_s
        return self.latency_s + (self._random.uniform(0.0, jitter) if jitter > 0 else 0.0)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Connections are tracked and closed by FakeOllama.stop(); joining here would wait on idle keep-alives.
    block_on_close = False
    # The default backlog of 5 makes a burst of 16+ connects wait for SYN retries (1 s each).
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], fake: FakeOllama) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall on some hosts.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or was stopped mid-answer is expected, not a failure of the fake.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOllama/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    # Buffered writes: status line, headers and body leave in one segment per response.
    wbufsize = 64 * 1024
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection)
        if self.server.fake._stopping.is_set():
            # Accepted just before stop() closed the tracked sockets: close this one too.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one stderr line per request would dominate benchmark runs

    # -- routing -----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.server.fake._count_request()
        path = self.path.split("?", 1)[0]
        if path == "/api/version":
            version = OLLAMA_VERSION if self.server.fake.logprobs_supported else OLDER_OLLAMA_VERSION
            self._send_json(200, VersionResponse(version=version))
        elif path == "/api/tags":
            self._send_json(200, TagsResponse(models=[_tag(name) for name in self.server.fake.models]))
        elif path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        else:
            self._send(404, b"404 page not found", "text/plain")

    def do_HEAD(self) -> None:
        self.server.fake._count_request()
        status = 200 if self.path.split("?", 1)[0] in ("/", "/api/version") else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        fake = self.server.fake
        fake._count_request()
        raw = self._read_body()
        if self.path.split("?", 1)[0] != "/api/chat":
            self._send(404, b"404 page not found", "text/plain")
            return
        try:
            request = json.loads(raw) if raw else None
        except ValueError as exc:
            self._send_json(400, ErrorResponse(error=f"invalid request body: {exc}"))
            return
        if not isinstance(request, dict):
            self._send_json(400, ErrorResponse(error="invalid request body"))
            return
        if not request.get("model"):
            self._send_json(400, ErrorResponse(error="model is required"))
            return
        top_logprobs = request.get("top_logprobs") or 0
        if fake.logprobs_supported and not (isinstance(top_logprobs, int) and 0 <= top_logprobs <= _MAX_TOP_LOGPROBS):
            self._send_json(400, ErrorResponse(error=f"top_logprobs must be between 0 and {_MAX_TOP_LOGPROBS}"))
            return
        title, description = ticket_of(_messages(request))
        behaviour = fake._begin_chat(request, f"{title}\n{description}")
        try:
            self._chat(request, behaviour, title, description)
        finally:
            fake._end_chat()

    # -- chat --------------------------------------------------------------------------------------

    def _chat(self, request: dict[str, Any], behaviour: Behaviour, title: str, description: str) -> None:
        fake = self.server.fake
        if not fake._enter_gate():
            self.close_connection = True
            return
        try:
            self._answer(request, behaviour, title, description)
        finally:
            fake._leave_gate()

    def _answer(self, request: dict[str, Any], behaviour: Behaviour, title: str, description: str) -> None:
        fake = self.server.fake
        started = time.perf_counter_ns()
        model = str(request["model"])
        fake._pause(fake.hang_s if behaviour is Behaviour.HANG else fake._latency())
        if behaviour is Behaviour.DROP_CONNECTION:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if behaviour is Behaviour.HTTP_500:
            self._send_json(500, ErrorResponse(error="llama runner process has terminated: exit status 2"))
            return
        if behaviour is Behaviour.MODEL_NOT_FOUND or (
            fake.strict_models and model not in fake.models and f"{model}:latest" not in fake.models
        ):
            self._send_json(404, ErrorResponse.model_not_found(model))
            return
        if behaviour is Behaviour.NOT_OLLAMA:
            self._send(200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
            return
        answer = triage_answer(title, description, schema_categories(request.get("format")))
        spans: dict[str, tuple[int, int]] = {}
        if behaviour is Behaviour.INVALID_JSON:
            content = 'Sure! Here is the triage:\n{"category": "' + str(answer["category"]) + '", "priority": '
        elif behaviour is Behaviour.SCHEMA_VIOLATION:
            wrong = dict(answer, category="not_a_category")
            del wrong["confidence"]
            content = json.dumps(wrong)
        else:  # VALID, and HANG once it has waited (the client has usually given up by then)
            content, spans = _json_with_value_spans(answer)
        tokens = _tokens(content)
        logprobs: list[Logprob] | None = None
        if fake.logprobs_supported and request.get("logprobs") is True:
            probabilities = fake._value_probabilities(f"{title}\n{description}")
            logprobs = _logprobs(tokens, spans, probabilities, int(request.get("top_logprobs") or 0))
        prompt_tokens = max(1, sum(len(str(m.get("content", ""))) for m in _messages(request)) // 4)
        completion_tokens = len(tokens)
        fake._count_answer()
        if request.get("stream", True) is False:
            self._send_json(200, _final(model, content, started, prompt_tokens, completion_tokens, logprobs))
        else:
            self._stream(model, tokens, logprobs, started, prompt_tokens, completion_tokens)

    def _stream(
        self,
        model: str,
        tokens: list[str],
        logprobs: list[Logprob] | None,
        started: int,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        """One line per piece of about `_STREAM_PIECE_CHARS` characters, each with its tokens' logprobs."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = 0
        while first < len(tokens):
            last = first + 1
            while last < len(tokens) and sum(len(token) for token in tokens[first:last]) < _STREAM_PIECE_CHARS:
                last += 1
            piece = "".join(tokens[first:last])
            piece_logprobs = None if logprobs is None else logprobs[first:last]
            self._write_chunk(ChatChunk(model=model, message=AssistantMessage(content=piece), logprobs=piece_logprobs))
            first = last
        self._write_chunk(_final(model, "", started, prompt_tokens, completion_tokens))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, part: BaseModel) -> None:
        line = part.model_dump_json().encode() + b"\n"
        self.wfile.write(b"%x\r\n%b\r\n" % (len(line), line))
        self.wfile.flush()

    # -- plumbing ----------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: BaseModel) -> None:
        self._send(status, body.model_dump_json().encode(), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- request parts and response bodies ---------------------------------------------------------------


def _messages(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _json_with_value_spans(answer: Mapping[str, Any]) -> tuple[str, dict[str, tuple[int, int]]]:
    """`json.dumps(answer, ensure_ascii=False)`, and the characters between the quotes of each string value."""
    parts: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    length = 1  # the opening brace
    for index, (key, value) in enumerate(answer.items()):
        prefix = (", " if index else "") + json.dumps(key, ensure_ascii=False) + ": "
        text = json.dumps(value, ensure_ascii=False)
        length += len(prefix)
        if isinstance(value, str):
            spans[key] = (length + 1, length + len(text) - 1)
        length += len(text)
        parts.append(prefix + text)
    return "{" + "".join(parts) + "}", spans


def _tokens(content: str) -> list[str]:
    return _TOKEN.findall(content)


def _logprobs(
    tokens: list[str], spans: Mapping[str, tuple[int, int]], probabilities: _Probabilities, top: int
) -> list[Logprob]:
    """One entry per token: the tokens of each value share its probability evenly; the category's first
    token lists the alternatives set for it."""
    starts = [0]
    for token in tokens:
        starts.append(starts[-1] + len(token))
    logprob = [math.log(OTHER_TOKEN_PROBABILITY)] * len(tokens)
    leaning: dict[int, tuple[tuple[str, float], ...]] = {}
    for field, probability in (("category", probabilities.category), ("priority", probabilities.priority)):
        if field not in spans:
            continue
        first, last = spans[field]
        inside = [i for i in range(len(tokens)) if starts[i] < last and starts[i + 1] > first]
        named = probabilities.category_alternatives if field == "category" else ()
        for i in inside:
            # With named alternatives the first token decides the value, so that its step sums to at most 1.
            logprob[i] = (
                (math.log(probability) if i == inside[0] else 0.0) if named else math.log(probability) / len(inside)
            )
        if named and inside:
            leaning[inside[0]] = named
    return [
        Logprob(
            token=token,
            logprob=value,
            bytes=list(token.encode()),
            top_logprobs=_alternatives(token, value, top, leaning.get(i, ())) or None,
        )
        for i, (token, value) in enumerate(zip(tokens, logprob, strict=True))
    ]


def _alternatives(
    token: str, logprob: float, top: int, named: tuple[tuple[str, float], ...] = ()
) -> list[TokenLogprob]:
    """The token, the `named` ones, and made-up ones sharing the rest of the probability up to `top`,
    most likely first."""
    if top <= 0:
        return []
    listed = [TokenLogprob(token=token, logprob=logprob)]
    listed += [TokenLogprob(token=text, logprob=math.log(p)) for text, p in named]
    left = max(1e-12, 1.0 - sum(math.exp(alt.logprob) for alt in listed))
    fill = top - len(listed)
    listed += [TokenLogprob(token=f"<alt {n}>", logprob=math.log(left / fill)) for n in range(1, fill + 1)]
    return sorted(listed, key=lambda alt: -alt.logprob)[:top]


def _final(
    model: str,
    content: str,
    started_ns: int,
    prompt_tokens: int,
    completion_tokens: int,
    logprobs: list[Logprob] | None = None,
) -> ChatResponse:
    total = max(1, time.perf_counter_ns() - started_ns)
    load = min(total // 10, 1_500_000)
    prompt_eval = (total - load) // 5
    return ChatResponse(
        model=model,
        message=AssistantMessage(content=content),
        done_reason="stop",
        total_duration=total,
        load_duration=load,
        prompt_eval_count=prompt_tokens,
        prompt_eval_duration=prompt_eval,
        eval_count=completion_tokens,
        eval_duration=total - load - prompt_eval,
        logprobs=logprobs,
    )


def _tag(name: str) -> ModelEntry:
    family = name.split(":", 1)[0]
    return ModelEntry(
        name=name,
        model=name,
        modified_at=_MODIFIED_AT,
        size=291_554_930,
        digest=hashlib.sha256(name.encode()).hexdigest(),
        details=ModelDetails(family=family, families=[family], parameter_size="268.10M", quantization_level="Q8_0"),
    )


# -- command line ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the fake as a process until SIGINT/SIGTERM; prints `FAKE_OLLAMA_URL=...` once listening."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_ollama", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each chat answer")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra uniform random latency, seconds")
    parser.add_argument("--behaviour", type=Behaviour, choices=list(Behaviour), default=Behaviour.VALID)
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a HANG call waits")
    parser.add_argument("--model", action="append", help="model listed by /api/tags (repeatable)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-logprobs", action="store_true", help="ignore `logprobs`, as Ollama before 0.12.11")
    parser.add_argument(
        "--parallel", type=int, default=None, help="chat calls answered at once, the rest wait (OLLAMA_NUM_PARALLEL)"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fake = FakeOllama(
        host=args.host,
        port=args.port,
        behaviour=args.behaviour,
        latency_s=args.latency,
        latency_jitter_s=args.jitter,
        hang_s=args.hang,
        models=args.model or (DEFAULT_MODEL,),
        seed=args.seed,
        logprobs_supported=not args.no_logprobs,
        parallel=args.parallel,
    )
    with fake:
        print(f"FAKE_OLLAMA_URL={fake.url}", flush=True)
        while not stop.wait(1.0):
            pass
        print(
            f"served {fake.request_count} requests ({fake.chat_count} chats), {fake.chats_answered} chats answered",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
