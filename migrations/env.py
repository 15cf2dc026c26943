"""Alembic environment: migrates the configured database, or the embedded one."""

from alembic import context
from sqlalchemy import create_engine, pool

from triage_pipeline.infrastructure.database import resolve_database_url
from triage_pipeline.infrastructure.db.models import Base
from triage_pipeline.infrastructure.settings import load_settings, sqlalchemy_url

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    """An explicit `sqlalchemy.url` (tests, CLI) wins over the settings."""
    explicit = config.get_main_option("sqlalchemy.url")
    return sqlalchemy_url(explicit) if explicit else resolve_database_url(load_settings())


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
