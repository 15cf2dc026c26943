"""A scale-out stack on one machine, all real processes on loopback: a Redis broker, fake Ollama hosts,
`triage worker` Celery workers, and the triage job run by Dagster's Celery executor.

Used by the scale-out test (tests/e2e/test_scale_out.py) and benchmark 11 (bench/scale_out.py). The
broker is Debian's redis-server (installed by scripts/ensure-redis.sh when missing), started here on a free
port with no persistence; every process gets the same environment, as a deployment would give them.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

import yaml

from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.url_parts import database_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRIAGE = Path(sys.executable).parent / "triage"
DAGSTER = Path(sys.executable).parent / "dagster"


class StackError(RuntimeError):
    """A process of the stack did not start or ended badly; the message carries its log's tail."""


@dataclass
class Process:
    """A child process with its output in a file (read back for assertions and errors)."""

    name: str
    popen: "subprocess.Popen[bytes]"
    log_path: Path
    log_file: IO[bytes]

    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9, as a crash or the OOM killer would."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log_file.close()


@dataclass
class ScaleStack:
    """Start what a test needs, then `stop()` (or use it as a context manager)."""

    database_url: str
    workdir: Path
    dagster_db_name: str = "dagster"
    settings: Mapping[str, str] = field(default_factory=dict)
    redis_port: int = 0
    hosts: list[tuple[Process, str]] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    _others: list[Process] = field(default_factory=list)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the environment every process shares ------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        home = self.workdir / "dagster_home"
        if not home.exists():
            home.mkdir(parents=True)
            shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            **database_env(self.database_url, self.dagster_db_name),
            "DAGSTER_HOME": str(home),
            "PYTHONPATH": str(PROJECT_ROOT),
            "TRIAGE_EXECUTOR": "celery",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "LLM_BASE_URL": ",".join(url for _, url in self.hosts),
            "LOG_LEVEL": "INFO",
            **self.settings,
            **extra,
        }
        env.pop("RUN_SLOW", None)
        return env

    # -- processes -----------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Process:
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("wb")
        popen = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=dict(env or os.environ), stdout=log_file, stderr=subprocess.STDOUT
        )
        return Process(name, popen, log_path, log_file)

    def start_redis(self) -> None:
        """A broker on a free loopback port, no persistence (installed first if missing)."""
        subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "ensure-redis.sh")], check=True)
        self.redis_port = free_port()
        redis = self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
        )
        self._others.append(redis)
        _wait_for(lambda: "Ready to accept connections" in redis.log(), redis, 20)

    def start_host(self, *, latency_s: float, parallel: int | None = None, concurrency: int | None = None) -> str:
        """A fake Ollama process answering `parallel` chats at once after `latency_s`; its LLM_BASE_URL entry."""
        name = f"ollama-{len(self.hosts)}"
        argv = [sys.executable, "-m", "tests.support.fake_ollama", "--latency", str(latency_s)]
        if parallel is not None:
            argv += ["--parallel", str(parallel)]
        host = self._spawn(name, argv, {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
        _wait_for(lambda: "FAKE_OLLAMA_URL=" in host.log(), host, 20)
        found = re.search(r"FAKE_OLLAMA_URL=(\S+)", host.log())
        assert found is not None
        entry = found.group(1) + (f"#{concurrency}" if concurrency else "")
        self.hosts.append((host, entry))
        return entry

    def start_worker(self) -> Process:
        """A `triage worker` (solo pool: one chunk at a time), ready once Celery says so."""
        name = f"worker-{len(self.workers)}"
        # INFO whatever LOG_LEVEL: readiness and the tasks each worker ran are read from these lines.
        argv = [str(TRIAGE), "worker", "--name", f"{name}@scale-stack", "--loglevel", "INFO"]
        worker = self._spawn(name, argv, self.env())
        _wait_for(lambda: " ready." in worker.log(), worker, 60)
        self.workers.append(worker)
        return worker

    def run_batch(self, batch_id: str, *, workers: int, jobs_per_chunk: int, llm_concurrency: int) -> Process:
        """`dagster job execute` of the triage job on this batch: the run worker, which sends the chunks to
        the workers through the broker. Wait for it with `Process.popen.wait`."""
        op_config = {
            "batch_id": batch_id,
            "jobs_per_chunk": jobs_per_chunk,
            "workers": workers,
            "llm_concurrency": llm_concurrency,
        }
        config = {"ops": {name: {"config": op_config} for name in ("plan_batch", "triage_chunk")}}
        config_path = self.workdir / f"run-{batch_id}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        argv = [str(DAGSTER), "job", "execute", "-m", "triage_pipeline.definitions", "-j", "triage_job"]
        run = self._spawn(f"run-{batch_id[:8]}", [*argv, "-c", str(config_path)], self.env())
        self._others.append(run)
        return run

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for host, _ in self.hosts:
            host.stop()
        for other in reversed(self._others):
            other.stop()


def tasks_in_progress(worker: Process) -> int:
    """Celery tasks this worker received and has not finished (from its log)."""
    log = worker.log()
    return log.count("] received") - len(re.findall(r"\] (succeeded|failed|retry|raised)", log))


def jobs_done_in_current_task(worker: Process) -> int:
    """Jobs the worker's task in progress has triaged so far (its INFO lines since the task was received); 0
    when it has no task in progress."""
    if tasks_in_progress(worker) <= 0:
        return 0
    log = worker.log()
    return log[log.rfind("] received") :].count("triage job done")


def _wait_for(ready: Callable[[], bool], process: Process, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if process.popen.poll() is not None:
            raise StackError(f"{process.name} exited with {process.popen.returncode}: {process.log()[-3000:]}")
        time.sleep(0.1)
    raise StackError(f"{process.name} not ready after {timeout_s:g} s: {process.log()[-3000:]}")
