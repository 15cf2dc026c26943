"""Benchmark 5: creating a batch of 1,000 with 100,000 eligible jobs in the table, in milliseconds per claim.

The claim is the real use case (CreateBatch: the batch row, one `UPDATE ... FROM (SELECT ... FOR UPDATE
SKIP LOCKED)` that takes the oldest eligible jobs, their 1,000 items, one transaction). Its limit is the
same claims on a table holding only 5,000 eligible jobs, measured in the same run: with the partial index
`ix_triage_jobs_eligible` (the claim's exact predicate, ordered by created_at) both read 1,000 index
entries, so the ratio should stay near 100% however large the table is. Successive claims are timed too,
because each one leaves 1,000 dead entries at the head of the index until VACUUM.

    .venv/bin/python bench/claim.py [--quick]
"""

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import Postgres, Row, fmt_ratio, psycopg_dsn, run_standalone, say

from triage_pipeline.domain.owner import DEFAULT_OWNER_ID

BATCH = 1000
LARGE = 100_000
SMALL = 5_000


def seed(dsn: str, eligible: int) -> None:
    """An empty table, then `eligible` PENDING jobs (and their tickets) with increasing created_at, by COPY."""
    import psycopg

    start = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "TRUNCATE triage_job_logs, triage_job_batch_items, triage_jobs, triage_job_batches, tickets CASCADE"
        )
        with conn.cursor() as cur:
            ids = [uuid4() for _ in range(eligible)]
            with cur.copy(
                "COPY tickets (id, owner_id, external_id, title, description, status, created_at, updated_at) "
                "FROM STDIN"
            ) as copy:
                for i, ticket_id in enumerate(ids):
                    at = start + timedelta(microseconds=i)
                    copy.write_row((ticket_id, DEFAULT_OWNER_ID, f"c-{i}", "Title", "Body", "PENDING", at, at))
            with cur.copy(
                "COPY triage_jobs (id, ticket_id, status, attempts, created_at, updated_at) FROM STDIN"
            ) as copy:
                for i, ticket_id in enumerate(ids):
                    at = start + timedelta(microseconds=i)
                    copy.write_row((uuid4(), ticket_id, "PENDING", 0, at, at))
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE triage_jobs")


def claims(url: str, count: int) -> list[float]:
    """Milliseconds of `count` successive claims of BATCH jobs through CreateBatch."""
    from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
    from triage_pipeline.domain.batch import BatchOrigin
    from triage_pipeline.infrastructure.clock import SystemClock
    from triage_pipeline.infrastructure.db.engine import make_engine
    from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

    engine = make_engine(url)
    use_case = CreateBatch(SqlUnitOfWorkFactory(engine), SystemClock())
    times: list[float] = []
    for _ in range(count):
        began = time.perf_counter()
        created = use_case.execute(CreateBatchCommand(max_items=BATCH, origin=BatchOrigin.API))
        times.append((time.perf_counter() - began) * 1000)
        if created is None or len(created.job_ids) != BATCH:
            raise RuntimeError("a claim took fewer jobs than expected")
    engine.dispose()
    return times


def plan(url: str) -> str:
    """The plan of the claim's SELECT (the predicate and order of SqlTriageJobRepository.claim_eligible)."""
    from sqlalchemy import select, text
    from sqlalchemy.dialects import postgresql

    from triage_pipeline.infrastructure.db.engine import make_engine
    from triage_pipeline.infrastructure.db.models import TriageJobRow
    from triage_pipeline.infrastructure.db.triage_job_repository import ELIGIBLE

    query = (
        select(TriageJobRow.id)
        .where(ELIGIBLE)
        .order_by(TriageJobRow.created_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[no-untyped-call]
    engine = make_engine(url)
    with engine.connect() as conn:
        lines = [row[0] for row in conn.execute(text(f"EXPLAIN {sql}"))]
    engine.dispose()
    scan = next((str(line).strip(" ->") for line in lines if "Scan" in line), str(lines[0]))
    return scan.split("  (")[0]


def run(pg: Postgres, quick: bool) -> list[Row]:
    """Benchmark 5 on `pg`; the rows of the table."""
    count = 5 if quick else 20
    url = pg.database("bench_claim")
    dsn = psycopg_dsn(url)
    say(f"benchmark 5: {SMALL:,} eligible jobs, claims of {BATCH:,}")
    seed(dsn, SMALL)
    claims(url, 1)  # warm-up (connections, statement cache)
    seed(dsn, SMALL)
    small = claims(url, SMALL // BATCH - 1)
    say(f"benchmark 5: {LARGE:,} eligible jobs, {count} successive claims of {BATCH:,}")
    seed(dsn, LARGE)
    scan = plan(url)
    large = claims(url, count)
    reference = median(small)
    typical = median(large)
    ratio = reference / typical
    return [
        Row(
            "5",
            f"batch creation: claim {BATCH:,} of {LARGE:,} eligible jobs",
            f"{typical:.1f} ms/claim (median of {count})",
            f"{reference:.1f} ms (median, {SMALL:,} eligible)",
            fmt_ratio(ratio),
            "size-independent (>= 80%)",
            ratio >= 0.8,
            (
                f"successive claims: first {large[0]:.1f} ms, last {large[-1]:.1f} ms, max {max(large):.1f} ms; "
                f"plan: {scan}"
            ),
        )
    ]


def main() -> None:
    """Run on a throwaway PostgreSQL and print the table."""
    run_standalone(__doc__, run)


if __name__ == "__main__":
    main()
