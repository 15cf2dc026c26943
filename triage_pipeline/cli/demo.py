"""`triage demo`: the shipped sample tickets, without labels, through the running API, end to end."""

import argparse
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from triage_pipeline.cli.output import print_table, progress_bar
from triage_pipeline.domain.evaluation import LabelledTicket
from triage_pipeline.infrastructure.admin_key import local_admin_key
from triage_pipeline.infrastructure.labelled_file import read_labelled, sample_path
from triage_pipeline.infrastructure.settings import Settings

FINAL = {"COMPLETED", "FAILED"}


class DemoError(RuntimeError):
    """The API refused or could not be reached."""


def _check(response: httpx.Response, expected: int) -> Any:
    if response.status_code != expected:
        body = response.text[:300]
        raise DemoError(f"{response.request.method} {response.request.url.path} -> {response.status_code}: {body}")
    return response.json()


def _tickets_of(client: httpx.Client, owner_id: str) -> list[dict[str, Any]]:
    tickets: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"owner_id": owner_id, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = _check(client.get("/tickets", params=params), 200)
        tickets += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return tickets


def _say_queue(client: httpx.Client, queued: dict[str, Any]) -> None:
    """Tell how much work of earlier batches runs before this one, so a long wait is not a silent one."""
    batch = queued.get("batch")
    if queued.get("status") != "QUEUED" or not batch:
        print(f"queued batch: {queued.get('status')} (no eligible job was waiting)")
        return
    progress = _check(client.get(f"/triage-jobs/batches/{batch['id']}"), 200)
    print(f"queued batch {batch['id']} of {batch['total_items']} jobs")
    if progress["queued_ahead"]:
        print(
            f"{progress['queued_ahead']:,} jobs of earlier batches are queued ahead of it: "
            "the progress bar starts moving once they are done"
        )


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Post, queue, follow with a progress bar, print the results."""
    base_url = args.api_url or f"http://{settings.api_host}:{settings.api_port}"
    api_key = args.api_key or local_admin_key(settings)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    items = read_labelled(sample_path(), args.limit)
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        try:
            client.get("/health/live").raise_for_status()
        except httpx.HTTPError as exc:
            raise DemoError(f"the API does not answer at {base_url} ({exc}); start it with `make run`") from None
        try:
            return _demo(client, items, args.timeout)
        except httpx.HTTPError as exc:
            # The API went away (or stalled) mid-demo: one line, as every other `triage` error.
            raise DemoError(f"the API at {base_url} stopped answering ({type(exc).__name__}: {exc})") from None


def _demo(client: httpx.Client, items: list[LabelledTicket], timeout: float) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    owner = _check(client.post("/owners", json={"name": f"demo {stamp}"}), 201)
    body = [
        {
            "title": t.title,
            "description": t.description,
            "external_id": f"demo-{stamp}-{t.external_id}",
            "owner_id": owner["id"],
        }
        for t in items
    ]
    results = _check(client.post("/tickets/batch", json=body), 207)["results"]
    created = Counter(r["status"] for r in results)
    print(f"posted {len(items)} sample tickets (labels withheld) as owner {owner['id']}: {dict(created)}")
    queued = _check(client.post("/triage-jobs/batch", json={}), 202)
    _say_queue(client, queued)
    deadline = time.monotonic() + timeout
    with progress_bar("triaging", len(items)) as bar:
        while True:
            tickets = _tickets_of(client, owner["id"])
            finished = sum(1 for t in tickets if t["triage_status"] in FINAL)
            bar.update(bar.task_ids[0], completed=finished)
            if finished >= len(items) or time.monotonic() > deadline:
                break
            time.sleep(2)
    details = [_check(client.get(f"/tickets/{t['id']}"), 200) for t in tickets]
    rows = [
        (
            d["external_id"].rsplit("-", 2)[-2] + "-" + d["external_id"].rsplit("-", 1)[-1],
            d["title"][:50],
            (d.get("triage") or {}).get("category"),
            (d.get("triage") or {}).get("priority"),
            (d.get("triage") or {}).get("confidence"),
            d["triage_status"],
        )
        for d in sorted(details, key=lambda d: d["external_id"])
    ]
    print_table("triage results", ["ticket", "title", "category", "priority", "confidence", "status"], rows)
    counts = Counter(d["triage_status"] for d in details)
    print_table("tickets by status", ["status", "count"], sorted(counts.items()))
    return 0 if counts.get("COMPLETED", 0) + counts.get("FAILED", 0) == len(items) else 1


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    demo = sub.add_parser("demo", help="post the sample tickets to the running API, triage them, print the results")
    demo.add_argument("--api-url", default=None, help="default: http://API_HOST:API_PORT")
    demo.add_argument(
        "--api-key",
        default=None,
        help="admin Bearer key (default: ADMIN_API_KEY, or the key `triage run` stored)",
    )
    demo.add_argument("--limit", type=int, default=None, help="only the first N sample tickets (default: all 160)")
    demo.add_argument("--timeout", type=float, default=3600, help="seconds to wait for triage to finish")
    demo.set_defaults(settings_handler=run_demo)
