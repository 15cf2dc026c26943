"""An ASGI app served by a real uvicorn on a loopback port, in a background thread (tests and benchmarks)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from api.main import create_app
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.embedded_postgres import free_port


@contextmanager
def serving(
    app: Any, *, host: str = "127.0.0.1", port: int | None = None, startup_timeout_s: float = 30.0, **config: Any
) -> Iterator[tuple[str, uvicorn.Server]]:
    """Serve `app` until the block ends (on `port`, else a free one); yields its base URL and the server (set
    `should_exit` to stop it early)."""
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, **config))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
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
        yield f"http://{host}:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def live_api(container: Container, *, host: str = "127.0.0.1", startup_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve `create_app(container)` until the block ends; yields the base URL."""
    app = create_app(container)
    with serving(app, host=host, startup_timeout_s=startup_timeout_s, backlog=2048, timeout_keep_alive=30) as (url, _):
        yield url
