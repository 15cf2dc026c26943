"""Benchmark 8: how long a new process takes to load the code, as a run worker, a code server or the CLI does.

Every process that loads the Dagster code location (each run worker, the code server, each CLI call,
each test process) imports `triage_pipeline.definitions`. These machines set PYTHONDONTWRITEBYTECODE=1
(as many container images do), so nothing is cached at run time: the bytecode must come from the install
(`uv pip install --compile-bytecode` in the Makefile, `UV_COMPILE_BYTECODE` in the image). Each figure is
the median of fresh processes, with PYTHONDONTWRITEBYTECODE=1 set, next to a bare `python -c pass`.

    .venv/bin/python bench/startup.py [--quick]
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import ROOT, Postgres, Row, require, run_standalone, say

IMPORT_TARGET_S = 3.0
HEAVY = ("pandas", "matplotlib", "numpy")
PROBE = f"import json, sys, triage_pipeline.definitions; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"


def _timed(args: list[str], runs: int) -> tuple[float, str]:
    """Median wall seconds of `runs` fresh processes, and the last one's stdout."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    times: list[float] = []
    out = ""
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - began)
        require(done.returncode == 0, f"{' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
        out = done.stdout
    return median(times), out


def run(pg: Postgres | None, quick: bool) -> list[Row]:
    """The rows of benchmark 8 (needs no database)."""
    runs = 3 if quick else 7
    say(f"benchmark 8: {runs} fresh imports of the code location, PYTHONDONTWRITEBYTECODE=1")
    bare, _ = _timed([sys.executable, "-c", "pass"], runs)
    definitions, loaded = _timed([sys.executable, "-c", PROBE], runs)
    cli, _ = _timed([str(Path(sys.executable).parent / "triage"), "--help"], runs)
    heavy = json.loads(loaded.strip().splitlines()[-1])
    return [
        Row(
            "8",
            "start-up: import triage_pipeline.definitions in a new process (median)",
            f"{definitions:.2f} s",
            f"{bare:.2f} s (python -c pass)",
            "-",
            f"<= {IMPORT_TARGET_S:.0f} s",
            definitions <= IMPORT_TARGET_S,
            (
                f"median of {runs}; heavy libraries loaded by the import: {', '.join(heavy) or 'none'}; "
                f"`triage --help` takes {cli:.2f} s"
            ),
        )
    ]


def main() -> None:
    """Run alone and print the table."""
    run_standalone(__doc__, run)


if __name__ == "__main__":
    main()
