"""The offline LLM's app served by a real uvicorn on a free loopback port, in a background thread."""

from collections.abc import Iterator
from contextlib import contextmanager

from offline_llm.app import create_app
from offline_llm.backend import ChatBackend
from tests.support.live_server import serving


@contextmanager
def live_offline_llm(
    backend: ChatBackend, *, host: str = "127.0.0.1", startup_timeout_s: float = 30.0
) -> Iterator[str]:
    """Serve `create_app(backend)` until the block ends; yields the base URL (`http://127.0.0.1:<port>`)."""
    with serving(create_app(backend), host=host, startup_timeout_s=startup_timeout_s) as (url, _):
        yield url
