"""Wakes a deliverer when the outbox gets deliveries: PostgreSQL's LISTEN on the channel the outbox NOTIFYs.

A NOTIFY is delivered when its transaction commits, so a woken deliverer finds the new rows; a rolled-back
change wakes nobody. Waiting costs no CPU and no queries, which is why `triage run` delivers this way
rather than by polling (README, Performance: the idle stack).
"""

import logging
import time

import psycopg

from triage_pipeline.infrastructure.db.webhook_outbox_repository import OUTBOX_CHANNEL
from triage_pipeline.infrastructure.url_parts import libpq_url

logger = logging.getLogger(__name__)


class PgOutboxListener:
    """LISTEN on its own autocommit connection, opened on first wait and again after the database was away."""

    def __init__(self, database_url: str) -> None:
        self._url = libpq_url(database_url)
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None

    def _connected(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(self._url, autocommit=True)
            connection.execute(f"LISTEN {OUTBOX_CHANNEL}")
            self._connection = connection
        return self._connection

    def wait(self, timeout_s: float) -> bool:
        """True when deliveries were added (every pending notice is taken), False after `timeout_s`."""
        try:
            connection = self._connected()
            woken = False
            for _ in connection.notifies(timeout=timeout_s, stop_after=1):
                woken = True
            if woken:  # several commits may have notified: one pass serves them all
                for _ in connection.notifies(timeout=0):
                    pass
            return woken
        except psycopg.Error as exc:
            logger.warning("webhook outbox listener lost its connection", extra={"fields": {"error": str(exc)}})
            self.close()
            time.sleep(min(timeout_s, 1.0))
            return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
