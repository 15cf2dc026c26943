"""The soak script runs end to end and reports no lost ticket (a smoke run; the soak itself is not a test)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_short_soak_loses_no_ticket_and_sees_no_5xx(database_url: str, clean_db: object) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/soak.py",
            "--duration",
            "3",
            "--posters",
            "4",
            "--database-url",
            database_url,
            "--json",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["lost_tickets"] == 0 and report["jobs_done_twice"] == 0 and report["server_errors_5xx"] == 0
    assert (
        report["accepted_tickets"] > 0
        and report["completed"] + report["failed_after_3_attempts"] == report["accepted_tickets"]
    )
    assert report["endpoints"]["POST /tickets"]["p99_ms"] > 0
