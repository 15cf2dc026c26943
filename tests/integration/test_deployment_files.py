"""docker-compose.yml, dagster.yaml and workspace.yaml agree with the settings the code reads."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from triage_pipeline.infrastructure.settings import Settings
from triage_pipeline.infrastructure.url_parts import database_env

ROOT = Path(__file__).resolve().parents[2]
DAGSTER_ONLY = {"DAGSTER_HOME"}


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_of_the_stack() -> None:
    services = compose()["services"]
    assert {"postgres", "ollama", "api", "dagster-webserver", "dagster-daemon", "migrate"} <= set(services)
    assert services["webhook-deliverer"]["command"] == ["triage", "webhooks", "deliver", "--watch"]
    assert services["postgres"]["image"] == "postgres:17"


def test_compose_sets_only_variables_the_service_reads() -> None:
    env = compose()["x-app-env"]
    known = {name.upper() for name in Settings.model_fields} | DAGSTER_ONLY
    assert set(env) <= known, set(env) - known
    assert {"DB_HOST", "DB_USER", "DB_PASSWORD", "DB_NAME", "LLM_BASE_URL", "LLM_MODEL", "LOG_LEVEL"} <= set(env)


def test_dagster_storage_reads_the_variables_the_run_command_exports() -> None:
    storage = yaml.safe_load((ROOT / "dagster.yaml").read_text())["storage"]["postgres"]["postgres_db"]
    wanted = {value["env"] for value in storage.values() if isinstance(value, dict)}
    exported = set(database_env("postgresql+psycopg://u:p@h:5/db", "dagster"))
    assert wanted <= exported


def test_workspace_loads_the_definitions_module() -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "triage_pipeline.definitions"


def test_docker_compose_config_validates_when_docker_compose_exists() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose client is not installed here")
    result = subprocess.run([docker, "compose", "config"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_compose_webserver_and_daemon_share_one_code_server() -> None:
    services = compose()["services"]
    workspace = yaml.safe_load((ROOT / "docker" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    command = services["dagster-code-server"]["command"]
    assert server["host"] == "dagster-code-server"
    assert command[command.index("-p") + 1] == str(server["port"])
    assert command[command.index("-m") + 1] == "triage_pipeline.definitions"
    for name in ("dagster-webserver", "dagster-daemon"):
        assert "docker/workspace.yaml" in services[name]["command"]
        assert services[name]["depends_on"]["dagster-code-server"]["condition"] == "service_healthy"


def test_pyproject_points_dagster_and_dg_at_the_one_definitions_module() -> None:
    import tomllib

    from triage_pipeline.cli.dagster_processes import CODE_LOCATION, DEFINITIONS_MODULE

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tool["dagster"]["module_name"] == DEFINITIONS_MODULE
    assert tool["dg"]["project"]["code_location_target_module"] == DEFINITIONS_MODULE
    assert tool["dg"]["project"]["defs_module"] == "triage_pipeline.defs"
    assert tool["dagster"]["code_location_name"] == tool["dg"]["project"]["code_location_name"] == CODE_LOCATION
