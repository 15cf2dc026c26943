"""Configuration is validated at start with messages naming the variable; logs are JSON with context."""

import io
import json
import logging

import pytest

from triage_pipeline.infrastructure.logging import JsonFormatter, bind_context, clear_context
from triage_pipeline.infrastructure.settings import Settings, SettingsError, load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DB_PORT", "not-a-port"),
        ("DB_PORT", "70000"),
        ("LLM_BASE_URL", "not a url"),
        ("LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "mysql://x@y/z"),
    ],
)
def test_malformed_setting_fails_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_database_url_wins_over_db_parts_and_gets_the_psycopg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_HOST", "ignored")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/app")
    assert load_settings().configured_database_url() == "postgresql+psycopg://u:p@db:5432/app"


def test_url_is_built_from_db_parts_with_escaped_password() -> None:
    settings = Settings(db_host="db", db_port=6543, db_user="me", db_password="p@ss/w", db_name="tri")
    assert settings.configured_database_url() == "postgresql+psycopg://me:p%40ss%2Fw@db:6543/tri"


def test_no_database_setting_means_the_embedded_server() -> None:
    assert Settings(_env_file=None).configured_database_url() is None  # type: ignore[call-arg]


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_log_lines_are_json_with_context_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        bind_context(batch_id="b-1")
        logger.info("triaged", extra={"job_id": "j-1", "fields": {"latency_ms": 12}})
    finally:
        clear_context()
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "triaged"
    assert (line["level"], line["logger"]) == ("INFO", "test.json")
    assert (line["batch_id"], line["job_id"], line["latency_ms"]) == ("b-1", "j-1", 12)
    assert "timestamp" in line
