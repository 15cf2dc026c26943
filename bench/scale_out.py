"""Benchmark 11: scale-out, one batch triaged by two Celery workers over one and over two LLM hosts.

The stack is tests/support/scale_stack.py: a Redis broker, fake Ollama hosts answering `C` chats at once
after `L` each (more wait in the host, as OLLAMA_NUM_PARALLEL does), two `triage worker` processes, and the
triage job run by Dagster's Celery executor (TRIAGE_EXECUTOR=celery, TRIAGE_WORKERS=2). One batch of N
tickets is triaged on one host, then on two; the limit of each run is N x L / (sum of the hosts' C),
the time if every host slot were busy from the first call to the last.

    .venv/bin/python bench/scale_out.py [--quick]
"""

import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _support import Postgres, Row, fmt_ratio, require, run_standalone, say
from sqlalchemy import text

from tests.support.scale_stack import ScaleStack
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.db.engine import make_engine
from triage_pipeline.infrastructure.settings import Settings

LATENCY_S = 0.2
HOST_PARALLEL = 16
WORKERS = 2
TARGET_FRACTION = 0.85
TARGET_SCALING = 1.8


@dataclass(frozen=True)
class ScaleRun:
    hosts: int
    n: int
    processing_s: float  # first LLM call -> batch DONE
    run_s: float  # `dagster job execute` start -> exit
    per_host: dict[str, int]
    per_worker: list[int]

    @property
    def limit_s(self) -> float:
        return self.n * LATENCY_S / (HOST_PARALLEL * self.hosts)


def triage_once(pg: Postgres, hosts: int, n: int, tag: str) -> ScaleRun:
    """A fresh database and stack; one batch of `n` tickets through it."""
    url = pg.database(f"scale_{tag}")
    pg.database(f"scale_{tag}_dagster", migrate=False)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-scale-{tag}-"))
    settings = {"TRIAGE_WORKERS": str(WORKERS), "LLM_CONCURRENCY": str(HOST_PARALLEL), "LOG_LEVEL": "WARNING"}
    engine = make_engine(url)
    with ScaleStack(url, workdir, dagster_db_name=f"scale_{tag}_dagster", settings=settings) as stack:
        stack.start_redis()
        for _ in range(hosts):
            stack.start_host(latency_s=LATENCY_S, parallel=HOST_PARALLEL, concurrency=HOST_PARALLEL)
        workers = [stack.start_worker() for _ in range(WORKERS)]
        container = Container(Settings(), database_url=url)
        try:
            items = [
                NewTicket(DEFAULT_OWNER_ID, f"B-{i}", f"Checkout fails {i}", f"Error {i} on pay") for i in range(n)
            ]
            container.use(CreateTickets).execute(CreateTicketsCommand(items))
            created = container.use(CreateBatch).execute(CreateBatchCommand(max_items=n))
        finally:
            container.close()
        require(created is not None and len(created.job_ids) == n, "the batch did not take every job")
        assert created is not None
        say(f"benchmark 11: N={n} on {hosts} host(s) of C={HOST_PARALLEL}, {WORKERS} Celery workers")
        began = time.monotonic()
        run = stack.run_batch(
            str(created.batch.id), workers=WORKERS, jobs_per_chunk=1000, llm_concurrency=HOST_PARALLEL
        )
        code = run.popen.wait(timeout=600)
        run_s = time.monotonic() - began
        require(code == 0, f"the scale-out run failed: {run.log()[-1500:]}")
        per_worker = [w.log().count("] received") for w in workers]
    with engine.connect() as connection:
        first = connection.execute(text("SELECT min(started_at) FROM triage_job_logs")).scalar_one()
        done = connection.execute(text("SELECT count(*) FROM triage_jobs WHERE status = 'DONE'")).scalar_one()
        finished = connection.execute(
            text("SELECT finished_at FROM triage_job_batches WHERE id = :id"), {"id": created.batch.id}
        ).scalar_one()
        per_host = Counter(
            dict(connection.execute(text("SELECT llm_host, count(*) FROM triage_job_logs GROUP BY 1")).all())
        )
    engine.dispose()
    require(done == n, f"{done} of {n} jobs DONE")
    require(finished is not None, "the batch did not finish")
    processing = (finished - first).total_seconds()
    result = ScaleRun(hosts, n, processing, run_s, {str(k): v for k, v in per_host.items()}, per_worker)
    say(
        f"  processing {processing:.2f} s (limit {result.limit_s:.2f} s), run {run_s:.2f} s, "
        f"calls per host {result.per_host}, steps per worker {per_worker}"
    )
    return result


def run(pg: Postgres, quick: bool) -> list[Row]:
    """Benchmark 11 rows: one host, two hosts, and the scaling between them."""
    n = 1000 if quick else 2000
    one = triage_once(pg, 1, n, "one")
    two = triage_once(pg, 2, n, "two")
    rows = []
    for result in (one, two):
        ratio = result.limit_s / result.processing_s
        rows.append(
            Row(
                "11",
                f"scale-out N={n:,} L={LATENCY_S * 1000:.0f}ms, {result.hosts} host(s) x C={HOST_PARALLEL}, "
                f"{WORKERS} Celery workers: first LLM call -> batch DONE",
                f"{result.processing_s:.2f} s ({n / result.processing_s:.0f} jobs/s)",
                f"{result.limit_s:.2f} s (N*L/sum C)",
                fmt_ratio(ratio),
                f">= {TARGET_FRACTION:.0%}" if result.hosts == 2 else "-",
                ratio >= TARGET_FRACTION if result.hosts == 2 else None,
                f"run {result.run_s:.1f} s end to end; calls per host "
                f"{sorted(result.per_host.values(), reverse=True)}; Dagster steps per worker (plan, chunks, "
                f"finish) {result.per_worker}",
            )
        )
    scaling = one.processing_s / two.processing_s
    rows.append(
        Row(
            "11",
            "scale-out: throughput of two hosts / one host",
            f"{scaling:.2f}x",
            "2.00x (ideal)",
            fmt_ratio(scaling / 2),
            f">= {TARGET_SCALING:g}x",
            scaling >= TARGET_SCALING,
        )
    )
    return rows


def main() -> None:
    """Run on a throwaway PostgreSQL and print the table."""
    run_standalone(__doc__, run)


if __name__ == "__main__":
    main()
