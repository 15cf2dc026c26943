"""`triage run`: start the database, migrations, the LLM, the API and Dagster; stop them all on Ctrl-C."""

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from triage_pipeline.application.examples import NewExample, SeedExamplesCommand, SeedSharedExamples
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.dagster_processes import (
    CodeServerError,
    code_server_args,
    daemon_args,
    forward_output,
    grpc_workspace,
    wait_for_code_server,
    webserver_args,
)
from triage_pipeline.infrastructure.admin_key import ADMIN_KEY_FILE, ensure_local_admin_key
from triage_pipeline.infrastructure.database import embedded_server
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres, port_is_free
from triage_pipeline.infrastructure.labelled_file import read_labelled, starter_examples_path
from triage_pipeline.infrastructure.migrations import upgrade_to_head
from triage_pipeline.infrastructure.settings import PROJECT_ROOT, Settings
from triage_pipeline.infrastructure.url_parts import database_env
from triage_pipeline.infrastructure.webhook_key import WEBHOOK_KEY_FILE, WebhookKeyFileError, ensure_local_webhook_key

STOP_TIMEOUT_S = 15.0
LLM_START_TIMEOUT_S = 60.0


class StartupError(RuntimeError):
    """A part of the service could not start; the message says which and what to do."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def seed_starter_examples(settings: Settings, database_url: str) -> str:
    """Put the shipped starter examples in the shared bank on the first start; what happened, for the summary."""
    path = starter_examples_path()
    items = [
        NewExample(
            t.title,
            t.description,
            t.labels["category"],
            t.labels["priority"],
            t.labels.get("sentiment"),
            t.labels.get("language"),
            f"starter {t.external_id}",
        )
        for t in read_labelled(path)
    ]
    container = Container(settings, database_url=database_url)
    try:
        added = container.use(SeedSharedExamples).execute(SeedExamplesCommand(path.name, items))
    finally:
        container.close()
    if added:
        return f"{added} shipped starter examples imported into the shared bank ({path.name}), each once"
    return "shipped starter examples already imported (shared bank)"


def describe_llm_hosts(settings: Settings) -> str:
    """The LLM hosts for the console: `http://gpu-a:11434 (8 at once), http://gpu-b:11434 (4 at once)`."""
    hosts = settings.llm_hosts()
    listed = ", ".join(f"{host.url} ({host.concurrency} at once)" for host in hosts)
    return listed if len(hosts) == 1 else f"{len(hosts)} hosts: {listed}"


@dataclass
class Supervisor:
    """Starts every part in order and stops them in reverse order."""

    settings: Settings
    children: list[Child] = field(default_factory=list)
    started_postgres: EmbeddedPostgres | None = None
    stopping: bool = False

    def _check_port(self, host: str, port: int, setting: str) -> None:
        if not port_is_free(host, port):
            raise StartupError(f"port {port} on {host} is already in use: set {setting} to a free port")

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str], *, filtered: bool = False, quiet: bool = False
    ) -> None:
        # A new session: the child gets default signal handling (Dagster ignores SIGTERM when SIGINT is
        # ignored) and its own process group, so stopping it also stops its helpers. A `filtered` child's
        # output goes through `forward_output` (the code server: its run workers print Dagster's DEBUG events).
        pipe = subprocess.PIPE if filtered else None
        process = subprocess.Popen(
            args,
            env=env,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL if quiet else pipe,
            stderr=subprocess.STDOUT if pipe else None,
        )
        if process.stdout is not None:
            forward_output(process.stdout, sys.stdout)
        self.children.append(Child(name, process))

    def start(self) -> None:
        """Bring everything up and print where each part listens."""
        s = self.settings
        self._check_port(s.api_host, s.api_port, "API_PORT")
        self._check_port(s.api_host, s.dagster_port, "DAGSTER_PORT")
        self._check_port("127.0.0.1", s.dagster_code_server_port, "DAGSTER_CODE_SERVER_PORT")

        database_url = s.configured_database_url()
        if database_url is None:
            server = embedded_server(s)
            already = server.running_port() is not None
            server.start()
            if not already:
                self.started_postgres = server
            database_url = server.ensure_database(s.db_name)
            server.ensure_database(s.dagster_db_name)
            print(f"PostgreSQL    embedded, {server.host}:{server.port} (data in {server.data_dir})")
        else:
            print("PostgreSQL    from DATABASE_URL / DB_*")
        upgrade_to_head(database_url)
        print("migrations    at head")
        if s.llm_base_url is None:
            print(f"examples      {seed_starter_examples(s, database_url)}")

        env = {**os.environ, **database_env(database_url, s.dagster_db_name)}
        env["DAGSTER_HOME"] = str(self._dagster_home())
        if s.auth_enabled:
            env["ADMIN_API_KEY"] = ensure_local_admin_key(s)
        # One key for every child: the API seals the webhook secrets with it, the deliverer sensor (code
        # server) and the run workers open them. Kept in a file so the sealed secrets outlive this start.
        try:
            env["WEBHOOK_SECRETS_KEY"] = ensure_local_webhook_key(s)
        except WebhookKeyFileError as exc:
            raise StartupError(str(exc)) from None
        env["LLM_MODEL"] = s.llm_model

        llm_url = s.effective_llm_base_url()
        if s.llm_base_url is None:
            # The offline server answers one request at a time: more calls in flight would only queue
            # behind each other until they hit the read timeout.
            if "LLM_CONCURRENCY" not in os.environ:
                env["LLM_CONCURRENCY"] = "1"
            self._start_offline_llm(env)
            print(
                f"LLM           offline demo model {s.llm_model} at {llm_url} "
                "(demo quality, not production triage: set LLM_BASE_URL to an Ollama for real use)"
            )
        else:
            print(f"LLM           {describe_llm_hosts(s)}, model {s.llm_model}")
        env["LLM_BASE_URL"] = llm_url

        bin_dir = Path(sys.executable).parent
        self._spawn(
            "api",
            [
                str(bin_dir / "uvicorn"),
                "api.main:app",
                "--host",
                s.api_host,
                "--port",
                str(s.api_port),
                "--no-access-log",
                # uvicorn's own start lines repeat what `triage run` prints; the API's JSON logs still show.
                "--log-level",
                "warning",
            ],
            env,
        )
        home = Path(env["DAGSTER_HOME"])
        self._spawn(
            "dagster-code-server",
            code_server_args(bin_dir, "127.0.0.1", s.dagster_code_server_port),
            env,
            filtered=True,
        )
        try:
            wait_for_code_server("127.0.0.1", s.dagster_code_server_port, self.children[-1].process)
        except CodeServerError as exc:
            raise StartupError(str(exc)) from None
        workspace = grpc_workspace(home, "127.0.0.1", s.dagster_code_server_port)
        self._spawn("dagster-webserver", webserver_args(bin_dir, workspace, s.api_host, s.dagster_port), env)
        self._spawn("dagster-daemon", daemon_args(bin_dir, workspace), env)
        # The webhook deliverer: woken by the outbox's NOTIFY, so an event goes out within milliseconds and an
        # idle stack spends nothing on it. Its per-pass lines stay off the console; its warnings do not.
        self._spawn("webhook-deliverer", [str(bin_dir / "triage"), "webhooks", "deliver", "--watch"], env, quiet=True)
        print(f"API           http://{s.api_host}:{s.api_port}  (docs at /docs)")
        if s.auth_enabled:
            source = "ADMIN_API_KEY" if s.admin_api_key else f"the file {ADMIN_KEY_FILE.name}"
            print(f"API auth      on: the admin key is in {source} (`triage demo` uses it)")
        else:
            print("API auth      OFF (AUTH_ENABLED=false): local development only")
        key_source = "WEBHOOK_SECRETS_KEY" if s.webhook_secrets_key else WEBHOOK_KEY_FILE.name
        print(f"Dagster UI    http://{s.api_host}:{s.dagster_port}")
        print(
            "Webhooks      sent as they come by `triage webhooks deliver --watch` (the sensor webhook_deliveries "
            f"shows the outbox in Dagster); signing secrets sealed with {key_source}"
        )
        print("Press Ctrl-C to stop everything.")

    def _dagster_home(self) -> Path:
        # DAGSTER_HOME, when set, keeps a second stack (a test, a benchmark) off the project's own.
        home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home")
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        return home

    def _start_offline_llm(self, env: dict[str, str]) -> None:
        port = self.settings.offline_llm_port
        if importlib.util.find_spec("llama_cpp") is None:
            raise StartupError(
                "no LLM configured and the offline demo model is not installed: run `make offline-llm` "
                "(compiles llama.cpp once, several minutes) or set LLM_BASE_URL to your Ollama"
            )
        self._check_port("127.0.0.1", port, "OFFLINE_LLM_PORT")
        self._spawn(
            "offline-llm",
            # Its banner and start lines would repeat the summary `triage run` prints (unless LOG_LEVEL=DEBUG).
            [sys.executable, "-m", "offline_llm", "--port", str(port)]
            + ([] if self.settings.log_level == "DEBUG" else ["--log-level", "WARNING"]),
            env,
        )
        deadline = time.monotonic() + LLM_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.children[-1].process.poll() is not None:
                raise StartupError("the offline LLM server exited at start; see its messages above")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise StartupError(f"the offline LLM server did not answer within {LLM_START_TIMEOUT_S:.0f} s")

    def wait(self) -> int:
        """Block until a signal or a child dies; then stop everything. Returns the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        while not self.stopping:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    print(f"{child.name} exited with code {code}; stopping the others", file=sys.stderr)
                    self.stop()
                    return 1
            time.sleep(0.5)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def stop(self) -> None:
        """Stop children (SIGTERM, then SIGKILL after a timeout), then the embedded database if we started it."""
        self.stopping = True
        for child in reversed(self.children):
            if child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            # Helpers a child left in its group (code servers, workers) go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
        self.children.clear()
        if self.started_postgres is not None:
            self.started_postgres.stop()
            self.started_postgres = None
        print("stopped")
