"""Shared pieces of the benchmarks: the machine, a throwaway PostgreSQL, the fake LLM, process meters, rows.

Every benchmark prints figures next to a limit measured in the same run; none of this is a test.
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres, free_port  # noqa: E402
from triage_pipeline.infrastructure.migrations import upgrade_to_head  # noqa: E402

BIN = Path(sys.executable).parent
# The admin token the benchmarks' API processes accept (the API's ADMIN_API_KEY setting).
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- what the figures are printed as ---------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table: a figure, its limit measured in the same run, and the target."""

    bench: str
    figure: str
    value: str
    limit: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: bool | None = None
    note: str = ""


class BenchmarkFailure(RuntimeError):
    """A benchmark got answers it did not expect (errors, missing rows): its figures would mean nothing."""


def require(condition: bool, message: str) -> None:
    """Stop the benchmark run, naming what went wrong, unless `condition` holds."""
    if not condition:
        raise BenchmarkFailure(message)


def fmt_ratio(value: float) -> str:
    """A ratio as a percentage."""
    return f"{value:.0%}"


def print_table(rows: list[Row], out: IO[str] = sys.stdout) -> None:
    """The results as an aligned text table (also valid Markdown)."""
    head = ["#", "figure", "measured", "limit (same run)", "ratio", "target", "met"]
    body = [
        [r.bench, r.figure, r.value, r.limit, r.ratio, r.target, "-" if r.met is None else ("yes" if r.met else "NO")]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    print(line, file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for cells in body:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |", file=out)
    notes = [f"  [{r.bench}] {r.figure}: {r.note}" for r in rows if r.note]
    if notes:
        print("notes:", file=out)
        for note in notes:
            print(note, file=out)


def say(message: str) -> None:
    """Progress on stderr, so stdout holds only the figures."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the machine -----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


class NeighbourMeter:
    """CPU used during the run by this benchmark's processes and by everything else on the machine.

    Every second it takes the CPU time of every process; a process counts as the benchmark's when it
    descends from this one or is one of `extra_roots()` (PostgreSQL, which detaches from its starter).
    """

    def __init__(self, extra_roots: "Callable[[], set[int]]", interval: float = 1.0) -> None:
        self._extra_roots = extra_roots
        self._interval = interval
        self._stop = threading.Event()
        self._last: dict[int, float] = {}
        self.ours = 0.0
        self.others = 0.0
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name="neighbours", daemon=True)

    def _tick(self) -> None:
        table = proc_table()
        mine = descendants({os.getpid()} | self._extra_roots(), table)
        for pid, info in table.items():
            used = info["cpu"] - self._last.get(pid, info["cpu"])
            if used > 0:
                if pid in mine:
                    self.ours += used
                else:
                    self.others += used
            self._last[pid] = info["cpu"]

    def _loop(self) -> None:
        began = time.monotonic()
        self._tick()
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):
                self._tick()
            self.seconds = time.monotonic() - began

    def start(self) -> "NeighbourMeter":
        """Measure until `stop()`."""
        self._thread.start()
        return self

    def stop(self) -> str:
        """One line: how many cores the benchmark and the rest of the machine used on average."""
        self._stop.set()
        self._thread.join()
        if self.seconds <= 0:
            return "no CPU sample"
        return (
            f"over {self.seconds:.0f} s the benchmark's processes used {self.ours / self.seconds:.2f} cores on average "
            f"and other processes on the machine {self.others / self.seconds:.2f} cores"
        )


# -- processes -------------------------------------------------------------------------------------


def proc_table() -> dict[int, dict[str, Any]]:
    """pid -> ppid, cmdline and CPU seconds, for every process we may read."""
    table: dict[int, dict[str, Any]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = {
            "ppid": int(rest[1]),
            "cmd": cmdline,
            "cpu": (int(rest[11]) + int(rest[12])) / CLK_TCK,
            "started": int(rest[19]) / CLK_TCK,  # seconds after boot
        }
    return table


def uptime() -> float:
    """Seconds since boot (the clock of `started` in proc_table)."""
    return float(Path("/proc/uptime").read_text().split()[0])


def descendants(roots: set[int], table: dict[int, dict[str, Any]]) -> set[int]:
    """The roots and every process below them."""
    found = set(roots) & set(table)
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, info in table.items() if info["ppid"] in frontier} - found
        found |= frontier
    return found


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB, or (0, 0) when the process is gone."""
    rss = hwm = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def pss_kb(pid: int) -> int:
    """Proportional set size in kB (shared pages divided among their users), 0 when unreadable."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own session (so stopping it stops its helpers), output to `log`."""
    handle = log.open("ab")
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the child's process group, SIGKILL after `timeout`; helpers left in the group go too."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_http(
    url: str, timeout: float, process: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    """Until `url` answers 2xx (or raise with the tail of the log)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).is_success:
                return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s\n{tail}")


# -- PostgreSQL ------------------------------------------------------------------------------------


@dataclass
class Postgres:
    """One throwaway server for a whole benchmark run, with one database per benchmark."""

    workdir: Path
    fast_unsafe: bool = False
    server: EmbeddedPostgres = field(init=False)

    def __post_init__(self) -> None:
        # The same settings as `make run` (fsync and synchronous commit on) unless told otherwise.
        self.server = EmbeddedPostgres(data_dir=self.workdir / "pg", port=free_port(), fast_unsafe=self.fast_unsafe)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def database(self, name: str, *, migrate: bool = True) -> str:
        """A database on the server (migrated to head by default); its SQLAlchemy URL."""
        url = self.server.ensure_database(name)
        if migrate:
            upgrade_to_head(url)
        return url

    def pids(self) -> set[int]:
        """The postmaster and its children."""
        pid_file = self.server.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return set()
        postmaster = int(pid_file.read_text().split()[0])
        return descendants({postmaster}, proc_table())

    def version(self) -> str:
        """`server_version` of the running server."""
        import psycopg

        with psycopg.connect(host=self.server.host, port=self.server.port, user="postgres", dbname="postgres") as c:
            row = c.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


@contextlib.contextmanager
def postgres(fast_unsafe: bool = False) -> Iterator[Postgres]:
    """A started throwaway server in a temporary directory, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    pg = Postgres(workdir, fast_unsafe=fast_unsafe)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def psycopg_dsn(sqlalchemy_url: str) -> str:
    """A libpq URL from the SQLAlchemy one."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


# -- the fake LLM ----------------------------------------------------------------------------------


class FakeLlm:
    """The fake Ollama in its own process (its work does not share the measured process's GIL).

    Its latency can be changed while it runs, so one stack serves the L = 200 ms and L = 0 runs.
    """

    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "fake_llm.py"), "--latency", str(latency)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("FAKE_OLLAMA_URL="):
            raise RuntimeError(f"fake Ollama did not start: {line!r}")
        self.url = line.strip().split("=", 1)[1]

    def command(self, text: str) -> dict[str, Any]:
        """Send one command line, return its JSON answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def set_latency(self, seconds: float) -> None:
        """Every later chat answer waits this long."""
        self.command(f"latency {seconds}")

    def stats(self) -> dict[str, Any]:
        """Counters of the fake (chats served, most concurrent chats)."""
        return self.command("stats")

    def close(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s: may block that long."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- sampling processes ----------------------------------------------------------------------------


@dataclass
class Usage:
    """What one process (or one group of processes) used while it was sampled."""

    role: str
    pids: set[int] = field(default_factory=set)
    peak_kb: int = 0  # peak of the summed RSS (PSS for PostgreSQL, whose processes share memory)
    hwm_kb: int = 0  # the kernel's high-water mark of RSS, the largest over the group's processes
    cpu_s: float = 0.0
    processes: int = 0


class Sampler:
    """Samples the memory and CPU of labelled process trees in a background thread.

    `classify(pid, cmdline)` names the role of each process (None: not ours); a role may hold several
    processes (PostgreSQL's backends), whose PSS is summed, so shared memory is counted once.
    """

    def __init__(self, roots: "dict[str, set[int]]", interval: float = 0.25) -> None:
        self._roots = roots
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self.usage: dict[str, Usage] = {}

    def _role(self, pid: int, root_role: str, cmd: str) -> str:
        if root_role == "postgres":
            return "postgres"
        # A run worker is a multiprocessing child of the code server that launched it (or `execute_run`).
        if "spawn_main" in cmd or "execute_run" in cmd or "execute_step" in cmd:
            return "run worker"
        if "tail -F" in cmd or "watch_orphans" in cmd or "resource_tracker" in cmd:
            return "run worker helpers"
        if root_role != "code server" and ("api grpc" in cmd or "code-server" in cmd or "code_server" in cmd):
            return f"code server ({root_role})"  # one a webserver or daemon spawned itself: none should
        return root_role

    def sample_once(self) -> None:
        table = proc_table()
        now = uptime()
        summed: dict[str, int] = {}
        seen: dict[str, set[int]] = {}
        for root_role, roots in self._roots.items():
            for pid in descendants(roots, table):
                cmd = table[pid]["cmd"]
                if not cmd or "unshare" in cmd.split(" ", 1)[0]:
                    continue
                if now - table[pid]["started"] < 1.0:
                    continue  # between fork and exec a child still shows its parent's command line and memory
                role = self._role(pid, root_role, cmd)
                usage = self.usage.setdefault(role, Usage(role))
                usage.pids.add(pid)
                seen.setdefault(role, set()).add(pid)
                self._cpu_first.setdefault(pid, table[pid]["cpu"])
                self._cpu_last[pid] = table[pid]["cpu"]
                rss, hwm = rss_kb(pid)
                usage.hwm_kb = max(usage.hwm_kb, hwm)
                summed[role] = summed.get(role, 0) + (pss_kb(pid) if role == "postgres" else rss)
        for role, total in summed.items():
            self.usage[role].peak_kb = max(self.usage[role].peak_kb, total)
        for role, pids in seen.items():
            self.usage[role].processes = max(self.usage[role].processes, len(pids))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self._interval)

    def start(self) -> "Sampler":
        """Sample until `stop()`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Usage]:
        """Stop sampling; the usage per role (CPU seconds used while sampled)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_once()
        for usage in self.usage.values():
            usage.cpu_s = sum(self._cpu_last.get(p, 0.0) - self._cpu_first.get(p, 0.0) for p in usage.pids)
        return self.usage


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank): the one definition every benchmark reports."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def api_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of an API process on this database, with the benchmarks' admin token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL", "LLM_"))}
    env.update(DATABASE_URL=database_url, ADMIN_API_KEY=ADMIN_TOKEN, LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def uvicorn_args(app: str, port: int) -> list[str]:
    """uvicorn as `triage run` starts it: one process, uvloop + httptools when installed, no access log."""
    return [str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]


__all__ = [
    "ADMIN_TOKEN",
    "BIN",
    "ROOT",
    "BenchmarkFailure",
    "FakeLlm",
    "NeighbourMeter",
    "Postgres",
    "Row",
    "Sampler",
    "Usage",
    "api_env",
    "descendants",
    "fmt_ratio",
    "free_port",
    "machine",
    "percentile",
    "postgres",
    "print_table",
    "proc_table",
    "psycopg_dsn",
    "require",
    "say",
    "spawn",
    "stop",
    "uvicorn_args",
    "wait_http",
]


def run_standalone(doc: str | None, run: Callable[[Postgres, bool], list[Row]]) -> None:
    """`main()` of a benchmark module: parse --quick/--fast-unsafe, run on a throwaway PostgreSQL, print."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fast-unsafe", action="store_true", help="PostgreSQL with fsync off (not like make run)")
    args = parser.parse_args()
    with postgres(fast_unsafe=args.fast_unsafe) as pg:
        print_table(run(pg, args.quick))
