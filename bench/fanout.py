"""Benchmark: the triage job's fan-out unit (jobs per dynamic output) against the physical limit.

N tickets go through the real `triage_job` (batch creation to batch DONE, logs written), on an embedded
PostgreSQL that also holds Dagster's storage, with the fake Ollama in a separate process answering after a
fixed latency L. With C concurrent LLM calls the limit is N x L / C seconds; the ratio is limit / wall.

    .venv/bin/python bench/fanout.py                  # N=1000, L=0.2 s, C=16, chunks 1000/500/250/125/50
    .venv/bin/python bench/fanout.py --n 200 --chunks 1 25 200
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster import DagsterInstance  # noqa: E402
from sqlalchemy import text  # noqa: E402

from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket  # noqa: E402
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID  # noqa: E402
from triage_pipeline.infrastructure.clock import SystemClock  # noqa: E402
from triage_pipeline.infrastructure.db.engine import make_engine  # noqa: E402
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory  # noqa: E402
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres, free_port  # noqa: E402
from triage_pipeline.infrastructure.migrations import upgrade_to_head  # noqa: E402
from triage_pipeline.infrastructure.url_parts import database_env  # noqa: E402


def start_fake_ollama(latency: float) -> tuple[subprocess.Popen[str], str]:
    """The fake Ollama in its own process, so its work does not share this process's GIL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_ollama", "--port", str(port), "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("FAKE_OLLAMA_URL="):
        raise RuntimeError(f"fake Ollama did not start: {line!r}")
    return process, line.strip().split("=", 1)[1]


def main() -> None:
    """Run each chunk size once and print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--chunks", type=int, nargs="+", default=[1000, 500, 250, 125, 50])
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    server = EmbeddedPostgres(data_dir=workdir / "pg", port=free_port(), fast_unsafe=True)
    server.start()
    fake, llm_url = start_fake_ollama(args.latency)
    try:
        app_url = server.ensure_database("triage")
        server.ensure_database("dagster")
        upgrade_to_head(app_url)
        os.environ.update(database_env(app_url, "dagster"))
        home = workdir / "dagster_home"
        home.mkdir()
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)

        from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
        from triage_pipeline.defs.triage.job import triage_job

        engine = make_engine(app_url)
        uow = SqlUnitOfWorkFactory(engine)
        services = TriageServices(
            database=DatabaseResource(url=app_url), llm=LlmResource(base_url=llm_url, model="fake")
        )
        limit = args.n * args.latency / args.concurrency
        print(f"N={args.n} L={args.latency}s C={args.concurrency}  limit N*L/C = {limit:.2f} s")
        print(f"{'jobs/chunk':>10} {'steps':>6} {'wall s':>8} {'limit s':>8} {'ratio':>6} {'done':>6}")
        with DagsterInstance.get() as instance:
            for chunk in args.chunks:
                with engine.begin() as conn:
                    conn.execute(
                        text(
                            "TRUNCATE triage_job_logs, triage_job_batch_items, triage_jobs, "
                            "triage_job_batches, tickets CASCADE"
                        )
                    )
                items = [
                    NewTicket(DEFAULT_OWNER_ID, f"B-{i}", f"Checkout broken {i}", "Pay button fails.")
                    for i in range(args.n)
                ]
                CreateTickets(uow, SystemClock()).execute(CreateTicketsCommand(items))
                config = {"jobs_per_chunk": chunk, "llm_concurrency": args.concurrency, "max_items": args.n}
                started = time.perf_counter()
                result = triage_job.execute_in_process(
                    run_config={"ops": {"plan_batch": {"config": config}, "triage_chunk": {"config": config}}},
                    resources={"services": services},
                    instance=instance,
                )
                wall = time.perf_counter() - started
                done = result.output_for_node("finish_batch")["DONE"]
                steps = -(-args.n // chunk)
                print(f"{chunk:>10} {steps:>6} {wall:>8.2f} {limit:>8.2f} {limit / wall:>6.0%} {done:>6}")
        engine.dispose()
    finally:
        fake.terminate()
        fake.wait()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
