"""`make bench`: every benchmark in one run, each figure next to its limit measured in the same run.

    .venv/bin/python bench/run_all.py            # minutes on a 2-core machine
    .venv/bin/python bench/run_all.py --quick    # the short version
    .venv/bin/python bench/run_all.py --only 1 5 --output results.md

Benchmarks (one module each, each runnable alone):
  3, 4  bench/intake.py        bulk and single intake over real HTTP, against COPY and a bare endpoint
  5     bench/claim.py         batch creation with 100,000 eligible jobs, against a 5,000-job table
  1,2,6,7 bench/triage_stack.py  triage throughput, orchestration and fixed cost on the real stack, its
                               memory, and its CPU when idle
  8     bench/startup.py       importing the code location in a new process (run workers, code server, CLI)
  9     bench/retrieval.py     few-shot retrieval: the nearest examples of a ticket among 100,000
  10    bench/webhooks.py      webhooks on the real stack: a ticket's COMPLETED -> the receiver's 2xx, delivered
                               by the `webhook_deliveries` sensor
  11    bench/scale_out.py     scale-out: one batch on two Celery workers over one and two LLM hosts

They share one throwaway PostgreSQL 17 with the settings `make run` uses (fsync on), a database each.
Every stack runs with a WEBHOOK_SECRETS_KEY, as `triage run` gives it, so its webhook deliverer is on (the
idle CPU of benchmark 7 includes its ticks).
The table goes to stdout (and `--output`), progress to stderr. Nothing here is a timed test: a missed
target shows as NO in the `met` column. But every benchmark checks its own answers (status codes, rows
stored, jobs finished): an unexpected error stops the run with one line saying what, and exit code 1.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import claim
import intake
import retrieval
import scale_out
import startup
import triage_stack
import webhooks
from _support import BenchmarkFailure, NeighbourMeter, Row, machine, postgres, print_table, say

ORDER = {str(n): n for n in range(1, 12)}


def main() -> None:
    """Run the chosen benchmarks on one PostgreSQL and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller runs (about a third of the time)")
    parser.add_argument("--only", nargs="+", choices=sorted(ORDER), help="only these benchmarks")
    parser.add_argument("--output", type=Path, help="also write the table (Markdown) to this file")
    parser.add_argument("--fast-unsafe", action="store_true", help="PostgreSQL with fsync off (not like make run)")
    parser.add_argument("--profile", type=Path, help="py-spy the run workers of benchmarks 1-2 into this directory")
    args = parser.parse_args()
    chosen = set(args.only or ORDER)
    if not os.environ.get("WEBHOOK_SECRETS_KEY"):
        from cryptography.fernet import Fernet

        os.environ["WEBHOOK_SECRETS_KEY"] = Fernet.generate_key().decode()

    began = time.monotonic()
    rows: list[Row] = []
    try:
        with postgres(fast_unsafe=args.fast_unsafe) as pg:
            meter = NeighbourMeter(pg.pids).start()
            if "8" in chosen:
                rows += startup.run(pg, args.quick)
            if chosen & {"3", "4"}:
                rows += intake.run(pg, args.quick)
            if "5" in chosen:
                rows += claim.run(pg, args.quick)
            if "9" in chosen:
                rows += retrieval.run(pg, args.quick)
            if chosen & {"1", "2", "6", "7"}:
                rows += triage_stack.run(pg, args.quick, args.profile)
            if "10" in chosen:
                rows += webhooks.run(pg, args.quick)
            if "11" in chosen:
                rows += scale_out.run(pg, args.quick)
            cpu = meter.stop()
            version = pg.version()
    except BenchmarkFailure as exc:
        say(f"FAILED: {exc}")
        sys.exit(1)
    rows = sorted((r for r in rows if r.bench in chosen), key=lambda r: ORDER[r.bench])
    elapsed = time.monotonic() - began

    host = machine()
    durability = "fsync off" if args.fast_unsafe else "fsync on, as make run"
    header = [
        f"machine: {host['cpu']}, {host['cores']} cores, {host['memory']}, Linux {host['kernel']}, "
        f"Python {host['python']}, PostgreSQL {version} ({durability})",
        f"run: {'quick' if args.quick else 'full'}, {elapsed / 60:.1f} min; {cpu}",
    ]
    for out in [sys.stdout, *([args.output.open("w")] if args.output else [])]:
        for line in header:
            print(line, file=out)
        print(file=out)
        print_table(rows, out)
        if out is not sys.stdout:
            out.close()
    missed = [r for r in rows if r.met is False]
    say(f"done in {elapsed / 60:.1f} min; {len(missed)} target(s) missed")


if __name__ == "__main__":
    main()
