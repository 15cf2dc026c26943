"""The `prompt_evaluation` asset: the labelled-set evaluation of prompt versions, with plots a person can open."""

import os
import tempfile
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset, define_asset_job
from pydantic import Field

from triage_pipeline.application.evaluation import EvaluateCommand, EvaluatePrompts, comparison_rows
from triage_pipeline.defs.quality.confusion_plot import plot_confusions
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.infrastructure.labelled_file import read_labelled, sample_path, sha256_of


class EvaluationConfig(Config):
    """What to evaluate."""

    file: str = Field(default="", description="Labelled JSONL/CSV; empty: the shipped 160-ticket sample.")
    versions: list[int] = Field(default_factory=list, description="Prompt versions; empty: the active one.")
    limit: int = Field(default=0, ge=0, description="Only the first N tickets (0: all).")
    concurrency: int = Field(default=4, ge=1, le=64)


@asset(
    name="prompt_evaluation",
    group_name="quality",
    description=(
        "Per-field accuracy, macro-F1, confusion matrices, invalid share, latency and tokens per prompt version."
    ),
)
def prompt_evaluation(
    context: AssetExecutionContext, config: EvaluationConfig, services: TriageServices
) -> MaterializeResult[None]:
    """Evaluate, store the runs, and attach the figures and a confusion-matrix PNG per version."""
    path = Path(config.file) if config.file else sample_path()
    items = read_labelled(path, config.limit or None)
    results = services.use(EvaluatePrompts).execute(
        EvaluateCommand(
            items=items,
            dataset=path.name,
            dataset_sha256=sha256_of(path),
            versions=config.versions,
            concurrency=config.concurrency,
            on_progress=lambda done, total: context.log.info(f"evaluated {done}/{total}") if done % 20 == 0 else None,
        )
    )
    plots_dir = Path(os.environ.get("DAGSTER_HOME") or tempfile.gettempdir()) / "evaluation_plots"
    metadata: dict[str, Any] = {"dataset": path.name, "tickets": len(items), "model": results[0].model}
    header = ["figure", *(f"v{r.prompt.version}" for r in results)]
    table = [header, ["---"] * len(header), *comparison_rows(results)]
    metadata["comparison"] = MetadataValue.md("\n".join("| " + " | ".join(row) + " |" for row in table))
    for result in results:
        version = result.prompt.version
        figures = result.report.as_dict()
        metadata[f"v{version}_category_accuracy"] = MetadataValue.float(result.report.fields["category"].accuracy)
        metadata[f"v{version}_priority_accuracy"] = MetadataValue.float(result.report.fields["priority"].accuracy)
        metadata[f"v{version}_invalid_share"] = MetadataValue.float(result.report.invalid_share)
        metadata[f"v{version}_report"] = MetadataValue.json({k: v for k, v in figures.items() if k != "fields"})
        png = plot_confusions(
            {name: result.report.fields[name] for name in ("category", "priority")},
            f"prompt v{version} on {path.name}",
            plots_dir / f"{result.run.id}.png",
        )
        metadata[f"v{version}_confusion_png"] = MetadataValue.path(str(png))
    metadata["corrections"] = MetadataValue.json(results[0].corrections)
    return MaterializeResult(metadata=metadata)


prompt_evaluation_job = define_asset_job("prompt_evaluation_job", selection=[prompt_evaluation])
