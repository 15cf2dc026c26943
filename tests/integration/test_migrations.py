"""Migrations: up, down and up again on the real server; models and migrations agree."""

import pytest
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
        assert active == 5  # 0016: version 4 with the review threshold of the example bank's settling
    engine.dispose()


def test_orm_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


ACTIVE_SQL = text("SELECT version FROM prompts WHERE name='triage' AND is_active")


@pytest.mark.parametrize(
    ("before", "migration", "source", "derived", "chosen"),
    [
        pytest.param("0011", "0012", 2, 3, 1, id="0012-v3"),
        pytest.param("0013", "0014", 3, 4, 2, id="0014-v4"),
        pytest.param("0015", "0016", 4, 5, 3, id="0016-v5"),
    ],
)
def test_a_derived_prompt_version_becomes_active_only_where_its_source_still_was_and_downgrades_cleanly(
    pg_server: EmbeddedPostgres, before: str, migration: str, source: int, derived: int, chosen: int
) -> None:
    urls = {name: pg_server.ensure_database(f"triage_{migration}_{name}") for name in ("default", "chosen")}
    engines = {name: create_engine(url, poolclass=pool.NullPool) for name, url in urls.items()}
    for url in urls.values():
        command.upgrade(alembic_config(url), before)
    with engines["chosen"].begin() as conn:  # an admin went back to an earlier version
        conn.execute(text("UPDATE prompts SET is_active = false WHERE name = 'triage'"))
        conn.execute(text("UPDATE prompts SET is_active = true WHERE name = 'triage' AND version = :v"), {"v": chosen})
    actives = {}
    for name, url in urls.items():
        command.upgrade(alembic_config(url), migration)
        with engines[name].connect() as conn:
            actives[name] = conn.execute(ACTIVE_SQL).scalar_one()
    assert actives == {"default": derived, "chosen": chosen}
    with engines["default"].connect() as conn:  # what lets the downgrade restore the version it replaced
        activation = conn.execute(
            text("SELECT activated_by, previous_version FROM prompt_activations WHERE version = :v"), {"v": derived}
        ).one()
    assert tuple(activation) == (f"migration {migration}", source)

    command.downgrade(alembic_config(urls["default"]), before)  # unused: the row goes, its source comes back
    with engines["default"].connect() as conn:
        assert conn.execute(ACTIVE_SQL).scalar_one() == source
        assert conn.execute(text("SELECT count(*) FROM prompts WHERE version = :v"), {"v": derived}).scalar_one() == 0

    with engines["chosen"].begin() as conn:  # an evaluation ran with the derived version: the row must stay
        conn.execute(
            text(
                "INSERT INTO evaluation_runs (id, prompt_id, prompt_name, prompt_version, model, dataset,"
                " dataset_sha256, report) SELECT gen_random_uuid(), id, name, version, 'm', 'd', 's', '{}'"
                " FROM prompts WHERE name = 'triage' AND version = :v"
            ),
            {"v": derived},
        )
    command.downgrade(alembic_config(urls["chosen"]), before)
    with engines["chosen"].connect() as conn:
        assert conn.execute(ACTIVE_SQL).scalar_one() == chosen
        kept = text("SELECT is_active FROM prompts WHERE version = :v")
        assert conn.execute(kept, {"v": derived}).scalar_one() is False
    for engine in engines.values():
        engine.dispose()


def test_v3_has_room_for_the_longest_answer_v4_and_v5_differ_only_by_their_thresholds(
    pg_server: EmbeddedPostgres,
) -> None:
    url = pg_server.ensure_database("triage_derived_contents")
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT version, system_text, user_template, output_schema, model_options, few_shot_k,"
                " review_threshold FROM prompts WHERE name = 'triage' AND version IN (2, 3, 4, 5) ORDER BY version"
            )
        ).all()
    engine.dispose()
    v2, v3, v4, v5 = rows
    assert v3.model_options == {**v2.model_options, "num_predict": 512}
    assert (v2.review_threshold, v3.review_threshold, v4.review_threshold, v5.review_threshold) == (0.5, 0.7, 0.6, 0.7)
    for derived, source in ((v3, v2), (v4, v3), (v5, v4)):
        assert derived.system_text == source.system_text and derived.user_template == source.user_template
        assert derived.output_schema == source.output_schema and derived.few_shot_k == source.few_shot_k == 3
    assert v5.model_options == v4.model_options == v3.model_options
