"""Migrations: up, down and up again on the real server; models and migrations agree."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool, text

from triage_pipeline.infrastructure.db.models import Base
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres
from triage_pipeline.infrastructure.migrations import alembic_config


def test_server_is_postgresql_17_or_newer(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert int(conn.execute(text("SHOW server_version_num")).scalar_one()) >= 170000
    engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip_succeeds(pg_server: EmbeddedPostgres) -> None:
    url = pg_server.ensure_database("triage_migrations")
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        tables = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'")).scalars())
    assert tables <= {"alembic_version"}
    command.upgrade(config, "head")
    with engine.connect() as conn:
        owners = conn.execute(text("SELECT count(*) FROM owners WHERE id = '00000000-0000-0000-0000-000000000000'"))
        assert owners.scalar_one() == 1
        active = conn.execute(text("SELECT version FROM prompts WHERE name='triage' AND is_active")).scalar_one()
        assert active == 2  # 0007: the few-shot version
    engine.dispose()


def test_orm_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
