"""The one ASGI middleware around every HTTP request: request id, body size limit, security headers, last-resort
500s and the JSON access log.

They are one layer rather than one middleware each so that their order is written once, top to bottom, here
(with `add_middleware` it follows from the reverse order of the calls), and a request passes one layer instead
of three. The request id comes first, so that every response, 413s and 500s included, carries it and the
security headers, and every request is logged once.
"""

import logging
import re
import time
from collections.abc import Iterable
from uuid import uuid4

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_body
from api.schemas.problem import PROBLEM_MEDIA_TYPE
from triage_pipeline.infrastructure.logging import bind_context, clear_context

logger = logging.getLogger("api.access")

REQUEST_ID_HEADER = "X-Request-ID"
MAX_BODY_BYTES = 2 * 1024 * 1024
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")


def _problem(scope: Scope, status: int, code: str, detail: str, **extensions: object) -> JSONResponse:
    request_id = scope.get("state", {}).get("request_id")
    body = problem_body(status, code, detail, instance=scope.get("path", ""), request_id=request_id)
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (`name` in lower case)."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


class RequestMiddleware:
    """Around every HTTP request:

    - an id (a sane incoming `X-Request-ID` is kept), in `scope["state"]`, in every log record of the
      request, and in the `X-Request-ID` response header;
    - a body size limit: 413 `payload_too_large` when the declared Content-Length or the streamed body
      exceeds `max_body_bytes`. The body is read ahead (at most `max_body_bytes` are buffered) and replayed
      to the application, so an oversized body is refused before any of it is parsed;
    - `response_headers` added to every response that does not set them (the security headers);
    - a crash becomes a 500 `internal_error` problem that names the request id, and is logged with it;
    - one `request served` access log line (method, path, status, duration_ms).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        response_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.response_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response_headers
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its logging context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = (_header(scope, _REQUEST_ID_KEY) or b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        bind_context(request_id=request_id)
        status = 500
        response_started = False
        request_id_header = (_REQUEST_ID_KEY, request_id.encode("latin-1"))

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _REQUEST_ID_KEY]
                headers.append(request_id_header)
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in self.response_headers if h[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            body = await self._read_body(scope, receive, send_with_headers)
            if body is not None:
                await self.app(scope, body, send_with_headers)
        except Exception:
            logger.exception(
                "unhandled error while serving the request",
                extra={"request_id": request_id, "fields": {"method": scope["method"], "path": scope["path"]}},
            )
            if response_started:
                raise
            response = _problem(scope, 500, "internal_error", f"Unexpected error; quote request id {request_id}.")
            await response(scope, receive, send_with_headers)
        finally:
            logger.info(
                "request served",
                extra={
                    "request_id": request_id,
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                },
            )
            clear_context()

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A `receive` that replays the whole body once it is known to fit; None once a 400 or 413 was sent."""
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _problem(scope, 400, "bad_request", "Content-Length is not a number.")(scope, receive, send)
                return None
            if int(declared) > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return None
        chunks: list[bytes] = []
        size = 0
        pending: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the application see it
                pending.append(message)
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending.insert(0, {"type": "http.request", "body": b"".join(chunks), "more_body": False})

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        return replay

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The request body exceeds {self.max_body_bytes} bytes."
        await _problem(scope, 413, "payload_too_large", detail, max_bytes=self.max_body_bytes)(scope, receive, send)
