"""Starting with a bad configuration stops with one clear line (uvicorn and `triage run`); auth off is warned."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from triage_pipeline.cli.main import main
from triage_pipeline.infrastructure.embedded_postgres import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UVICORN = str(Path(sys.executable).parent / "uvicorn")
SECRET = "hunter2-not-to-be-shown"
BAD = {
    "LOG_LEVEL": "LOUD",
    "DB_PORT": "70000",
    "LLM_BASE_URL": "not a url",
    "API_PORT": "http",
    "AUTH_ENABLED": "perhaps",
    "ADMIN_API_KEY": "short",
    "DATABASE_URL": f"mysql://user:{SECRET}@db/triage",
}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any setting of the service, plus `extra`."""
    names = {
        "DATABASE_URL",
        "DB_HOST",
        "LLM_BASE_URL",
        "LOG_LEVEL",
        "ADMIN_API_KEY",
        "AUTH_ENABLED",
        "API_PORT",
        "DB_PORT",
    }
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def test_uvicorn_with_malformed_settings_exits_with_one_line_naming_each_variable_without_secrets() -> None:
    result = subprocess.run(
        [UVICORN, "api.main:app", "--port", str(free_port())],
        cwd=PROJECT_ROOT,
        env=clean_env(**BAD),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if "invalid configuration" in line]
    for variable in BAD:
        assert variable in line, variable
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout and "'short'" not in result.stderr


def test_triage_run_with_a_malformed_setting_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in BAD.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("triage: error: invalid configuration:") and "\n" not in err
    assert all(variable in err for variable in BAD) and SECRET not in err


@pytest.mark.slow  # the same warning is checked in process by test_auth_api; this proves it under uvicorn
def test_uvicorn_with_auth_turned_off_logs_a_warning_when_it_starts(database_url: str) -> None:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    process = subprocess.Popen(
        [UVICORN, "api.main:app", "--port", str(free_port())],
        cwd=PROJECT_ROOT,
        env=clean_env(AUTH_ENABLED="false", DATABASE_URL=url, LOG_LEVEL="INFO"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Application startup complete" in line:
                break
    finally:
        process.terminate()
        process.wait(timeout=15)
    warnings = [json.loads(line) for line in lines if line.startswith("{") and "AUTH_ENABLED=false" in line]
    assert len(warnings) == 1, "".join(lines)
    assert warnings[0]["level"] == "WARNING" and "local development only" in warnings[0]["message"]
