"""Benchmarks 1, 2, 6 and 7: triage throughput, orchestration cost, memory and idle CPU, on the real stack.

The real stack, as `triage run` starts it: uvicorn (the API), one Dagster code server that
dagster-webserver and dagster-daemon share, each run in its own run worker process, PostgreSQL 17 with
the same settings as `make run`, and the fake Ollama in a process of its own answering after a fixed
latency L. A run is launched the way a client launches one: `POST /triage-jobs/batch` creates the batch, the
`queued_batches_sensor` launches its run, the run triages it (C = LLM_CONCURRENCY = 16 calls in flight,
JOBS_PER_CHUNK jobs per step) and finishes it. Times come from the database (the batch's and logs'
timestamps) and from Dagster's run records:

    request ------> run created ------> run started ------> first LLM call ------> batch DONE
            sensor              launch             plan, first step      processing

1. Throughput: processing (first LLM call -> batch DONE, every log written) against N x L / C, for N =
   1,000 and 5,000 at L = 200 ms; the end-to-end time (request -> DONE) is printed too.
2. Orchestration: the same at L = 0; marginal seconds per job = slope of the processing time between the
   two N; fixed cost of a run = request -> first LLM call, the median over small runs (N = 16) and every
   other run, with its parts (sensor tick, run queue + run worker launch, plan and first step).
6. Memory: peak RSS of each process of the stack (PSS summed over PostgreSQL's processes) while the
   runs of benchmark 1 execute, and the CPU seconds each used.
7. Idle: the CPU the whole stack uses with nothing queued, averaged over 5 minutes (1 with --quick),
   after the runs above (so every process has loaded what it loads).

    .venv/bin/python bench/triage_stack.py            # N = 1,000 and 5,000
    .venv/bin/python bench/triage_stack.py --quick    # N = 1,000 (L = 200 ms); 1,000 and 3,000 (L = 0)
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (
    ADMIN_TOKEN,
    BIN,
    ROOT,
    FakeLlm,
    Postgres,
    Row,
    Sampler,
    Usage,
    api_env,
    fmt_ratio,
    free_port,
    machine,
    postgres,
    print_table,
    require,
    say,
    spawn,
    stop,
    uvicorn_args,
    wait_http,
)

from triage_pipeline.cli.dagster_processes import (
    code_server_args,
    daemon_args,
    grpc_workspace,
    wait_for_code_server,
    webserver_args,
)

CONCURRENCY = 16  # the LLM_CONCURRENCY default, which the stack runs with
SENSOR_LOOP_S = 5  # the Dagster sensor daemon evaluates sensors at most every 5 s, whatever their interval
FIXED_COST_TARGET_S = 8.0
IDLE_TARGET = 0.05  # of one core


@dataclass
class TriageRun:
    """One batch through the stack, with its timeline (epoch seconds)."""

    n: int
    latency: float
    requested: float
    run_created: float
    run_started: float
    first_call: float
    last_record: float
    done: float
    logs: int
    jobs_done: int
    tickets_completed: int
    left_running: int
    mean_llm_ms: float
    max_concurrent_chats: int
    other_runs: int
    events: dict[str, float]  # Dagster's run events: first timestamp of each type
    step_gaps: list[float]  # between one chunk step's success and the next one's start
    steps: int

    @property
    def processing(self) -> float:
        """First LLM call -> batch DONE."""
        return self.done - self.first_call

    @property
    def end_to_end(self) -> float:
        """API request -> batch DONE."""
        return self.done - self.requested

    @property
    def fixed(self) -> float:
        """API request -> first LLM call."""
        return self.first_call - self.requested

    @property
    def limit(self) -> float:
        """N x L / C."""
        return self.n * self.latency / CONCURRENCY

    @property
    def complete(self) -> bool:
        """Every job DONE, its ticket COMPLETED, one log each, none left RUNNING."""
        return self.logs == self.jobs_done == self.tickets_completed == self.n and self.left_running == 0


class Stack:
    """uvicorn + dagster-webserver + dagster-daemon on one database, as `triage run` starts them."""

    def __init__(self, pg: Postgres, workdir: Path, llm_url: str) -> None:
        self.pg = pg
        self.workdir = workdir
        self.llm_url = llm_url
        self.processes: dict[str, Any] = {}
        self.app_url = ""
        self.api = ""

    def start(self) -> None:
        """Start the three servers and wait until each answers."""
        from triage_pipeline.infrastructure.url_parts import database_env

        self.app_url = self.pg.database("bench_triage")
        self.pg.database("bench_dagster", migrate=False)
        home = self.workdir / "dagster_home"
        home.mkdir(exist_ok=True)
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        env = api_env(
            self.app_url,
            **database_env(self.app_url, "bench_dagster"),
            DAGSTER_HOME=str(home),
            LLM_BASE_URL=self.llm_url,
            # Only the API's batches run during the benchmark: the schedule (every 10 minutes by default)
            # and the backlog sensor would otherwise claim the tickets seeded for the next run.
            TRIAGE_SCHEDULE_CRON="0 0 1 1 *",
            BACKLOG_MIN_JOBS="1000000000",
            BACKLOG_MAX_AGE_S="1000000000",
        )
        os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD")})
        os.environ["DAGSTER_DB_NAME"] = "bench_dagster"
        api_port, web_port, code_port = free_port(), free_port(), free_port()
        logs = self.workdir
        self.processes["API"] = spawn(uvicorn_args("api.main:app", api_port), env, logs / "api.log")
        self.processes["code server"] = spawn(
            code_server_args(BIN, "127.0.0.1", code_port), env, logs / "code-server.log"
        )
        wait_for_code_server("127.0.0.1", code_port, self.processes["code server"])
        workspace = grpc_workspace(home, "127.0.0.1", code_port)
        self.processes["webserver"] = spawn(
            webserver_args(BIN, workspace, "127.0.0.1", web_port), env, logs / "webserver.log"
        )
        self.processes["daemon"] = spawn(daemon_args(BIN, workspace), env, logs / "daemon.log")
        # As `triage run`: the webhook deliverer woken by the outbox's NOTIFY (its idle cost counts in benchmark 7).
        self.processes["webhook deliverer"] = spawn(
            [str(BIN / "triage"), "webhooks", "deliver", "--watch"], env, logs / "webhook-deliverer.log"
        )
        self.api = f"http://127.0.0.1:{api_port}"
        wait_http(f"{self.api}/health/ready", 120, self.processes["API"], logs / "api.log")
        wait_http(f"http://127.0.0.1:{web_port}/server_info", 180, self.processes["webserver"], logs / "webserver.log")
        self._wait_for_daemon(180)

    def _wait_for_daemon(self, timeout: float) -> None:
        from dagster import DagsterInstance

        deadline = time.monotonic() + timeout
        with DagsterInstance.get() as instance:
            while time.monotonic() < deadline:
                beats = instance.get_daemon_heartbeats()
                if {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= set(beats):
                    return
                if self.processes["daemon"].poll() is not None:
                    break
                time.sleep(0.5)
        raise RuntimeError(f"dagster-daemon did not report in:\n{(self.workdir / 'daemon.log').read_text()[-3000:]}")

    def roots(self) -> dict[str, set[int]]:
        """Root pids by role, for the sampler."""
        roots = {role: {process.pid} for role, process in self.processes.items()}
        roots["postgres"] = self.pg.pids()
        return roots

    def stop(self) -> None:
        """Stop the servers (and their code servers and run workers)."""
        for process in reversed(list(self.processes.values())):
            stop(process)


def seed(app_url: str, n: int, tag: str) -> None:
    """N new tickets (and their PENDING jobs) of the default owner, 1,000 per transaction."""
    from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
    from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
    from triage_pipeline.infrastructure.clock import SystemClock
    from triage_pipeline.infrastructure.db.engine import make_engine
    from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

    engine = make_engine(app_url)
    use_case = CreateTickets(SqlUnitOfWorkFactory(engine), SystemClock())
    for start in range(0, n, 1000):
        use_case.execute(
            CreateTicketsCommand(
                [
                    NewTicket(DEFAULT_OWNER_ID, f"{tag}-{i}", f"Checkout broken {i}", "The pay button fails on step 3.")
                    for i in range(start, min(n, start + 1000))
                ]
            )
        )
    engine.dispose()


def triage_once(stack: Stack, fake: FakeLlm, n: int, latency: float, tag: str) -> TriageRun:
    """Seed N tickets, queue them with the API, wait for the batch to be DONE and its run to end."""
    import httpx
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
    from sqlalchemy import text

    from triage_pipeline.infrastructure.db.engine import make_engine

    fake.set_latency(latency)
    seed(stack.app_url, n, tag)
    fake.command("reset-counters")
    engine = make_engine(stack.app_url)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    requested = time.time()
    response = httpx.post(f"{stack.api}/triage-jobs/batch", json={"max_items": n}, headers=headers, timeout=60)
    response.raise_for_status()
    body = response.json()
    if body["status"] != "QUEUED" or body["batch"]["total_items"] != n:
        raise RuntimeError(f"unexpected answer: {body}")
    batch_id = UUID(body["batch"]["id"])
    deadline = time.monotonic() + 180 + 5 * n * latency / CONCURRENCY
    with engine.connect() as conn:
        while True:
            status = conn.execute(
                text("SELECT status FROM triage_job_batches WHERE id = :id"), {"id": batch_id}
            ).scalar_one()
            conn.rollback()
            if status == "DONE":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"batch {batch_id} not DONE in time; see {stack.workdir}/daemon.log")
            time.sleep(0.1)
        facts = conn.execute(
            text(
                """
                SELECT b.finished_at,
                       (SELECT count(*) FROM triage_job_logs l WHERE l.batch_id = b.id),
                       (SELECT min(l.started_at) FROM triage_job_logs l WHERE l.batch_id = b.id),
                       (SELECT avg(l.latency_ms) FROM triage_job_logs l WHERE l.batch_id = b.id),
                       (SELECT count(*) FROM triage_job_batch_items i JOIN triage_jobs j ON j.id = i.job_id
                         WHERE i.batch_id = b.id AND i.status = 'DONE' AND j.status = 'DONE'),
                       (SELECT count(*) FROM triage_job_batch_items i JOIN triage_jobs j ON j.id = i.job_id
                         JOIN tickets t ON t.id = j.ticket_id
                         WHERE i.batch_id = b.id AND t.status = 'COMPLETED' AND t.triage_result IS NOT NULL),
                       (SELECT count(*) FROM triage_jobs j WHERE j.status = 'RUNNING'),
                       (SELECT max(l.finished_at) FROM triage_job_logs l WHERE l.batch_id = b.id)
                  FROM triage_job_batches b WHERE b.id = :id
                """
            ),
            {"id": batch_id},
        ).one()
    engine.dispose()
    with DagsterInstance.get() as instance:
        record = None
        while time.monotonic() < deadline:
            records = instance.get_run_records(RunsFilter(tags={"triage/batch_id": str(batch_id)}))
            if records and records[0].dagster_run.status in (
                DagsterRunStatus.SUCCESS,
                DagsterRunStatus.FAILURE,
                DagsterRunStatus.CANCELED,
            ):
                record = records[0]
                break
            time.sleep(0.2)
        if record is None:
            raise RuntimeError(f"the run of batch {batch_id} did not end")
        if record.dagster_run.status != DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"the run of batch {batch_id} ended {record.dagster_run.status}")
        window = RunsFilter(created_after=datetime.fromtimestamp(requested).astimezone())
        other = [r for r in instance.get_run_records(window) if r.dagster_run.run_id != record.dagster_run.run_id]
        events: dict[str, float] = {}
        starts: list[float] = []
        ends: list[float] = []
        for entry in instance.all_logs(record.dagster_run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            name = event.event_type.name  # RUN_START (its value is still the legacy PIPELINE_START)
            events.setdefault(name, entry.timestamp)
            if name == "STEP_START" and (event.step_key or "").startswith("triage_chunk"):
                starts.append(entry.timestamp)
            elif name == "STEP_SUCCESS" and (event.step_key or "").startswith("triage_chunk"):
                ends.append(entry.timestamp)
        starts.sort()
        ends.sort()
        gaps = [start - end for start, end in zip(starts[1:], ends[:-1], strict=False)]
    stats = fake.stats()
    return TriageRun(
        n=n,
        latency=latency,
        requested=requested,
        run_created=record.create_timestamp.timestamp(),
        run_started=record.start_time or float("nan"),
        first_call=facts[2].timestamp(),
        last_record=facts[7].timestamp(),
        done=facts[0].timestamp(),
        logs=facts[1],
        jobs_done=facts[4],
        tickets_completed=facts[5],
        left_running=facts[6],
        mean_llm_ms=float(facts[3]),
        max_concurrent_chats=int(stats["max_concurrent_chats"]),
        other_runs=len(other),
        events=events,
        step_gaps=gaps,
        steps=len(starts),
    )


def describe(run: TriageRun) -> str:
    """One progress line."""
    e = run.events
    timeline = " ".join(
        f"{name}=+{e[name] - run.requested:.2f}"
        for name in ("RUN_ENQUEUED", "RUN_DEQUEUED", "RUN_STARTING", "RUN_START", "STEP_START", "RUN_SUCCESS")
        if name in e
    )
    gaps = f"{len(run.step_gaps)} gaps between {run.steps} chunk steps, {sum(run.step_gaps):.2f} s" if run.steps else ""
    return (
        f"[{timeline}; {gaps}] "
        f"N={run.n} L={run.latency * 1000:.0f}ms: processing {run.processing:.2f} s (limit {run.limit:.2f} s), "
        f"request->first call {run.fixed:.2f} s [sensor {run.run_created - run.requested:.2f}, launch "
        f"{run.run_started - run.run_created:.2f}, start {run.first_call - run.run_started:.2f}], "
        f"last attempt recorded -> batch DONE {run.done - run.last_record:.2f} s, "
        f"e2e {run.end_to_end:.2f} s, mean LLM call {run.mean_llm_ms:.0f} ms, max {run.max_concurrent_chats} "
        f"chats at once, {'complete' if run.complete else 'INCOMPLETE'}"
    )


def throughput_rows(runs: list[TriageRun]) -> list[Row]:
    """Benchmark 1 rows."""
    rows: list[Row] = []
    for run in runs:
        name = f"triage N={run.n:,} L={run.latency * 1000:.0f}ms C={CONCURRENCY}"
        ratio = run.limit / run.processing
        note = (
            f"mean LLM call {run.mean_llm_ms:.0f} ms, at most {run.max_concurrent_chats} calls in flight; "
            f"{run.logs:,} logs, {run.jobs_done:,} jobs DONE, {run.tickets_completed:,} tickets COMPLETED, "
            f"{run.left_running} RUNNING"
        )
        if run.other_runs:
            note += f"; {run.other_runs} other Dagster run(s) overlapped"
        rows.append(
            Row(
                "1",
                f"{name}: first LLM call -> batch DONE",
                f"{run.processing:.2f} s ({run.n / run.processing:.0f} jobs/s)",
                f"{run.limit:.2f} s (N*L/C)",
                fmt_ratio(ratio),
                ">= 85%",
                ratio >= 0.85 and run.complete,
                note,
            )
        )
        rows.append(
            Row(
                "1",
                f"{name}: API request -> batch DONE",
                f"{run.end_to_end:.2f} s",
                f"{run.limit:.2f} s (N*L/C)",
                fmt_ratio(run.limit / run.end_to_end),
                "-",
                None,
            )
        )
    return rows


def orchestration_rows(zero: list[TriageRun], every: list[TriageRun]) -> list[Row]:
    """Benchmark 2 rows: marginal cost per job at L = 0 and the fixed cost of a run."""
    low, high = min(zero, key=lambda r: r.n), max(zero, key=lambda r: r.n)
    slope_ms = (high.processing - low.processing) / (high.n - low.n) * 1000
    slope_e2e_ms = (high.end_to_end - low.end_to_end) / (high.n - low.n) * 1000
    fixed = [r.fixed for r in every]
    sensor = median([r.run_created - r.requested for r in every])
    launch = median([r.run_started - r.run_created for r in every])
    start = median([r.first_call - r.run_started for r in every])
    return [
        Row(
            "2",
            f"orchestration L=0: marginal cost per job (slope N={low.n:,}->{high.n:,})",
            f"{slope_ms:.2f} ms/job",
            "0 ms (no LLM time left)",
            "-",
            "<= 3 ms/job",
            slope_ms <= 3.0 and low.complete and high.complete,
            (
                f"processing {low.processing:.2f} s for {low.n:,} and {high.processing:.2f} s for {high.n:,} jobs "
                f"({high.n / high.processing:.0f} jobs/s); slope of the end-to-end time {slope_e2e_ms:.2f} ms/job"
            ),
        ),
        Row(
            "2",
            "fixed cost of a run: API request -> first LLM call (median)",
            f"{median(fixed):.2f} s (median of {len(fixed)}, {min(fixed):.2f}-{max(fixed):.2f})",
            "-",
            "-",
            f"<= {FIXED_COST_TARGET_S:.0f} s",
            median(fixed) <= FIXED_COST_TARGET_S,
            (
                f"medians of the parts: sensor tick {sensor:.2f} s (Dagster's sensor loop runs every {SENSOR_LOOP_S} s:"
                f" 0-{SENSOR_LOOP_S} s by design) + run queue and run worker launch {launch:.2f} s + plan and first"
                f" step {start:.2f} s"
            ),
        ),
    ]


def idle_rows(usage: dict[str, Usage], seconds: float) -> list[Row]:
    """Benchmark 7: the CPU of the whole stack with nothing to do."""
    total = sum(u.cpu_s for u in usage.values())
    share = total / seconds
    parts = ", ".join(
        f"{role} {u.cpu_s / seconds:.1%}" for role, u in sorted(usage.items(), key=lambda item: -item[1].cpu_s)
    )
    return [
        Row(
            "7",
            f"idle stack, nothing queued: CPU averaged over {seconds / 60:.0f} min",
            f"{share:.1%} of one core",
            "-",
            "-",
            f"<= {IDLE_TARGET:.0%} of one core",
            share <= IDLE_TARGET,
            f"{total:.1f} CPU s in {seconds:.0f} s: {parts}",
        )
    ]


MEMORY_ORDER = ["API", "code server", "webserver", "daemon", "run worker", "postgres"]


def memory_rows(usage: dict[str, Usage], seconds: float, total_mem_gib: float) -> list[Row]:
    """Benchmark 6 rows: peak memory of each process of the stack while benchmark 1 ran."""
    rows: list[Row] = []
    total = 0
    for role in [r for r in MEMORY_ORDER if r in usage] + sorted(set(usage) - set(MEMORY_ORDER)):
        u = usage[role]
        total += u.peak_kb
        what = "peak PSS, summed" if role == "postgres" else "peak RSS"
        count = f", {u.processes} processes" if u.processes > 1 else ""
        note = f"{u.cpu_s:.1f} CPU s over the {seconds:.0f} s of benchmark 1 ({u.cpu_s / seconds:.0%} of a core)"
        rows.append(Row("6", f"memory: {role} ({what}{count})", f"{u.peak_kb / 1024:.0f} MiB", note=note))
    rows.append(
        Row(
            "6",
            "memory: whole stack (sum of the above)",
            f"{total / 1024:.0f} MiB",
            f"{total_mem_gib:.0f} GiB (machine)",
            fmt_ratio(total / 1024 / 1024 / total_mem_gib),
            "-",
            None,
        )
    )
    return rows


class RunWorkerProfiler:
    """Attaches `py-spy record` to every run worker that appears (to find where a run spends its time)."""

    def __init__(self, stack: Stack, out_dir: Path) -> None:
        import threading

        self._stack = stack
        self._out = out_dir
        self._stop = threading.Event()
        self._seen: set[int] = set()
        self._spies: list[Any] = []
        self._thread = threading.Thread(target=self._watch, name="profiler", daemon=True)

    def start(self) -> "RunWorkerProfiler":
        """Watch in a background thread until `stop()`; each run worker's profile goes to its own file in `out_dir`."""
        self._out.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        import subprocess

        from _support import descendants, proc_table

        spy = shutil.which("py-spy") or str(BIN / "py-spy")
        while not self._stop.wait(0.05):
            table = proc_table()
            for pid in descendants({self._stack.processes["code server"].pid}, table):
                if pid in self._seen or "spawn_main" not in table[pid]["cmd"]:
                    continue
                self._seen.add(pid)
                output = self._out / f"run-worker-{pid}.txt"
                args = [spy, "record", "--pid", str(pid), "--rate", "100", "--idle", "--threads"]
                args += ["--format", "raw", "--output", str(output)]
                self._spies.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                say(f"profiling run worker {pid} into {output}")

    def stop(self) -> None:
        """Stop watching (py-spy ends with its process)."""
        self._stop.set()
        self._thread.join()
        for spy in self._spies:
            try:
                spy.wait(timeout=30)
            except Exception:
                spy.kill()


def run(pg: Postgres, quick: bool, profile: Path | None = None) -> list[Row]:
    """Benchmarks 1, 2, 6 and 7 on a stack started on `pg`; the rows of the table."""
    throughput_ns = [1000] if quick else [1000, 5000]
    zero_ns = [1000, 3000] if quick else [1000, 5000]
    fixed_runs = 3 if quick else 7
    idle_s = 60.0 if quick else 300.0
    workdir = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    fake = FakeLlm(latency=0.2)
    stack = Stack(pg, workdir, fake.url)
    keep_logs = False

    def once(n: int, latency: float, tag: str) -> TriageRun:
        result = triage_once(stack, fake, n, latency, tag)
        say(describe(result))
        require(
            result.complete,
            f"batch of {n} (L={latency}): {result.logs} logs, {result.jobs_done} jobs DONE, "
            f"{result.tickets_completed} tickets COMPLETED, {result.left_running} RUNNING; expected {n} of each",
        )
        return result

    try:
        say("starting the stack (API, code server, dagster-webserver, dagster-daemon)")
        stack.start()
        say("warm-up run")
        once(32, 0.2, "warm")
        say(f"benchmark 2: fixed cost, {fixed_runs} runs of N=16")
        small = [once(16, 0.2, f"f{i}") for i in range(fixed_runs)]
        profiler = RunWorkerProfiler(stack, profile).start() if profile else None
        runs: list[TriageRun] = []
        sampler = Sampler(stack.roots()).start()
        sampled_from = time.monotonic()
        for n in throughput_ns:
            say(f"benchmark 1: N={n} L=200ms")
            runs.append(once(n, 0.2, f"t{n}"))
        usage = sampler.stop()
        sampled = time.monotonic() - sampled_from
        zero: list[TriageRun] = []
        for n in zero_ns:
            say(f"benchmark 2: N={n} L=0")
            zero.append(once(n, 0.0, f"z{n}"))
        if profiler is not None:
            profiler.stop()
        say(f"benchmark 7: the idle stack for {idle_s:.0f} s")
        time.sleep(10)  # the last run worker exits
        idle_sampler = Sampler(stack.roots(), interval=1.0).start()
        time.sleep(idle_s)
        idle = idle_sampler.stop()
        mem_gib = float(machine()["memory"].split()[0])
        return [
            *throughput_rows(runs),
            *orchestration_rows(zero, small + runs + zero),
            *memory_rows(usage, sampled, mem_gib),
            *idle_rows(idle, idle_s),
        ]
    except Exception:
        keep_logs = True
        say(f"failed; the stack's logs are kept in {workdir}")
        raise
    finally:
        stack.stop()
        fake.close()
        if not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Run on a throwaway PostgreSQL and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller runs")
    parser.add_argument("--fast-unsafe", action="store_true", help="PostgreSQL with fsync off (not like make run)")
    parser.add_argument("--profile", type=Path, help="py-spy every run worker into this directory (raw stacks)")
    args = parser.parse_args()
    with postgres(fast_unsafe=args.fast_unsafe) as pg, contextlib.suppress(KeyboardInterrupt):
        print_table(run(pg, args.quick, args.profile))


if __name__ == "__main__":
    main()
