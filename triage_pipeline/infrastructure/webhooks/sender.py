"""Posts one event with the Standard Webhooks headers, signed by the `standardwebhooks` library.

Timeouts are bounded; redirects are not followed; at most `RESPONSE_READ_LIMIT` bytes of the answer are
read (the excerpt kept in the delivery log), so a receiver cannot make the deliverer hold a large body.
"""

import json
import time
from datetime import datetime

import httpx
from standardwebhooks import Webhook

from triage_pipeline.domain.exceptions import UnsafeWebhookTarget
from triage_pipeline.domain.webhook import ERROR_MAX_LENGTH, RESPONSE_EXCERPT_MAX_LENGTH, SigningSecrets, WebhookEvent
from triage_pipeline.domain.webhook_ports import SendResult, TargetPolicy

RESPONSE_READ_LIMIT = 4_096
USER_AGENT = "ticket-triage-webhooks/1"


def signature_header(webhook_id: str, timestamp: datetime, body: str, secrets: SigningSecrets) -> str:
    """`v1,<sig>` for the current secret, and a second, space-separated one for the previous (rotation)."""
    keys = [secrets.current] + ([secrets.previous] if secrets.previous else [])
    return " ".join(Webhook(key).sign(webhook_id, timestamp, body) for key in keys)


class HttpxWebhookSender:
    def __init__(self, target_policy: TargetPolicy, timeout_s: float, max_connections: int) -> None:
        self._policy = target_policy
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": USER_AGENT},
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
        try:
            self._policy.check(url)
            with self._client.stream("POST", url, content=body.encode(), headers=headers) as response:
                excerpt = bytearray()
                for chunk in response.iter_raw():
                    excerpt.extend(chunk)
                    if len(excerpt) >= RESPONSE_READ_LIMIT:
                        break
                text = excerpt.decode("utf-8", errors="replace")[:RESPONSE_EXCERPT_MAX_LENGTH]
                return SendResult(response.status_code, _elapsed(started), None, text or None)
        except UnsafeWebhookTarget as exc:
            return SendResult(None, _elapsed(started), f"target refused: {exc}"[:ERROR_MAX_LENGTH])
        except httpx.TimeoutException as exc:
            return SendResult(None, _elapsed(started), f"timeout: {type(exc).__name__}"[:ERROR_MAX_LENGTH])
        except httpx.HTTPError as exc:
            return SendResult(None, _elapsed(started), f"{type(exc).__name__}: {exc}"[:ERROR_MAX_LENGTH])

    def close(self) -> None:
        self._client.close()


def _elapsed(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
