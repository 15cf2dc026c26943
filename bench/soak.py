"""Soak: post tickets and run batches for a bounded time on loopback, then prove nothing was lost.

The API runs under a real uvicorn (auth on, owner keys), the LLM is the fake Ollama with latency and
injected faults, the database is PostgreSQL (an embedded throwaway one unless --database-url). Poster
threads send single and bulk intakes (some re-sending an external id, which must answer 409 / DUPLICATE)
and reads; a batcher queues batches through the API and processes them as the pipeline does, with a
recovery pass now and then. When the time is up, the backlog is drained and every accepted ticket is
checked in the database.

    .venv/bin/python bench/soak.py                          # 60 s, 8 posters, 3 owners
    .venv/bin/python bench/soak.py --duration 300 --posters 16 --llm-faults 3 --json

Reports: requests by endpoint and status, errors (5xx and unexpected statuses), lost tickets (accepted but
absent, or never finished: must be 0), jobs DONE more than once (must be 0), tickets FAILED after 3
attempts, and latency p50/p95/p99 per endpoint. Exits 1 when anything was lost, doubled or a 5xx seen.
"""

import argparse
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from _support import percentile  # noqa: E402
from sqlalchemy import text  # noqa: E402

from tests.support.fake_ollama import Behaviour, FakeOllama  # noqa: E402
from tests.support.live_server import live_api  # noqa: E402
from triage_pipeline.application.batches import FinishBatch, FinishBatchCommand, ListBatchItems  # noqa: E402
from triage_pipeline.application.recovery import RecoverCommand, RecoverStuckWork  # noqa: E402
from triage_pipeline.application.triage import TriageJobs, TriageJobsCommand  # noqa: E402
from triage_pipeline.bootstrap import Container  # noqa: E402
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres, free_port  # noqa: E402
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient  # noqa: E402
from triage_pipeline.infrastructure.logging import configure_logging  # noqa: E402
from triage_pipeline.infrastructure.migrations import upgrade_to_head  # noqa: E402
from triage_pipeline.infrastructure.settings import Settings  # noqa: E402

EXPECTED = {
    "POST /tickets": {201, 409},
    "POST /tickets/batch": {207},
    "GET /tickets/{id}": {200},
    "POST /triage-jobs/batch": {202},
}


@dataclass
class Stats:
    """What every thread observed; guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    accepted: dict[tuple[str, str], str] = field(default_factory=dict)  # (owner, external_id) -> ticket id
    duplicate_mismatch: int = 0
    batches: int = 0
    recovered_jobs: int = 0

    def record(self, endpoint: str, started: float, response: httpx.Response | None, error: str | None) -> None:
        with self.lock:
            if response is None:
                self.transport_errors[f"{endpoint}: {error}"] += 1
                return
            self.latencies[endpoint].append(time.perf_counter() - started)
            self.statuses[(endpoint, response.status_code)] += 1


def timed(stats: Stats, client: httpx.Client, endpoint: str, method: str, url: str, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        stats.record(endpoint, started, None, type(exc).__name__)
        return None
    stats.record(endpoint, started, response, None)
    return response


def poster(
    stats: Stats,
    base_url: str,
    owners: list[tuple[str, str]],
    stop: threading.Event,
    seed: int,
    dup_rate: float,
) -> None:
    """Post tickets (single and bulk, some duplicates) and read some back until told to stop."""
    rng = random.Random(seed)
    sent: dict[str, list[str]] = defaultdict(list)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while not stop.is_set():
            owner_id, key = rng.choice(owners)
            headers = {"Authorization": f"Bearer {key}"}

            def external_id(owner_id: str = owner_id) -> str:
                if sent[owner_id] and rng.random() < dup_rate:
                    return rng.choice(sent[owner_id])
                value = f"SOAK-{seed}-{secrets.token_hex(6)}"
                sent[owner_id].append(value)
                return value

            roll = rng.random()
            if roll < 0.75:
                ext = external_id()
                body = {"title": f"Checkout fails {ext}", "description": "The pay button errors.", "external_id": ext}
                response = timed(stats, client, "POST /tickets", "POST", "/tickets", json=body, headers=headers)
                if response is not None:
                    note(stats, owner_id, ext, response)
            elif roll < 0.9:
                items = []
                for _ in range(5):
                    ext = external_id()
                    items.append({"title": f"Login loop {ext}", "description": "It logs me out.", "external_id": ext})
                response = timed(
                    stats, client, "POST /tickets/batch", "POST", "/tickets/batch", json=items, headers=headers
                )
                if response is not None and response.status_code == 207:
                    for result in response.json()["results"]:
                        key_ = (owner_id, result["external_id"])
                        if result["status"] == "CREATED":
                            with stats.lock:
                                stats.accepted[key_] = result["ticket_id"]
            else:
                with stats.lock:
                    known = [t for (o, _), t in stats.accepted.items() if o == owner_id]
                if known:
                    ticket_id = rng.choice(known)
                    timed(stats, client, "GET /tickets/{id}", "GET", f"/tickets/{ticket_id}", headers=headers)


def note(stats: Stats, owner_id: str, external_id: str, response: httpx.Response) -> None:
    """Remember an accepted ticket; check that a 409 names the ticket accepted before."""
    with stats.lock:
        if response.status_code == 201:
            stats.accepted[(owner_id, external_id)] = response.json()["id"]
        elif response.status_code == 409:
            known = stats.accepted.get((owner_id, external_id))
            if known is not None and response.json().get("existing_id") != known:
                stats.duplicate_mismatch += 1


def run_queued(container: Container, batch_id: str, concurrency: int) -> None:
    """What the queued-batches sensor and the triage job do with a batch."""
    job_ids = [item.job_id for item in container.use(ListBatchItems).execute(UUID(batch_id))]
    container.use(TriageJobs).execute(TriageJobsCommand(job_ids, UUID(batch_id), concurrency=concurrency))
    container.use(FinishBatch).execute(FinishBatchCommand(UUID(batch_id)))


def batcher(
    stats: Stats,
    base_url: str,
    admin_key: str,
    container: Container,
    fake: FakeOllama,
    stop: threading.Event,
    args: argparse.Namespace,
) -> None:
    """Queue a batch through the API, process it, inject LLM faults, recover now and then."""
    rounds = 0
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        while not stop.is_set():
            rounds += 1
            if args.llm_faults:
                fake.fail_first(args.llm_faults, random.choice([Behaviour.HTTP_500, Behaviour.DROP_CONNECTION]))
            response = timed(
                stats, client, "POST /triage-jobs/batch", "POST", "/triage-jobs/batch", json={"max_items": 500}
            )
            if response is not None and response.status_code == 202 and response.json()["status"] == "QUEUED":
                run_queued(container, response.json()["batch"]["id"], args.concurrency)
                with stats.lock:
                    stats.batches += 1
            if rounds % 10 == 0:
                report = container.use(RecoverStuckWork).execute(RecoverCommand(lease=timedelta(seconds=args.lease)))
                with stats.lock:
                    stats.recovered_jobs += report.jobs_recovered
            stop.wait(args.batch_interval)


def drain(container: Container, base_url: str, admin_key: str, stats: Stats, args: argparse.Namespace) -> None:
    """Run batches until no job is eligible (FAILED jobs with attempts left included)."""
    deadline = time.monotonic() + args.drain_timeout
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        while time.monotonic() < deadline:
            response = client.post("/triage-jobs/batch", json={"max_items": 1000})
            if response.json()["status"] == "EMPTY":
                return
            run_queued(container, response.json()["batch"]["id"], args.concurrency)
            with stats.lock:
                stats.batches += 1


def reconcile(container: Container, stats: Stats) -> dict[str, Any]:
    """Check every accepted ticket in the database."""
    with container.uow() as uow:
        rows = {
            str(r.id): (r.status, r.attempts, r.succeeded)
            for r in uow.session.execute(
                text(
                    """SELECT t.id, t.status, max(j.attempts) AS attempts,
                              count(l.id) FILTER (WHERE l.outcome = 'SUCCEEDED') AS succeeded
                         FROM tickets t JOIN triage_jobs j ON j.ticket_id = t.id
                         LEFT JOIN triage_job_logs l ON l.job_id = j.id
                        GROUP BY t.id, t.status"""
                )
            )
        }
        running = uow.session.execute(
            text(
                "SELECT (SELECT count(*) FROM triage_jobs WHERE status = 'RUNNING'),"
                " (SELECT count(*) FROM triage_job_batches WHERE status = 'RUNNING')"
            )
        ).one()
    accepted = set(stats.accepted.values())
    missing = [t for t in accepted if t not in rows]
    unfinished = [
        t
        for t in accepted
        if t in rows and not (rows[t][0] == "COMPLETED" or (rows[t][0] == "FAILED" and rows[t][1] >= 3))
    ]
    doubled = [t for t, (_, _, succeeded) in rows.items() if succeeded > 1]
    return {
        "accepted_tickets": len(accepted),
        "tickets_in_database": len(rows),
        "lost_tickets": len(missing) + len(unfinished),
        "missing_tickets": len(missing),
        "unfinished_tickets": len(unfinished),
        "jobs_done_twice": len(doubled),
        "completed": sum(1 for t in accepted if rows.get(t, ("",))[0] == "COMPLETED"),
        "failed_after_3_attempts": sum(1 for t in accepted if rows.get(t, ("",))[0] == "FAILED"),
        "jobs_still_running": running[0],
        "batches_still_running": running[1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--posters", type=int, default=8, help="concurrent posting threads")
    parser.add_argument("--owners", type=int, default=3)
    parser.add_argument("--dup-rate", type=float, default=0.15, help="share of intakes re-sending an external id")
    parser.add_argument("--latency", type=float, default=0.05, help="fake LLM latency, seconds")
    parser.add_argument("--jitter", type=float, default=0.05, help="fake LLM extra random latency, seconds")
    parser.add_argument("--llm-faults", type=int, default=2, help="LLM calls failed at the start of each batch")
    parser.add_argument("--concurrency", type=int, default=16, help="LLM calls in flight per batch")
    parser.add_argument("--batch-interval", type=float, default=1.0)
    parser.add_argument("--lease", type=float, default=60.0, help="recovery lease, seconds")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--database-url", default=None, help="a migrated database (default: a throwaway one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--log-level", default="ERROR", help="the service's log level during the soak")
    args = parser.parse_args()
    configure_logging(args.log_level)

    server: EmbeddedPostgres | None = None
    if args.database_url is None:
        server = EmbeddedPostgres(data_dir=Path(tempfile.mkdtemp(prefix="soak-")), port=free_port(), fast_unsafe=True)
        server.start()
        database_url = server.ensure_database("soak")
    else:
        database_url = args.database_url
    upgrade_to_head(database_url)
    admin_key = secrets.token_urlsafe(32)
    stats = Stats()
    try:
        with FakeOllama(latency_s=args.latency, latency_jitter_s=args.jitter, seed=1) as fake:
            llm = OllamaClient(fake.url, "fake-model", read_timeout_s=10.0, max_connections=args.concurrency)
            container = Container(Settings(admin_api_key=admin_key), database_url=database_url, llm=llm)
            with live_api(container) as base_url:
                with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
                    owners = []
                    for n in range(args.owners):
                        created = admin.post("/owners", json={"name": f"Soak tenant {n}"}).json()
                        owners.append((created["id"], created["api_key"]))
                stop = threading.Event()
                threads = [
                    threading.Thread(target=poster, args=(stats, base_url, owners, stop, seed, args.dup_rate))
                    for seed in range(args.posters)
                ]
                threads.append(
                    threading.Thread(target=batcher, args=(stats, base_url, admin_key, container, fake, stop, args))
                )
                started = time.monotonic()
                for thread in threads:
                    thread.start()
                stop.wait(args.duration)
                stop.set()
                for thread in threads:
                    thread.join(timeout=60)
                load_s = time.monotonic() - started
                fake.fail_first(0)
                drain(container, base_url, admin_key, stats, args)
            result = reconcile(container, stats)
            container.close()
    finally:
        if server is not None:
            server.stop()

    endpoints = {}
    for endpoint, values in sorted(stats.latencies.items()):
        ms = sorted(v * 1000 for v in values)
        endpoints[endpoint] = {
            "requests": len(ms),
            "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "statuses": {str(s): c for (e, s), c in sorted(stats.statuses.items()) if e == endpoint},
        }
    server_errors = sum(c for (_, s), c in stats.statuses.items() if s >= 500)
    unexpected = sum(c for (e, s), c in stats.statuses.items() if s < 500 and s not in EXPECTED.get(e, {s}))
    report = {
        "load_seconds": round(load_s, 1),
        "requests": sum(len(v) for v in stats.latencies.values()),
        "requests_per_second": round(sum(len(v) for v in stats.latencies.values()) / load_s, 1),
        "server_errors_5xx": server_errors,
        "unexpected_statuses": unexpected,
        "transport_errors": dict(stats.transport_errors),
        "duplicate_409_naming_another_ticket": stats.duplicate_mismatch,
        "batches": stats.batches,
        "jobs_recovered_from_leases": stats.recovered_jobs,
        **result,
        "endpoints": endpoints,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            if key != "endpoints":
                print(f"{key:40} {value}")
        print(f"\n{'endpoint':28} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses")
        for endpoint, figures in endpoints.items():
            print(
                f"{endpoint:28} {figures['requests']:>9} {figures['p50_ms']:>8} {figures['p95_ms']:>8}"
                f" {figures['p99_ms']:>8}  {figures['statuses']}"
            )
    failed = (
        report["lost_tickets"]
        or report["jobs_done_twice"]
        or server_errors
        or unexpected
        or stats.transport_errors
        or stats.duplicate_mismatch
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
