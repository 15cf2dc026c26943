"""The SQLAlchemy engine: one connection pool per process."""

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from triage_pipeline.infrastructure.settings import sqlalchemy_url

# Connections are opened lazily, so a process holds only as many as it ever used at once. The API runs
# its sync endpoints on anyio's 40 worker threads: a pool of 40 lets a busy API keep its connections
# instead of opening and closing an overflow connection per request (a PostgreSQL backend start each).
# A triage run needs about two (its coordinating thread does all the database work of a chunk).
POOL_SIZE = 40
MAX_OVERFLOW = 10
# A connection back in the pool for longer than this is pinged before use (a restarted database or a
# dropped connection is noticed there); one reused sooner skips that round trip.
PING_AFTER_IDLE_S = 1.0


def make_engine(
    url: str,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    ping_after_idle_s: float = PING_AFTER_IDLE_S,
) -> Engine:
    """An engine whose pool checks idle connections before use, so a restarted database is survived."""
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=10,
        # A database host that drops packets must fail fast (503), not hang a request.
        connect_args={"connect_timeout": 5},
    )
    _ping_when_idle(engine, ping_after_idle_s)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Like `pool_pre_ping`, but only for connections that sat idle in the pool for more than `idle_s`."""

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle_s:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise DisconnectionError("the pooled connection did not answer a ping") from exc
