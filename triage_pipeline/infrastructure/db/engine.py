"""The SQLAlchemy engine: one connection pool per process."""

from sqlalchemy import Engine, create_engine

from triage_pipeline.infrastructure.settings import sqlalchemy_url


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    """An engine whose pool checks connections before use, so a restarted database is survived."""
    return create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=10,
        # A database host that drops packets must fail fast (503), not hang a request.
        connect_args={"connect_timeout": 5},
    )
