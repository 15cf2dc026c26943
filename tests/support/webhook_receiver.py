"""A real webhook receiver on loopback (uvicorn in a thread) that verifies every request with the
`standardwebhooks` library, as a support tool would, and records what it got.

Its behaviour is set per test: the status codes to answer (a script, then a default), a delay before
answering (to go past the sender's timeout), and it can be stopped and started again on the same port
(a receiver that is down for a while).
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.support.live_server import serving
from triage_pipeline.infrastructure.embedded_postgres import free_port


@dataclass(frozen=True, slots=True)
class Received:
    webhook_id: str
    timestamp: str
    signature: str
    payload: dict[str, Any] | None
    """The verified body; None when the signature did not verify."""
    verified: bool
    answered: int
    at: float


@dataclass
class WebhookReceiver:
    """Records requests at `url`; `secret` (set after subscribing) is what it verifies signatures with."""

    secret: str | None = None
    default_status: int = 204
    script: list[int] = field(default_factory=list)
    """Status codes to answer first, one per request, before `default_status`."""
    delay_s: float = 0.0
    response_body: bytes | None = None
    """What to answer with instead of a short text (a binary answer, say)."""
    received: list[Received] = field(default_factory=list)
    arrivals: list[str] = field(default_factory=list)
    """The webhook-id of every request, noted on arrival (before any delay)."""
    port: int = field(default_factory=free_port)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serving: ExitStack = field(default_factory=ExitStack)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            with self._lock:
                self.arrivals.append(headers.get("webhook-id", ""))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)  # a receiver too slow to answer
            payload: dict[str, Any] | None = None
            verified = False
            if self.secret is not None:
                try:
                    payload = Webhook(self.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    payload = None
            with self._lock:
                status = self.script.pop(0) if self.script else self.default_status
                if not verified:
                    status = 400
                self.received.append(
                    Received(
                        webhook_id=headers.get("webhook-id", ""),
                        timestamp=headers.get("webhook-timestamp", ""),
                        signature=headers.get("webhook-signature", ""),
                        payload=payload,
                        verified=verified,
                        answered=status,
                        at=time.time(),
                    )
                )
            content = b"" if status in (204, 304) else (b"ok" if status < 300 else b"nope")
            if self.response_body is not None and status not in (204, 304):
                content = self.response_body
            return Response(status_code=status, content=content)

        return app

    def start(self) -> None:
        """Serve on `port` (the same one after a `stop`: a receiver that was down comes back)."""
        self._serving.enter_context(serving(self.app(), port=self.port))

    def stop(self) -> None:
        self._serving.close()

    def delivered(self, event_type: str | None = None) -> list[Received]:
        """Verified requests answered 2xx, of this event type if given."""
        with self._lock:
            return [
                r
                for r in self.received
                if r.verified
                and 200 <= r.answered < 300
                and (event_type is None or (r.payload or {}).get("type") == event_type)
            ]


@contextmanager
def webhook_receiver(**options: Any) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(**options)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
