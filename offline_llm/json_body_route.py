"""Request bodies read as JSON whatever their Content-Type, as Ollama reads them.

Ollama's own examples post with `curl ... -d '{...}'`, which labels the body as a form; FastAPI would
then not parse it as JSON and the request would fail validation.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class JsonBodyRoute(APIRoute):
    """An `APIRoute` that treats every request body as `application/json` (FastAPI's custom route class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, called with the Content-Type set to JSON."""
        handle = super().get_route_handler()

        async def handle_as_json(request: Request) -> Response:
            headers = [(name, value) for name, value in request.scope["headers"] if name != b"content-type"]
            request.scope["headers"] = [*headers, (b"content-type", b"application/json")]
            return await handle(request)

        return handle_as_json
