"""The promotion gate: a prompt version may replace the active one only if it is not worse on the labelled
files both were evaluated on alike: the latest evaluation of each on the same file (sha256), the same
number of tickets (a `--limit 40` run is not compared with a full one) and the same model."""

from collections.abc import Sequence
from typing import Any

from triage_pipeline.domain.evaluation import EvaluationRun

GATED_FIGURES = ("category_accuracy", "priority_accuracy")
"""Higher is better for each; a candidate lower than the active version on any of them on a shared file is
refused."""


def _alike(run: EvaluationRun) -> tuple[str, str, object]:
    """What two runs must share to be compared: the file, the model and how many tickets were evaluated."""
    return run.dataset_sha256, run.model, dict(run.report).get("items")


def figure(report: Any, name: str) -> float | None:
    """An accuracy figure (`category_accuracy`, `priority_accuracy`) of a stored report, None if absent."""
    fields = report.get("fields", {}) if isinstance(report, dict) else {}
    field_name = name.removesuffix("_accuracy")
    value = fields.get(field_name, {}).get("accuracy")
    return float(value) if isinstance(value, int | float) else None


def compare(candidate: Sequence[EvaluationRun], active: Sequence[EvaluationRun]) -> list[dict[str, Any]]:
    """One comparison per gated figure per file both versions were evaluated on (runs newest first)."""
    latest_candidate: dict[tuple[str, str, object], EvaluationRun] = {}
    for run in candidate:
        latest_candidate.setdefault(_alike(run), run)
    latest_active: dict[tuple[str, str, object], EvaluationRun] = {}
    for run in active:
        latest_active.setdefault(_alike(run), run)
    comparisons = []
    for key, mine in latest_candidate.items():
        sha = key[0]
        theirs = latest_active.get(key)
        if theirs is None:
            continue
        for name in GATED_FIGURES:
            a, b = figure(dict(mine.report), name), figure(dict(theirs.report), name)
            if a is None or b is None:
                continue
            comparisons.append(
                {
                    "dataset": mine.dataset,
                    "dataset_sha256": sha,
                    "model": mine.model,
                    "tickets": dict(mine.report).get("items"),
                    "figure": name,
                    "candidate": a,
                    "active": b,
                    "worse": a < b,
                    "candidate_run": str(mine.id),
                    "active_run": str(theirs.id),
                }
            )
    return comparisons
