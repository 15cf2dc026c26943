"""The figures a person reads in the Dagster UI about a set of triage attempts (pandas).

pandas is imported when a report is built (at the end of a run), not when the code location loads.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from dagster import MetadataValue

from triage_pipeline.application.log_queries import review_share_of
from triage_pipeline.domain.batch import TriageJobBatch
from triage_pipeline.domain.statuses import AttemptOutcome
from triage_pipeline.domain.triage_job_log import TriageJobLog

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_ROWS = 10


def logs_frame(logs: Sequence[TriageJobLog]) -> "pd.DataFrame":
    """One row per attempt with the columns the report uses."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "ticket_id": str(log.ticket_id),
                "attempt": log.attempt,
                "outcome": log.outcome.value,
                "category": (log.answer or {}).get("category"),
                "priority": (log.answer or {}).get("priority"),
                "confidence": (log.answer or {}).get("confidence"),
                "review": (log.confidence or {}).get("review_status"),
                "error_class": log.error_class,
                "latency_ms": log.latency_ms,
                "prompt_tokens": log.prompt_tokens,
                "completion_tokens": log.completion_tokens,
                "prompt_version": log.prompt_version,
                "model": log.model,
            }
            for log in logs
        ],
        columns=[
            "ticket_id",
            "attempt",
            "outcome",
            "category",
            "priority",
            "confidence",
            "review",
            "error_class",
            "latency_ms",
            "prompt_tokens",
            "completion_tokens",
            "prompt_version",
            "model",
        ],
    )


def _counts(column: "pd.Series[Any]") -> dict[str, int]:
    return {str(key): int(value) for key, value in column.dropna().value_counts().items()}


def report_metadata(batch: TriageJobBatch | None, logs: Sequence[TriageJobLog]) -> dict[str, Any]:
    """Counts by outcome and category, failure rate, review share, latency p50/p95, tokens, prompt and model,
    a preview."""
    frame = logs_frame(logs)
    total = len(frame)
    failed = int((frame["outcome"] == AttemptOutcome.FAILED.value).sum()) if total else 0
    review = review_share_of(logs)
    metadata: dict[str, Any] = {
        "batch_id": str(batch.id) if batch else "none",
        "batch_status": batch.status.value if batch else "none",
        "batch_finished_at": batch.finished_at.astimezone(UTC).isoformat() if batch and batch.finished_at else "none",
        "attempts": total,
        "succeeded": total - failed,
        "failed": failed,
        "failure_rate": MetadataValue.float(round(failed / total, 4) if total else 0.0),
        # Of the stored answers (SUCCEEDED attempts): how many wait for a person (below the prompt's threshold).
        "review_share": MetadataValue.float(round(review.share, 4)),
        "needs_review": review.needs_review,
        "auto_applied": review.auto_applied,
        "by_outcome": MetadataValue.json(_counts(frame["outcome"])),
        "by_category": MetadataValue.json(_counts(frame["category"])),
        "by_error_class": MetadataValue.json(_counts(frame["error_class"])),
        "latency_p50_ms": MetadataValue.float(float(frame["latency_ms"].quantile(0.5)) if total else 0.0),
        "latency_p95_ms": MetadataValue.float(float(frame["latency_ms"].quantile(0.95)) if total else 0.0),
        "prompt_tokens": int(frame["prompt_tokens"].fillna(0).sum()),
        "completion_tokens": int(frame["completion_tokens"].fillna(0).sum()),
        "prompt_versions": MetadataValue.json(sorted(int(v) for v in frame["prompt_version"].dropna().unique())),
        "models": MetadataValue.json(sorted(str(m) for m in frame["model"].unique() if m)),
    }
    preview = frame[
        ["ticket_id", "outcome", "category", "priority", "confidence", "review", "error_class", "latency_ms"]
    ]
    metadata["preview"] = MetadataValue.md(
        preview.head(PREVIEW_ROWS).to_markdown(index=False) if total else "_no attempts_"
    )
    return metadata


REVIEW_TABLE_HEADER = ("batch", "finished (UTC)", "stored answers", "needs review", "review share", "failure rate")


def review_share_rows(reports: Sequence[Mapping[str, Any]], limit: int) -> list[tuple[str, ...]]:
    """One row per batch, from batch reports (`report_metadata`, plain or as recorded), newest first.

    A batch reported twice (by its run, then by a materialization of the asset) is shown once; a report
    recorded before review shares existed shows "-" for them.
    """
    rows: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for report in reports:
        batch_id = str(_plain(report.get("batch_id", "none")))
        if batch_id == "none" or batch_id in seen:
            continue
        seen.add(batch_id)
        share = _plain(report.get("review_share"))
        needs_review = _plain(report.get("needs_review"))
        failure_rate = _plain(report.get("failure_rate"))
        finished = str(_plain(report.get("batch_finished_at", "-")))
        rows.append(
            (
                batch_id[:8],
                finished[:16].replace("T", " ") if finished != "none" else "-",
                str(_plain(report.get("succeeded", "-"))),
                "-" if needs_review is None else str(needs_review),
                "-" if share is None else f"{float(share):.1%}",
                "-" if failure_rate is None else f"{float(failure_rate):.1%}",
            )
        )
        if len(rows) == limit:
            break
    return rows


def review_share_table(rows: Sequence[Sequence[str]]) -> str:
    """The rows of `review_share_rows` as a markdown table."""
    if not rows:
        return "_no finished batch_"
    lines = [REVIEW_TABLE_HEADER, ("---",) * len(REVIEW_TABLE_HEADER), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _plain(value: Any) -> Any:
    """The value of a recorded metadata entry, or the value itself."""
    return value.value if isinstance(value, MetadataValue) else value
