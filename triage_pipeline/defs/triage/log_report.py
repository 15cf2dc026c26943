"""The figures a person reads in the Dagster UI about a set of triage attempts (pandas).

pandas is imported when a report is built (at the end of a run), not when the code location loads.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagster import MetadataValue

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
    """Counts by outcome and category, failure rate, latency p50/p95, tokens, prompt and model, a preview."""
    frame = logs_frame(logs)
    total = len(frame)
    failed = int((frame["outcome"] == AttemptOutcome.FAILED.value).sum()) if total else 0
    metadata: dict[str, Any] = {
        "batch_id": str(batch.id) if batch else "none",
        "batch_status": batch.status.value if batch else "none",
        "attempts": total,
        "succeeded": total - failed,
        "failed": failed,
        "failure_rate": MetadataValue.float(round(failed / total, 4) if total else 0.0),
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
    preview = frame[["ticket_id", "outcome", "category", "priority", "confidence", "error_class", "latency_ms"]]
    metadata["preview"] = MetadataValue.md(
        preview.head(PREVIEW_ROWS).to_markdown(index=False) if total else "_no attempts_"
    )
    return metadata
