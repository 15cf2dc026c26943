"""Command line of the offline LLM: load a packaged GGUF model and serve it over Ollama's API with uvicorn.

    python -m offline_llm --port 11435 --model smollm2     # what `triage run` starts
    python -m offline_llm --prepare-only --model all        # what `make offline-llm` runs

Environment: OFFLINE_LLM_HOST, OFFLINE_LLM_PORT, OFFLINE_LLM_MODEL and LOG_LEVEL are the defaults of
--host, --port, --model and --log-level. Logs are JSON lines on stderr. Exit codes: 0 stopped,
2 bad arguments, 3 llama-cpp-python or the model package missing, 4 the port cannot be bound.
"""

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from offline_llm.app import create_app
from offline_llm.catalog import DEFAULT_MODEL, MODELS
from offline_llm.errors import OfflineLlmUnavailable
from offline_llm.llama_backend import (
    DEFAULT_CTX,
    DEFAULT_MAX_SECONDS,
    DEFAULT_MAX_TOKENS,
    LlamaCppBackend,
    default_threads,
    load_backend,
)
from offline_llm.model_files import locate_model, project_cache_dir
from triage_pipeline.infrastructure.logging import configure_logging

logger = logging.getLogger("offline_llm")

DEFAULT_PORT = 11435
DEFAULT_HOST = "127.0.0.1"
# Seconds uvicorn waits for answers in progress at shutdown before it cancels them.
_GRACEFUL_SHUTDOWN_S = 3
DEMO_WARNING = (
    "This is a tiny demo-quality model running on CPU: it proves the pipeline works offline, "
    "its triage answers are often wrong. It is NOT production triage: set LLM_BASE_URL to a real "
    "Ollama server for real use."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (defaults from the environment where noted in the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m offline_llm",
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


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port, bound here so a busy port is a clear exit, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def banner(backend: LlamaCppBackend, host: str, port: int) -> str:
    """What a person starting the server must know: which model, where, and that it is demo quality."""
    spec = backend.spec
    return (
        f"Offline LLM: {spec.display_name} ({spec.parameter_size} parameters, {spec.quantization} GGUF) "
        f"answers as {spec.ollama_name!r} on http://{host}:{port} (Ollama API, llama-cpp-python "
        f"{backend.llama_cpp_version}, loaded in {backend.load_duration / 1e9:.1f} s).\n{DEMO_WARNING}"
    )


def main(argv: list[str] | None = None) -> int:
    """Load the model and serve until SIGINT/SIGTERM; see the module docstring for the exit codes."""
    args = parse_args(argv)
    log_level = str(args.log_level).upper()
    configure_logging(log_level)
    cache_dir = args.cache_dir or project_cache_dir()
    try:
        if args.prepare_only:
            for key in MODELS if args.model == "all" else [args.model]:
                print(f"{key}: {locate_model(MODELS[key], cache_dir)}", file=sys.stderr)
            return 0
        if args.model == "all":
            print("error: --model all is only for --prepare-only", file=sys.stderr)
            return 2
        backend = load_backend(
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
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"offline LLM: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 4
    if log_level in ("DEBUG", "INFO"):  # `triage run` asks for WARNING and prints its own one-line summary
        print(banner(backend, args.host, args.port), file=sys.stderr, flush=True)
    logger.info(
        "offline LLM serving",
        extra={"fields": {"model": backend.model_name, "port": args.port, "quality": "demo, not production"}},
    )
    config = uvicorn.Config(
        create_app(backend),
        log_config=None,  # uvicorn's records go through the JSON logging configured above
        log_level=log_level.lower(),
        access_log=log_level == "DEBUG",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    with sock:
        uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
