"""The offline LLM's app served by a real uvicorn on a free loopback port, in a background thread."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from offline_llm.app import create_app
from offline_llm.backend import ChatBackend
from triage_pipeline.infrastructure.embedded_postgres import free_port


@contextmanager
def live_offline_llm(
    backend: ChatBackend, *, host: str = "127.0.0.1", startup_timeout_s: float = 30.0
) -> Iterator[str]:
    """Serve `create_app(backend)` until the block ends; yields the base URL (`http://127.0.0.1:<port>`)."""
    port = free_port(host)
    config = uvicorn.Config(create_app(backend), host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-offline-llm", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during startup")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start within {startup_timeout_s} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
