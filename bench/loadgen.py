"""A load generator in its own process, so the client never shares the server's GIL.

    python bench/loadgen.py single --url http://127.0.0.1:8000/tickets --token T --concurrency 32 --duration 10
    python bench/loadgen.py bulk --url http://127.0.0.1:8000/tickets/batch --token T --bodies bodies.json

`single`: closed loop, one keep-alive connection per thread, one new ticket per request (a unique
external_id). `bulk`: POST each pre-encoded body of the file (a JSON list of arrays) once. Both print
one JSON line: requests, non-2xx answers, answers by status code, seconds, and latency percentiles in
milliseconds.
"""

import argparse
import http.client
import json
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from _support import percentile


def _connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60), parts.path


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {}
    return {
        "p50_ms": percentile(ordered, 50) * 1000,
        "p90_ms": percentile(ordered, 90) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def single(url: str, token: str, concurrency: int, duration: float, prefix: str) -> dict[str, Any]:
    """`concurrency` threads POST one ticket after another for `duration` seconds."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: list[Counter[int]] = [Counter() for _ in range(concurrency)]
    start = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(n: int) -> None:
        conn, path = _connection(url)
        start.wait()
        count = 0
        while time.perf_counter() < deadline[0]:
            count += 1
            body = json.dumps(
                {
                    "external_id": f"{prefix}-{n}-{count}",
                    "title": "Checkout fails with error 500",
                    "description": "Since this morning every payment attempt ends with an error page.",
                }
            )
            began = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies[n].append(time.perf_counter() - began)
            statuses[n][response.status] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [x for per in latencies for x in per]
    by_status: Counter[int] = sum(statuses, Counter())
    non_2xx = sum(count for status, count in by_status.items() if not 200 <= status < 300)
    return {
        "requests": len(every),
        "non_2xx": non_2xx,
        "statuses": {str(status): count for status, count in sorted(by_status.items())},
        "seconds": elapsed,
        **_percentiles(every),
    }


def bulk(url: str, token: str, bodies_file: str, concurrency: int) -> dict[str, Any]:
    """POST every body of the file once, `concurrency` at a time; count the CREATED items."""
    with open(bodies_file, "rb") as handle:
        bodies = [json.dumps(body).encode() for body in json.load(handle)]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    lock = threading.Lock()
    latencies: list[float] = []
    created = [0]
    failures = [0]
    queue = list(reversed(bodies))

    def worker() -> None:
        conn, path = _connection(url)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            began = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            took = time.perf_counter() - began
            ok = 200 <= response.status < 300
            count = sum(1 for r in json.loads(payload)["results"] if r["status"] == "CREATED") if ok else 0
            with lock:
                latencies.append(took)
                created[0] += count
                failures[0] += 0 if ok else 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "non_2xx": failures[0],
        "created": created[0],
        "seconds": elapsed,
        **_percentiles(latencies),
    }


def main() -> None:
    """Run one mode and print its JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["single", "bulk"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--prefix", default="lg")
    parser.add_argument("--bodies")
    args = parser.parse_args()
    if args.mode == "single":
        result = single(args.url, args.token, args.concurrency, args.duration, args.prefix)
    else:
        result = bulk(args.url, args.token, args.bodies, args.concurrency)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
