"""The promotion gate: a prompt version may replace the active one only if it is not worse on the labelled
files both were evaluated on (their latest evaluation on each file, matched by the file's sha256)."""

from collections.abc import Sequence
from typing import Any

from triage_pipeline.domain.evaluation import EvaluationRun

GATED_FIGURES = ("category_accuracy", "priority_accuracy")
"""Higher is better for each; a candidate lower than the active version on any of them on a shared file is
refused."""


def figure(report: Any, name: str) -> float | None:
    fields = report.get("fields", {}) if isinstance(report, dict) else {}
    field_name = name.removesuffix("_accuracy")
    value = fields.get(field_name, {}).get("accuracy")
    return float(value) if isinstance(value, int | float) else None


def compare(candidate: Sequence[EvaluationRun], active: Sequence[EvaluationRun]) -> list[dict[str, Any]]:
    """One comparison per gated figure per file both versions were evaluated on (runs newest first)."""
    latest_candidate: dict[str, EvaluationRun] = {}
    for run in candidate:
        latest_candidate.setdefault(run.dataset_sha256, run)
    latest_active: dict[str, EvaluationRun] = {}
    for run in active:
        latest_active.setdefault(run.dataset_sha256, run)
    comparisons = []
    for sha, mine in latest_candidate.items():
        theirs = latest_active.get(sha)
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
                    "figure": name,
                    "candidate": a,
                    "active": b,
                    "worse": a < b,
                    "candidate_run": str(mine.id),
                    "active_run": str(theirs.id),
                }
            )
    return comparisons
