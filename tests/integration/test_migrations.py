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
        assert active == 4  # 0014: version 3 with the review threshold of this release's settling
    engine.dispose()


def test_orm_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_the_v3_prompt_becomes_active_only_where_v2_still_was(pg_server: EmbeddedPostgres) -> None:
    engine_urls = {name: pg_server.ensure_database(name) for name in ("triage_v3_default", "triage_v3_chosen")}
    for url in engine_urls.values():
        command.upgrade(alembic_config(url), "0011")
    chosen = create_engine(engine_urls["triage_v3_chosen"], poolclass=pool.NullPool)
    with chosen.begin() as conn:  # an admin went back to version 1
        conn.execute(text("UPDATE prompts SET is_active = false WHERE name = 'triage'"))
        conn.execute(text("UPDATE prompts SET is_active = true WHERE name = 'triage' AND version = 1"))
    chosen.dispose()
    active_sql = text("SELECT version FROM prompts WHERE name='triage' AND is_active")
    v3_sql = text("SELECT model_options, few_shot_k FROM prompts WHERE name='triage' AND version=3")
    actives = {}
    for name, url in engine_urls.items():
        command.upgrade(alembic_config(url), "0013")
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as conn:
            actives[name] = conn.execute(active_sql).scalar_one()
            v3 = conn.execute(v3_sql).one()
        engine.dispose()
        assert v3.model_options["num_predict"] == 512 and v3.few_shot_k == 3
    assert actives == {"triage_v3_default": 3, "triage_v3_chosen": 1}
    command.downgrade(alembic_config(engine_urls["triage_v3_default"]), "0011")
    engine = create_engine(engine_urls["triage_v3_default"], poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(active_sql).scalar_one() == 2
        assert conn.execute(text("SELECT count(*) FROM prompts WHERE version = 3")).scalar_one() == 0
    engine.dispose()
    used = create_engine(engine_urls["triage_v3_chosen"], poolclass=pool.NullPool)
    with used.begin() as conn:  # an evaluation ran with version 3: the downgrade must keep the row
        conn.execute(
            text(
                "INSERT INTO evaluation_runs (id, prompt_id, prompt_name, prompt_version, model, dataset,"
                " dataset_sha256, report) SELECT gen_random_uuid(), id, name, version, 'm', 'd', 's', '{}'"
                " FROM prompts WHERE name = 'triage' AND version = 3"
            )
        )
    command.downgrade(alembic_config(engine_urls["triage_v3_chosen"]), "0011")
    with used.connect() as conn:
        assert conn.execute(active_sql).scalar_one() == 1
        assert conn.execute(text("SELECT is_active FROM prompts WHERE version = 3")).scalar_one() is False
    used.dispose()


def test_the_v4_prompt_is_v3_with_threshold_0_6_and_becomes_active_only_where_v3_still_was(
    pg_server: EmbeddedPostgres,
) -> None:
    urls = {name: pg_server.ensure_database(name) for name in ("triage_v4_default", "triage_v4_chosen")}
    for url in urls.values():
        command.upgrade(alembic_config(url), "0013")
    chosen = create_engine(urls["triage_v4_chosen"], poolclass=pool.NullPool)
    with chosen.begin() as conn:  # an admin went back to version 2
        conn.execute(text("UPDATE prompts SET is_active = false WHERE name = 'triage'"))
        conn.execute(text("UPDATE prompts SET is_active = true WHERE name = 'triage' AND version = 2"))
    chosen.dispose()
    active_sql = text("SELECT version FROM prompts WHERE name='triage' AND is_active")
    same_sql = text(
        "SELECT v4.review_threshold, v4.system_text = v3.system_text AND v4.user_template = v3.user_template"
        " AND v4.output_schema = v3.output_schema AND v4.model_options = v3.model_options"
        " AND v4.few_shot_k = v3.few_shot_k AS same"
        " FROM prompts v4 JOIN prompts v3 ON v3.name = v4.name AND v3.version = 3"
        " WHERE v4.name = 'triage' AND v4.version = 4"
    )
    actives = {}
    for name, url in urls.items():
        command.upgrade(alembic_config(url), "0014")
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as conn:
            actives[name] = conn.execute(active_sql).scalar_one()
            v4 = conn.execute(same_sql).one()
        engine.dispose()
        assert (v4.review_threshold, v4.same) == (0.6, True)
    assert actives == {"triage_v4_default": 4, "triage_v4_chosen": 2}
    command.downgrade(alembic_config(urls["triage_v4_default"]), "0013")
    engine = create_engine(urls["triage_v4_default"], poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(active_sql).scalar_one() == 3
        assert conn.execute(text("SELECT count(*) FROM prompts WHERE version = 4")).scalar_one() == 0
    engine.dispose()
