"""The `prompt_evaluation` asset: the labelled-set evaluation of prompt versions, with the plots shown in the UI."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
    in_process_executor,
)
from pydantic import Field

from triage_pipeline.application.evaluation import (
    EvaluateCommand,
    EvaluatePrompts,
    VersionResult,
    comparison_rows,
    sweep_rows,
)
from triage_pipeline.defs.quality.evaluation_plots import confusion_markdown, reliability_markdown
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.infrastructure.labelled_file import read_labelled, sample_path, sha256_of


class EvaluationConfig(Config):
    """What to evaluate."""

    file: str = Field(default="", description="Labelled JSONL/CSV; empty: the shipped 160-ticket sample.")
    versions: list[int] = Field(default_factory=list, description="Prompt versions; empty: the active one.")
    limit: int = Field(default=0, ge=0, description="Only the first N tickets (0: all).")
    concurrency: int = Field(default=4, ge=1, le=64)
    target_precision: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="Precision of auto-applied answers the reported lowest review threshold must reach.",
    )


@asset(
    name="prompt_evaluation",
    group_name="quality",
    description=(
        "Per-field accuracy, macro-F1, confusion matrices, calibration of the confidence (ECE, reliability "
        "diagram, threshold sweep), the floors, invalid share, latency and tokens per prompt version."
    ),
)
def prompt_evaluation(
    context: AssetExecutionContext, config: EvaluationConfig, services: TriageServices
) -> MaterializeResult[None]:
    """Evaluate, store the runs, and attach the figures, tables and plots of every version."""
    path = Path(config.file) if config.file else sample_path()
    items = read_labelled(path, config.limit or None)
    results = services.use(EvaluatePrompts).execute(
        EvaluateCommand(
            items=items,
            dataset=path.name,
            dataset_sha256=sha256_of(path),
            versions=config.versions,
            concurrency=config.concurrency,
            target_precision=config.target_precision,
            on_progress=lambda done, total: context.log.info(f"evaluated {done}/{total}") if done % 20 == 0 else None,
        )
    )
    metadata: dict[str, Any] = {"dataset": path.name, "tickets": len(items), "model": results[0].model}
    header = ["figure", *(f"v{r.prompt.version}" for r in results)]
    metadata["comparison"] = MetadataValue.md(markdown_table(header, comparison_rows(results)))
    for result in results:
        metadata.update(version_metadata(result, path.name))
    metadata["corrections"] = MetadataValue.json(results[0].corrections)
    return MaterializeResult(metadata=metadata)


def version_metadata(result: VersionResult, dataset: str) -> dict[str, Any]:
    """The figures, the threshold sweep and the two plots of one version, under `v<version>_` keys."""
    prefix = f"v{result.prompt.version}_"
    report = result.report
    calibration: Mapping[str, Any] = result.run.report.get("calibration") or {}
    at_threshold: Mapping[str, Any] = calibration.get("at_threshold") or {}
    title = f"prompt v{result.prompt.version} on {dataset}"
    return {
        f"{prefix}category_accuracy": MetadataValue.float(report.fields["category"].accuracy),
        f"{prefix}priority_accuracy": MetadataValue.float(report.fields["priority"].accuracy),
        f"{prefix}invalid_share": MetadataValue.float(report.invalid_share),
        f"{prefix}ece": MetadataValue.float(float(calibration.get("ece") or 0.0)),
        f"{prefix}review_threshold": MetadataValue.float(result.prompt.review_threshold),
        # Precision is undefined when nothing reaches the threshold: shown as empty, never as 0.
        f"{prefix}precision_at_threshold": _float_or_null(at_threshold.get("precision")),
        f"{prefix}coverage_at_threshold": _float_or_null(at_threshold.get("coverage")),
        f"{prefix}threshold_sweep": MetadataValue.md(sweep_markdown(result)),
        f"{prefix}confusion": MetadataValue.md(
            confusion_markdown({name: report.fields[name] for name in ("category", "priority")}, title)
        ),
        f"{prefix}reliability": MetadataValue.md(
            reliability_markdown(calibration, title, threshold=result.prompt.review_threshold)
        ),
        f"{prefix}report": MetadataValue.json(
            {k: v for k, v in result.run.report.items() if k not in ("fields", "answers")}
        ),
    }


def sweep_markdown(result: VersionResult) -> str:
    """What each review threshold would do to this version's answers, with the lowest one reaching the target."""
    rows = sweep_rows(result)
    if not rows:
        return "_no calibration in this evaluation_"
    calibration: Mapping[str, Any] = result.run.report.get("calibration") or {}
    target = float(calibration.get("target_precision") or 0.9)
    best = calibration.get("lowest_threshold_for_target")
    found = (
        f"lowest threshold for precision >= {target:.0%}: {best['threshold']:.3f} "
        f"(coverage {best['coverage']:.1%}, precision {best['precision']:.1%})"
        if best
        else f"no threshold reaches precision >= {target:.0%}"
    )
    table = markdown_table(["threshold", "auto-applied (coverage)", "precision", "sent to review"], rows)
    return f"Review threshold of the prompt: {result.prompt.review_threshold:g}; {found}.\n\n{table}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; `|` inside a cell is escaped."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell).replace("|", "\\|") for cell in line) + " |" for line in lines)


def _float_or_null(value: float | None) -> MetadataValue[Any]:
    return MetadataValue.null() if value is None else MetadataValue.float(float(value))


# One step: in process whatever TRIAGE_EXECUTOR is (it needs no worker).
prompt_evaluation_job = define_asset_job(
    "prompt_evaluation_job", selection=[prompt_evaluation], executor_def=in_process_executor
)
