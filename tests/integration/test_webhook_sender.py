"""The webhook sender against raw receivers on loopback: a request is bounded as a whole, whatever the
receiver does with its answer."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import uuid4

from triage_pipeline.domain.webhook import EventType, SigningSecrets, WebhookEvent
from triage_pipeline.infrastructure.webhooks.sender import HttpxWebhookSender
from triage_pipeline.infrastructure.webhooks.target_policy import ResolvingTargetPolicy

SECRET = SigningSecrets("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
EVENT = WebhookEvent(uuid4(), EventType.PING, None, {"endpoint_id": "x"}, datetime.now(UTC))


@contextmanager
def raw_receiver(answer: bytes, drip_every_s: float) -> Iterator[str]:
    """A TCP server that reads the request, then sends `answer` a byte every `drip_every_s` seconds."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            for byte in answer:
                if stop.is_set():
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(drip_every_s)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


def test_a_receiver_dripping_its_headers_is_cut_off_at_the_requests_deadline() -> None:
    sender = HttpxWebhookSender(ResolvingTargetPolicy(allow_private=True), timeout_s=1.0, max_connections=2)
    # Each byte comes well within the 1 s read timeout: only the whole-request deadline (1 s + 1 s) ends it.
    with raw_receiver(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n", drip_every_s=0.2) as url:
        started = time.monotonic()
        result = sender.send(url, EVENT, SECRET)
        elapsed = time.monotonic() - started
    sender.close()

    assert result.status_code is None
    assert result.error is not None and result.error.startswith("timeout: the whole request took over 2 s")
    assert 1.9 <= elapsed < 4.0


def test_a_receiver_dripping_its_body_is_answered_by_its_status_within_the_deadline() -> None:
    sender = HttpxWebhookSender(ResolvingTargetPolicy(allow_private=True), timeout_s=1.0, max_connections=2)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    with raw_receiver(head + b"b" * 100_000, drip_every_s=0.0005) as url:
        started = time.monotonic()
        result = sender.send(url, EVENT, SECRET)
        elapsed = time.monotonic() - started
    sender.close()

    assert result.status_code == 200 and elapsed < 4.0
    assert result.response_excerpt is not None and set(result.response_excerpt) == {"b"}
