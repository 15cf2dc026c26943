"""ASGI middleware: request ids, access logs and last-resort 500s; the request body size limit."""

import logging
import re
import time
from uuid import uuid4

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_body
from api.schemas.problem import PROBLEM_MEDIA_TYPE
from triage_pipeline.infrastructure.logging import bind_context, clear_context

logger = logging.getLogger("api.access")

REQUEST_ID_HEADER = "X-Request-ID"
MAX_BODY_BYTES = 2 * 1024 * 1024
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _problem(scope: Scope, status: int, code: str, detail: str, **extensions: object) -> JSONResponse:
    request_id = scope.get("state", {}).get("request_id")
    body = problem_body(status, code, detail, instance=scope.get("path", ""), request_id=request_id)
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


class RequestContextMiddleware:
    """Gives each request an id (kept from a sane `X-Request-ID`), logs it, and turns crashes into 500 problems."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its logging context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        bind_context(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception(
                "unhandled error while serving the request",
                extra={"request_id": request_id, "fields": {"method": scope["method"], "path": scope["path"]}},
            )
            if response_started:
                raise
            response = _problem(scope, 500, "internal_error", f"Unexpected error; quote request id {request_id}.")
            await response(scope, receive, send_with_request_id)
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


class BodySizeLimitMiddleware:
    """Answers 413 when the declared Content-Length or the streamed body exceeds `max_bytes`.

    The body is read ahead (at most `max_bytes` are buffered) and replayed to the application, so
    an oversized body is refused before any of it is parsed, whether or not its length was declared.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the size, then hand the buffered body on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _problem(scope, 400, "bad_request", "Content-Length is not a number.")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
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
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending.insert(0, {"type": "http.request", "body": b"".join(chunks), "more_body": False})

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The request body exceeds {self.max_bytes} bytes."
        await _problem(scope, 413, "payload_too_large", detail, max_bytes=self.max_bytes)(scope, receive, send)
