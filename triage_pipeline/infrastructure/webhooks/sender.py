"""Posts one event with the Standard Webhooks headers, signed by the `standardwebhooks` library.

The connection goes to the address the SSRF guard just checked (the URL's host is kept as the Host header
and the TLS server name), redirects are not followed, proxies from the environment are ignored, and a
request is bounded as a whole: each read by `WEBHOOK_TIMEOUT_S`, and the request by that span plus
`DEADLINE_SLACK_S` (`RequestDeadline` shuts its socket down), so a receiver that drips its answer a byte
at a time cannot hold a delivery slot. At most `RESPONSE_READ_LIMIT` bytes of the answer are read: the
log's excerpt.
"""

import contextlib
import json
import logging
import socket
import threading
import time
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from triage_pipeline.domain.exceptions import UnsafeWebhookTarget
from triage_pipeline.domain.webhook import ERROR_MAX_LENGTH, RESPONSE_EXCERPT_MAX_LENGTH, SigningSecrets, WebhookEvent
from triage_pipeline.domain.webhook_ports import SendResult
from triage_pipeline.infrastructure.webhooks.target_policy import CheckedTarget, ResolvingTargetPolicy

logger = logging.getLogger(__name__)

RESPONSE_READ_LIMIT = 4_096
USER_AGENT = "ticket-triage-webhooks/1"
DEADLINE_SLACK_S = 1.0


class RequestDeadline:
    """Shuts down the request's socket when the deadline passes: a blocked read then ends at once.

    The socket is taken from httpcore's `trace` extension when the connection is made; every request has a
    connection of its own (no keep-alive), so there is always one to take.
    """

    def __init__(self, seconds: float) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        return self._expired

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            with self._lock:
                if sock is not None:
                    self._sockets.append(sock)
                    if self._expired:
                        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> "RequestDeadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def signature_header(webhook_id: str, timestamp: datetime, body: str, secrets: SigningSecrets) -> str:
    """`v1,<sig>` for the current secret, and a second, space-separated one for the previous (rotation)."""
    keys = [secrets.current] + ([secrets.previous] if secrets.previous else [])
    return " ".join(Webhook(key).sign(webhook_id, timestamp, body) for key in keys)


def pinned(url: str, target: CheckedTarget) -> tuple[httpx.URL, dict[str, str], dict[str, object]]:
    """The URL to connect to, with the Host header and TLS server name that keep the original host."""
    original = httpx.URL(url)
    if target.address is None:
        return original, {}, {}
    host_header = original.host if original.port is None else f"{original.host}:{original.port}"
    extensions: dict[str, object] = {"sni_hostname": original.host} if original.scheme == "https" else {}
    return original.copy_with(host=str(target.address)), {"host": host_header}, extensions


class HttpxWebhookSender:
    def __init__(self, target_policy: ResolvingTargetPolicy, timeout_s: float, max_connections: int) -> None:
        self._policy = target_policy
        self._timeout_s = timeout_s
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            follow_redirects=False,
            trust_env=False,
            # A connection per request: the deadline can always reach its socket (see RequestDeadline).
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    def send(self, url: str, event: WebhookEvent, secrets: SigningSecrets) -> SendResult:
        body = json.dumps(event.payload(), separators=(",", ":"), ensure_ascii=False)
        sent_at = datetime.now(event.created_at.tzinfo)
        headers = {
            "content-type": "application/json",
            "webhook-id": event.webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature_header(event.webhook_id, sent_at, body, secrets),
        }
        started = time.monotonic()
        deadline = RequestDeadline(self._timeout_s + DEADLINE_SLACK_S)
        try:
            request_url, host, extensions = pinned(url, self._policy.resolve(url))
            request = self._client.build_request(
                "POST",
                request_url,
                content=body.encode(),
                headers=headers | host,
                extensions={**extensions, "trace": deadline.trace},
            )
            with deadline:
                response = self._client.send(request, stream=True)
                try:
                    excerpt = self._read_excerpt(response, started)
                finally:
                    response.close()
            return SendResult(response.status_code, _elapsed(started), None, excerpt)
        except UnsafeWebhookTarget as exc:
            return SendResult(None, _elapsed(started), f"target refused: {exc}"[:ERROR_MAX_LENGTH])
        except httpx.TimeoutException as exc:
            return SendResult(None, _elapsed(started), f"timeout: {type(exc).__name__}"[:ERROR_MAX_LENGTH])
        except Exception as exc:  # whatever the receiver or the URL does, the attempt is recorded, not raised
            if deadline.expired:
                limit = self._timeout_s + DEADLINE_SLACK_S
                return SendResult(None, _elapsed(started), f"timeout: the whole request took over {limit:g} s")
            return SendResult(None, _elapsed(started), f"{type(exc).__name__}: {exc}"[:ERROR_MAX_LENGTH])

    def _read_excerpt(self, response: httpx.Response, started: float) -> str | None:
        """Up to the read limit, stopping at the request's overall deadline (a receiver dripping its body)."""
        excerpt = bytearray()
        for chunk in response.iter_bytes():
            excerpt.extend(chunk)
            if len(excerpt) >= RESPONSE_READ_LIMIT or time.monotonic() - started > self._timeout_s:
                break
        # PostgreSQL text holds no NUL; a binary answer keeps its readable part.
        text = excerpt.decode("utf-8", errors="replace").replace("\x00", "")[:RESPONSE_EXCERPT_MAX_LENGTH]
        return text or None

    def close(self) -> None:
        self._client.close()


def _elapsed(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
