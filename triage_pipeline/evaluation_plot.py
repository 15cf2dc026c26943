"""Confusion-matrix plots (PNG, matplotlib) of an evaluation, for the Dagster asset and the CLI."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers

import matplotlib.pyplot as plt

from triage_pipeline.domain.evaluation import FieldScore


def plot_confusions(scores: dict[str, FieldScore], title: str, path: Path) -> Path:
    """One heat map per field (rows expected, columns predicted + invalid), side by side, saved as PNG."""
    fig, axes = plt.subplots(1, len(scores), figsize=(7 * len(scores), 6), squeeze=False)
    for axis, (name, score) in zip(axes[0], scores.items(), strict=True):
        columns = [*score.labels, "invalid"]
        axis.imshow(score.confusion, cmap="Blues")
        axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
        axis.set_yticks(range(len(score.labels)), score.labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("expected")
        axis.set_title(f"{name}: accuracy {score.accuracy:.1%}, macro-F1 {score.macro_f1:.3f}")
        for row, values in enumerate(score.confusion):
            for column, count in enumerate(values):
                if count:
                    axis.text(column, row, str(count), ha="center", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
