"""`triage run` as a user starts it: one shared code server, a quiet console, a queued batch triaged."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fake_ollama import FakeOllama
from tests.support.ports import distinct_free_ports
from tests.support.webhook_receiver import webhook_receiver
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRIAGE = str(Path(sys.executable).parent / "triage")
ADMIN_KEY = "run-stack-test-admin-key-0123456789"
DAGSTER_LINE = re.compile(r"^\S+ \S+ [+-]\d{4} - dagster[\w.]* - (?P<level>[A-Z]+) - ")
# Dagster's console formatter colours its lines whether or not the output is a terminal.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUMMARY_LABELS = (
    "PostgreSQL ",
    "migrations ",
    "examples ",
    "LLM ",
    "API ",
    "API auth ",
    "Dagster UI ",
    "Webhooks ",
    "Press Ctrl-C",
    "stopped",
)


class RunningStack:
    """A `triage run` child whose output lines are collected as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, start: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(start) for line in self.lines):
                return
            assert self.process.poll() is None, "triage run exited:\n" + "\n".join(self.lines)
            time.sleep(0.2)
        raise AssertionError(f"no line starting {start!r} within {timeout} s:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


def _wait_for_runs_to_end(supervisor: int) -> None:
    """Until the code server has no run worker left (the run records its last events after the ticket)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # A run worker is a multiprocessing child of the code server (its resource tracker stays).
        if not any("spawn_main" in cmd for _, cmd in _children(supervisor).values()):
            return
        time.sleep(0.5)
    raise AssertionError("the run worker did not end within 60 s")


def _children(pid: int) -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) of every process below `pid`."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            table[int(entry.name)] = (ppid, cmd)
    below: dict[int, tuple[int, str]] = {}
    frontier = {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier and p not in below}
        below.update({p: table[p] for p in frontier})
    return below


@pytest.fixture
def stack(
    pg_server: EmbeddedPostgres, database_url: str, fake_ollama: FakeOllama, tmp_path: Path
) -> Iterator[tuple[RunningStack, str]]:
    pg_server.ensure_database("dagster_run_stack")
    api_port, dagster_port, code_server_port = distinct_free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "LLM_", "DAGSTER_"))}
    env.update(
        DATABASE_URL=database_url,
        DAGSTER_DB_NAME="dagster_run_stack",
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        LLM_BASE_URL=fake_ollama.url,
        ADMIN_API_KEY=ADMIN_KEY,
        API_PORT=str(api_port),
        DAGSTER_PORT=str(dagster_port),
        DAGSTER_CODE_SERVER_PORT=str(code_server_port),
        LOG_LEVEL="INFO",
        TRIAGE_SCHEDULE_CRON="0 0 1 1 *",
        BACKLOG_MIN_JOBS="1000000",
        BACKLOG_MAX_AGE_S="1000000",
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
    )
    process = subprocess.Popen(
        [TRIAGE, "run"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    running = RunningStack(process)
    try:
        running.wait_for_line("Press Ctrl-C", 180)
        yield running, f"http://127.0.0.1:{api_port}"
    finally:
        running.stop()


def _triage_one_ticket(api: str, external_id: str) -> str:
    """Post a ticket, queue a batch through the API, wait for the ticket's triage to end; its status."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    ticket = httpx.post(
        f"{api}/tickets",
        json={"external_id": external_id, "title": "Checkout fails", "description": "Error 500 on pay."},
        headers=headers,
        timeout=30,
    )
    assert ticket.status_code == 201, ticket.text
    queued = httpx.post(f"{api}/triage-jobs/batch", json={}, headers=headers, timeout=30)
    assert queued.status_code == 202 and queued.json()["status"] == "QUEUED", queued.text
    deadline = time.monotonic() + 120
    status = "PENDING"
    while time.monotonic() < deadline and status in ("PENDING", "ON_TRIAGE"):
        time.sleep(0.5)
        status = httpx.get(f"{api}/tickets/{ticket.json()['id']}", headers=headers, timeout=30).json()["triage_status"]
    return str(status)


def test_triage_run_serves_one_code_server_triages_a_queued_batch_and_pushes_its_webhook_at_once(
    stack: tuple[RunningStack, str], clean_db: object
) -> None:
    running, api = stack
    processes = _children(running.process.pid)
    servers = [pid for pid, (_, cmd) in processes.items() if "dagster api grpc" in cmd]
    assert len(servers) == 1, processes
    assert processes[servers[0]][0] == running.process.pid  # the supervisor's own child, not a daemon's
    assert any("webhooks deliver --watch" in cmd for _, cmd in processes.values()), processes

    with webhook_receiver() as receiver:
        hook = httpx.post(
            f"{api}/webhooks",
            json={"url": receiver.url, "event_types": ["ticket.triaged"]},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=30,
        )
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        assert _triage_one_ticket(api, "run-stack-1") == "COMPLETED", "\n".join(running.lines)
        completed_at = time.monotonic()
        while not receiver.delivered("ticket.triaged") and time.monotonic() - completed_at < 10:
            time.sleep(0.05)
        [event] = receiver.delivered("ticket.triaged")  # verified by the standardwebhooks library
        assert event.payload is not None and event.payload["data"]["external_id"] == "run-stack-1"
    # Still the one code server: the run worker it launched has ended, and no other server appeared.
    servers_after = [p for p, (_, cmd) in _children(running.process.pid).items() if "dagster api grpc" in cmd]
    assert servers_after == servers


def test_triage_run_console_holds_only_its_summary_and_json_logs_through_a_run(
    stack: tuple[RunningStack, str], clean_db: object
) -> None:
    running, api = stack
    assert _triage_one_ticket(api, "run-stack-2") == "COMPLETED", "\n".join(running.lines)
    _wait_for_runs_to_end(running.process.pid)
    assert running.stop() == 0
    for line in filter(None, (ANSI.sub("", raw) for raw in running.lines)):
        if line.startswith(SUMMARY_LABELS):
            continue
        dagster = DAGSTER_LINE.match(line)
        if dagster:  # Dagster's own console lines: only what needs attention
            assert dagster["level"] in ("WARNING", "ERROR", "CRITICAL"), line
            continue
        record = json.loads(line)  # anything else is a structured log line of the service
        assert record["level"] in ("INFO", "WARNING", "ERROR"), line
        assert "Warning" not in record["message"], line
