"""The plots of an evaluation a person looks at in the Dagster UI: PNG drawn in memory and embedded in markdown
(`![alt](data:image/png;base64,...)`), so the UI shows the image itself, not a path on the server.

matplotlib is imported when a plot is drawn, and through its object API (Figure + Agg canvas) rather
than pyplot: no global figure state, no backend selection, nothing paid when the code location loads.
"""

import base64
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from triage_pipeline.domain.evaluation import FieldScore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 80


def confusion_markdown(scores: Mapping[str, FieldScore], title: str) -> str:
    """One heat map per field (rows expected, columns predicted + invalid), side by side."""
    fig = _figure(7 * len(scores), 6)
    axes = fig.subplots(1, len(scores), squeeze=False)
    for axis, (name, score) in zip(axes[0], scores.items(), strict=True):
        columns = [*score.labels, "invalid"]
        axis.imshow(score.confusion, cmap="Blues")
        axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
        axis.set_yticks(range(len(score.labels)), score.labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("expected")
        axis.set_title(f"{name}: accuracy {score.accuracy:.1%}, macro-F1 {score.macro_f1:.3f}")
        darkest = max((max(values) for values in score.confusion), default=0)
        for row, values in enumerate(score.confusion):
            for column, count in enumerate(values):
                if count:
                    colour = "white" if count > darkest / 2 else "black"
                    axis.text(column, row, str(count), ha="center", va="center", fontsize=9, color=colour)
    fig.suptitle(title)
    return _markdown(fig, f"confusion matrices: {title}")


def reliability_markdown(calibration: Mapping[str, Any], title: str, threshold: float | None = None) -> str:
    """The reliability diagram of `calibration` (as `domain.calibration.calibration_report` stores it): the
    accuracy of the answers of each confidence bin as a bar, the diagonal a calibrated confidence would
    follow, the answers per bin over each bar, the review threshold as a vertical line, the ECE in the title."""
    bins = [b for b in calibration.get("reliability") or [] if b.get("count")]
    total = sum(int(b["count"]) for b in bins)
    fig = _figure(7, 6)
    axis = fig.subplots()
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated (accuracy = confidence)")
    axis.bar(
        [b["low"] for b in bins],
        [b["accuracy"] for b in bins],
        width=[b["high"] - b["low"] for b in bins],
        align="edge",
        color="tab:blue",
        edgecolor="navy",
        alpha=0.75,
        label="accuracy of the bin's answers",
    )
    axis.scatter(
        [b["mean_confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        color="tab:orange",
        zorder=3,
        label="mean confidence of the bin",
    )
    for b in bins:
        axis.text(
            (b["low"] + b["high"]) / 2, min(b["accuracy"] + 0.02, 1.02), f"n={b['count']}", ha="center", fontsize=8
        )
    if threshold is not None:
        axis.axvline(threshold, color="tab:red", linestyle=":", label=f"review threshold {threshold:g}")
    if not bins:
        axis.text(0.5, 0.5, "no scored answers", ha="center", va="center")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.08)
    axis.set_xlabel("category confidence")
    axis.set_ylabel("accuracy (category)")
    axis.set_title(f"{title}: ECE {float(calibration.get('ece') or 0.0):.3f} over {total} answers")
    axis.legend(loc="upper left", fontsize=8)
    return _markdown(fig, f"reliability diagram: {title}")


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _markdown(fig: "Figure", alt: str) -> str:
    """The figure as a PNG embedded in a markdown image."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{alt.replace('[', '(').replace(']', ')')}](data:image/png;base64,{encoded})"
