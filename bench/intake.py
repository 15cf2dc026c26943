"""Benchmarks 3 and 4: bulk and single ticket intake over real HTTP, next to their limits in the same run.

3. Bulk: `POST /tickets/batch` with 1,000-item bodies (uvicorn, the real app, admin token), tickets per
   second, next to inserting the same rows (tickets + their jobs, 1,000 per transaction) straight into
   PostgreSQL with COPY.
4. Single: `POST /tickets` at 32 concurrent connections for a bounded time, requests per second and
   p50 / p99, next to a bare FastAPI endpoint doing one INSERT (bench/bare_app.py) on the same database.

The server is one uvicorn process as `triage run` starts it; the load generator runs in its own process
(`wrk` when installed, else bench/loadgen.py) so it never shares the server's GIL. On 2 cores the client,
the server and PostgreSQL still share the CPUs, for the limit and the measured figure alike.

    .venv/bin/python bench/intake.py [--quick]
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (
    ADMIN_TOKEN,
    ROOT,
    Postgres,
    Row,
    api_env,
    fmt_ratio,
    free_port,
    psycopg_dsn,
    require,
    run_standalone,
    say,
    spawn,
    stop,
    uvicorn_args,
    wait_http,
)

from triage_pipeline.domain.owner import DEFAULT_OWNER_ID

CONCURRENCY = 32
BULK_ITEMS = 1000
DESCRIPTION = "Since this morning every payment attempt ends with an error page; customers cannot pay."


def _truncate(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE triage_job_logs, triage_job_batch_items, triage_jobs, triage_job_batches, tickets CASCADE"
        )
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE triage_jobs")


def _count(dsn: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()
        jobs = conn.execute("SELECT count(*) FROM triage_jobs").fetchone()
    return (tickets[0] if tickets else 0), (jobs[0] if jobs else 0)


def _count_prefix(dsn: str, prefix: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM tickets WHERE external_id LIKE %s", (f"{prefix}-%",)).fetchone()
    return row[0] if row else 0


def raw_copy(dsn: str, bodies: int) -> float:
    """Tickets and jobs straight into PostgreSQL with COPY, 1,000 per transaction; seconds taken."""
    import psycopg

    ticket_columns = "id, owner_id, external_id, title, description, status, created_at, updated_at"
    job_columns = "id, ticket_id, status, attempts, created_at, updated_at"
    with psycopg.connect(dsn) as conn:
        began = time.perf_counter()
        for body in range(bodies):
            now = datetime.now(UTC)
            ids = [uuid4() for _ in range(BULK_ITEMS)]
            with conn.cursor() as cur:
                with cur.copy(f"COPY tickets ({ticket_columns}) FROM STDIN") as copy:
                    for i, ticket_id in enumerate(ids):
                        copy.write_row(
                            (
                                ticket_id,
                                DEFAULT_OWNER_ID,
                                f"raw-{body}-{i}",
                                f"Ticket {i}",
                                DESCRIPTION,
                                "PENDING",
                                now,
                                now,
                            )
                        )
                with cur.copy(f"COPY triage_jobs ({job_columns}) FROM STDIN") as copy:
                    for ticket_id in ids:
                        copy.write_row((uuid4(), ticket_id, "PENDING", 0, now, now))
            conn.commit()
        return time.perf_counter() - began


def _server(app: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = spawn(uvicorn_args(app, port), env, log)
    wait_http(f"http://127.0.0.1:{port}/openapi.json", 120, process, log)
    return process, f"http://127.0.0.1:{port}"


def _loadgen(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadgen.py"), *args], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def single_load(url: str, seconds: float, prefix: str) -> dict[str, Any]:
    """`CONCURRENCY` connections posting tickets for `seconds`: requests/s, p50 and p99 in ms."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        script = str(ROOT / "bench" / "wrk_tickets.lua")
        extra = [prefix, ADMIN_TOKEN]
        out = subprocess.run(
            [wrk, "-t2", f"-c{CONCURRENCY}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", script, url, "--", *extra],
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in out.stdout.splitlines() if x.startswith("WRK_JSON "))
        data = json.loads(line.split(" ", 1)[1])
        errors = data["non_2xx"] + data["connect"] + data["read"] + data["write"] + data["timeout"]
        require(errors == 0, f"POST /tickets: {errors} of {data['requests']} requests failed under wrk: {data}")
        return {
            "rps": data["requests"] / (data["duration_us"] / 1e6),
            "p50": data["p50_us"] / 1000,
            "p99": data["p99_us"] / 1000,
            "requests": data["requests"],
            "errors": errors,
            "client": "wrk -t2 -c32",
        }
    # Each load gets its own external_id prefix: the warm-up and the measured run post to the same
    # table, and a repeated (owner, external_id) is answered 409 (that was the 355 non-2xx of an earlier run).
    result = _loadgen(
        "single",
        *("--url", url, "--token", ADMIN_TOKEN, "--prefix", prefix),
        *("--concurrency", str(CONCURRENCY), "--duration", str(seconds)),
    )
    require(
        result["non_2xx"] == 0,
        f"POST /tickets: {result['non_2xx']} of {result['requests']} answers were not 2xx: {result['statuses']}",
    )
    return {
        "rps": result["requests"] / result["seconds"],
        "p50": result["p50_ms"],
        "p99": result["p99_ms"],
        "requests": result["requests"],
        "errors": result["non_2xx"],
        "client": "bench/loadgen.py, 32 threads (wrk not installed)",
    }


def bulk_rows(pg: Postgres, url_db: str, workdir: Path, quick: bool) -> list[Row]:
    """Benchmark 3."""
    bodies = 5 if quick else 20
    dsn = psycopg_dsn(url_db)
    _truncate(dsn)
    say(f"benchmark 3: raw COPY of {bodies} x {BULK_ITEMS} tickets + jobs")
    raw_copy(dsn, 1)  # warm-up
    _truncate(dsn)
    raw_s = raw_copy(dsn, bodies)
    raw_rate = bodies * BULK_ITEMS / raw_s
    _truncate(dsn)
    path = workdir / "bodies.json"
    payload = [
        [
            {"external_id": f"bulk-{b}-{i}", "title": f"Ticket {i}", "description": DESCRIPTION}
            for i in range(BULK_ITEMS)
        ]
        for b in range(bodies + 1)
    ]
    path.write_text(json.dumps(payload))
    process, base = _server("api.main:app", api_env(url_db), workdir / "api-bulk.log")
    try:
        warm = workdir / "warm.json"
        warm.write_text(json.dumps(payload[-1:]))
        _loadgen("bulk", "--url", f"{base}/tickets/batch", "--token", ADMIN_TOKEN, "--bodies", str(warm))
        _truncate(dsn)
        path.write_text(json.dumps(payload[:-1]))
        say(f"benchmark 3: POST /tickets/batch, {bodies} bodies of {BULK_ITEMS}")
        result = _loadgen("bulk", "--url", f"{base}/tickets/batch", "--token", ADMIN_TOKEN, "--bodies", str(path))
    finally:
        stop(process)
    tickets, jobs = _count(dsn)
    api_rate = result["created"] / result["seconds"]
    ratio = api_rate / raw_rate
    complete = result["created"] == tickets == jobs == bodies * BULK_ITEMS and result["non_2xx"] == 0
    require(
        complete,
        f"POST /tickets/batch: {result['non_2xx']} non-2xx bodies, {result['created']:,} CREATED answers, "
        f"{tickets:,} tickets and {jobs:,} jobs in the table; expected {bodies * BULK_ITEMS:,} of each",
    )
    return [
        Row(
            "3",
            f"bulk intake: POST /tickets/batch ({BULK_ITEMS:,} items/body, 1 client)",
            f"{api_rate:,.0f} tickets/s",
            f"{raw_rate:,.0f} tickets/s (COPY)",
            fmt_ratio(ratio),
            ">= 25%",
            ratio >= 0.25 and complete,
            (
                f"{result['created']:,} created in {result['seconds']:.2f} s, "
                f"{result['p50_ms']:.0f} ms per body (p50); "
                f"COPY of the same tickets + jobs, {BULK_ITEMS:,} per transaction: {raw_s:.2f} s; "
                f"{tickets:,} tickets and {jobs:,} jobs in the table"
            ),
        )
    ]


def single_rows(url_db: str, workdir: Path, quick: bool) -> list[Row]:
    """Benchmark 4."""
    seconds = 4.0 if quick else 10.0
    dsn = psycopg_dsn(url_db)
    measured: dict[str, dict[str, Any]] = {}
    for name, app in (("bare", "bench.bare_app:app"), ("api", "api.main:app")):
        _truncate(dsn)
        process, base = _server(app, api_env(url_db), workdir / f"{name}.log")
        try:
            single_load(f"{base}/tickets", 2, f"warm-{name}")
            say(f"benchmark 4: POST /tickets on the {name} endpoint, {CONCURRENCY} connections, {seconds:.0f} s")
            prefix = f"{name}-{uuid4().hex[:6]}"
            measured[name] = single_load(f"{base}/tickets", seconds, prefix)
            stored = _count_prefix(dsn, prefix)
            # Requests still in flight when the client stops may be stored without being counted.
            answered = measured[name]["requests"]
            require(
                answered <= stored <= answered + CONCURRENCY,
                f"POST /tickets on the {name} endpoint: {answered:,} answered 2xx but {stored:,} tickets were stored",
            )
        finally:
            stop(process)
    api, bare = measured["api"], measured["bare"]
    ratio = api["rps"] / bare["rps"]
    return [
        Row(
            "4",
            f"single intake: POST /tickets, {CONCURRENCY} connections: throughput",
            f"{api['rps']:,.0f} req/s",
            f"{bare['rps']:,.0f} req/s (bare FastAPI + 1 INSERT)",
            fmt_ratio(ratio),
            ">= 60%",
            ratio >= 0.60 and api["errors"] == 0,
            (
                f"{api['requests']:,} requests, {api['errors']} errors; client: {api['client']}; the bare endpoint: "
                f"p50 {bare['p50']:.1f} ms, p99 {bare['p99']:.1f} ms"
            ),
        ),
        Row(
            "4",
            f"single intake: POST /tickets, {CONCURRENCY} connections: latency p50 / p99",
            f"{api['p50']:.1f} / {api['p99']:.1f} ms",
            f"{bare['p50']:.1f} / {bare['p99']:.1f} ms (bare)",
            "-",
            "p99 < 50 ms",
            api["p99"] < 50.0,
        ),
    ]


def run(pg: Postgres, quick: bool) -> list[Row]:
    """Benchmarks 3 and 4 on `pg`; the rows of the table."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        url_db = pg.database("bench_intake")
        return [*bulk_rows(pg, url_db, workdir, quick), *single_rows(url_db, workdir, quick)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Run on a throwaway PostgreSQL and print the table."""
    run_standalone(__doc__, run)


if __name__ == "__main__":
    main()
