"""The Dagster processes of a running stack: one long-lived code server, the webserver and the daemon.

The webserver and the daemon both read the code location from one code server over gRPC (the way
Dagster documents for production) instead of each spawning its own. A daemon that spawns its own code
server re-imports the whole code location every minute (its workspace reload), which on two cores is
CPU taken from the LLM; with a shared server the reload is a cheap gRPC call. Used by `triage run` and
by the benchmarks, so both measure the same stack.
"""

import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

CODE_LOCATION = "triage_pipeline"
DEFINITIONS_MODULE = "triage_pipeline.definitions"
CODE_SERVER_START_TIMEOUT_S = 120.0


# A line of Dagster's console logger at DEBUG ("2026-11-29 21:51:27 +0000 - dagster - DEBUG - ..."),
# possibly coloured. Run workers print their run's lifecycle events this way (at DEBUG, before the
# job's own loggers exist, so the job's logger level cannot hold them back); the UI has them all.
DAGSTER_DEBUG_LINE = re.compile(r"^\S+ \S+ [+-]\d{4} - dagster - DEBUG - ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def forward_output(stream: IO[bytes], out: IO[str]) -> threading.Thread:
    """Copy a child's output to `out` in a thread, without Dagster's DEBUG event lines."""

    def pump() -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            if not DAGSTER_DEBUG_LINE.match(ANSI.sub("", line)):
                out.write(line)
                out.flush()

    thread = threading.Thread(target=pump, name="code-server-output", daemon=True)
    thread.start()
    return thread


class CodeServerError(RuntimeError):
    """The code server exited or did not load the definitions in time."""


def grpc_workspace(home: Path, host: str, port: int) -> Path:
    """Write a workspace file pointing at the code server; its path (JSON is valid YAML)."""
    path = home / "workspace.yaml"
    workspace = {"load_from": [{"grpc_server": {"host": host, "port": port, "location_name": CODE_LOCATION}}]}
    path.write_text(json.dumps(workspace, indent=2) + "\n")
    return path


def code_server_args(bin_dir: Path, host: str, port: int) -> list[str]:
    """`dagster api grpc` on the definitions module: one process that loads the code once and serves it.

    Not `dagster code-server start`, whose extra proxy process (it forwards to a child and reloads on
    request) cost a further 1% of a core at idle: code changes need a restart of `triage run` instead
    (`dagster dev` reloads them, for working on the pipeline).
    """
    return [
        str(bin_dir / "dagster"),
        "api",
        "grpc",
        "-m",
        DEFINITIONS_MODULE,
        "--location-name",
        CODE_LOCATION,
        "-h",
        host,
        "-p",
        str(port),
        "--log-level",
        "warning",
    ]


def webserver_args(bin_dir: Path, workspace: Path, host: str, port: int) -> list[str]:
    # Its INFO line only repeats the URL that `triage run` prints.
    return [
        *(str(bin_dir / "dagster-webserver"), "-w", str(workspace), "-h", host, "-p", str(port)),
        *("--dagster-log-level", "warning"),
    ]


def daemon_args(bin_dir: Path, workspace: Path) -> list[str]:
    """dagster-daemon on the shared workspace; its own INFO lines (each daemon starting) are not for users."""
    return [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace), "--log-level", "warning"]


def wait_for_code_server(
    host: str, port: int, process: "subprocess.Popen[bytes]", timeout: float = CODE_SERVER_START_TIMEOUT_S
) -> None:
    """Until the code server has loaded the definitions (or raise naming what went wrong).

    The daemon reads its workspace once at start and again only a minute later, so it must not start
    while the code location is still loading.
    """
    from dagster._core.errors import DagsterUserCodeUnreachableError
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._serdes import deserialize_value
    from dagster_shared.error import SerializableErrorInfo

    client = DagsterGrpcClient(port=port, host=host)
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CodeServerError(f"the Dagster code server exited with code {process.returncode} at start")
        try:
            answer = deserialize_value(client.list_repositories())
        except DagsterUserCodeUnreachableError as exc:
            last_error = str(exc).splitlines()[0]
        else:
            # `dagster api grpc` serves only once the code is loaded: an error here is the load's own.
            if isinstance(answer, SerializableErrorInfo):
                reason = answer.message.strip().splitlines()[0]
                raise CodeServerError(f"the Dagster code location failed to load: {reason}")
            return
        time.sleep(0.2)
    raise CodeServerError(f"the Dagster code server did not load within {timeout:.0f} s ({last_error})")
