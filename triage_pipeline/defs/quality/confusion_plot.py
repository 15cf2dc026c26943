"""Confusion-matrix plots (PNG) of an evaluation, for the Dagster asset.

matplotlib is imported when a plot is drawn, and through its object API (Figure + Agg canvas) rather
than pyplot: no global figure state, no backend selection, nothing paid when the code location loads.
"""

from pathlib import Path

from triage_pipeline.domain.evaluation import FieldScore


def plot_confusions(scores: dict[str, FieldScore], title: str, path: Path) -> Path:
    """One heat map per field (rows expected, columns predicted + invalid), side by side, saved as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7 * len(scores), 6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(scores), squeeze=False)
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
    return path
