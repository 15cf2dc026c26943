"""`triage run`'s code server: it waits for the definitions to load, and a broken code location is one clear error."""

import subprocess
import sys
from pathlib import Path

import pytest

from triage_pipeline.cli.dagster_processes import (
    DEFINITIONS_MODULE,
    CodeServerError,
    code_server_args,
    wait_for_code_server,
)
from triage_pipeline.infrastructure.embedded_postgres import free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_the_code_server_is_ready_once_it_serves_the_definitions() -> None:
    port = free_port()
    process = _start(code_server_args(BIN, "127.0.0.1", port))
    try:
        wait_for_code_server("127.0.0.1", port, process, timeout=90)
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_code_location_that_cannot_load_is_reported_in_one_error() -> None:
    port = free_port()
    args = [
        a if a != DEFINITIONS_MODULE else "triage_pipeline.no_such_module"
        for a in code_server_args(BIN, "127.0.0.1", port)
    ]
    process = _start(args)
    try:
        with pytest.raises(CodeServerError, match=r"code (server exited|location failed to load)"):
            wait_for_code_server("127.0.0.1", port, process, timeout=90)
    finally:
        process.kill()
        process.wait(timeout=30)
