"""The plots and tables of the `prompt_evaluation` asset: PNG embedded in markdown, rendered in memory."""

import base64
import re
import subprocess
import sys
from datetime import UTC, datetime
from uuid import uuid4

from triage_pipeline.application.evaluation import VersionResult
from triage_pipeline.defs.quality.evaluation_plots import confusion_markdown, reliability_markdown
from triage_pipeline.defs.quality.prompt_evaluation import markdown_table, sweep_markdown, version_metadata
from triage_pipeline.domain.calibration import ScoredAnswer, calibration_report
from triage_pipeline.domain.evaluation import EvaluationItem, EvaluationRun, build_report
from triage_pipeline.domain.prompt import Prompt

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
IMAGE = re.compile(r"^!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def png_of(markdown: str) -> bytes:
    """The PNG a markdown image embeds; fails unless the whole string is one such image."""
    match = IMAGE.match(markdown)
    assert match, markdown[:120]
    return base64.b64decode(match.group(1), validate=True)


def items() -> list[EvaluationItem]:
    def item(n: int, gold: str, predicted: str | None, confidence: float | None) -> EvaluationItem:
        return EvaluationItem(
            external_id=f"E-{n}",
            gold={"category": gold, "priority": "high"},
            predicted=None if predicted is None else {"category": predicted, "priority": "high"},
            error_class=None if predicted is not None else "invalid_json",
            latency_ms=10 * n,
            confidence=confidence,
        )

    return [
        item(1, "billing", "billing", 0.95),
        item(2, "billing", "bug", 0.35),
        item(3, "bug", "bug", 0.85),
        item(4, "bug", "bug", 0.55),
        item(5, "account", "billing", 0.62),
        item(6, "account", None, None),
    ]


def calibration() -> dict[str, object]:
    answers = [
        ScoredAnswer(i.confidence or 0.0, (i.predicted or {}).get("category") == i.gold["category"])
        for i in items()
        if i.predicted
    ]
    return calibration_report(answers, invalid=1, threshold=0.6, target_precision=0.9)


def version_result() -> VersionResult:
    prompt = Prompt(
        uuid4(), "triage", 3, "sys", "{ticket}", {}, {}, True, T0, categories=("billing", "bug"), review_threshold=0.6
    )
    report = build_report(items(), {"category": prompt.categories, "priority": ("high", "low")})
    run = EvaluationRun(
        id=uuid4(),
        prompt_id=prompt.id,
        prompt_name=prompt.name,
        prompt_version=prompt.version,
        model="fake-model",
        dataset="sample.jsonl",
        dataset_sha256="0" * 64,
        report={**report.as_dict(), "calibration": calibration(), "review_threshold": 0.6},
        created_at=T0,
    )
    return VersionResult(prompt=prompt, model="fake-model", report=report, run=run, corrections={})


def test_confusion_matrices_are_a_png_embedded_in_markdown() -> None:
    report = version_result().report
    markdown = confusion_markdown({name: report.fields[name] for name in ("category", "priority")}, "v3 on sample")
    assert markdown.startswith("![confusion matrices: v3 on sample](data:image/png;base64,")
    assert png_of(markdown).startswith(PNG_SIGNATURE)


def test_reliability_diagram_is_a_png_embedded_in_markdown() -> None:
    markdown = reliability_markdown(calibration(), "v3 on sample", threshold=0.6)
    png = png_of(markdown)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < 200_000  # stored in the event log with every materialization


def test_reliability_diagram_of_an_evaluation_without_scored_answers_still_draws() -> None:
    empty = calibration_report([], invalid=3, threshold=0.5, target_precision=0.9)
    assert png_of(reliability_markdown(empty, "all invalid")).startswith(PNG_SIGNATURE)
    assert png_of(reliability_markdown({}, "no calibration stored")).startswith(PNG_SIGNATURE)


def test_version_metadata_has_the_figures_the_sweep_and_both_plots() -> None:
    result = version_result()
    metadata = version_metadata(result, "sample.jsonl")
    assert png_of(metadata["v3_confusion"].value).startswith(PNG_SIGNATURE)
    assert png_of(metadata["v3_reliability"].value).startswith(PNG_SIGNATURE)
    at = calibration()["at_threshold"]
    assert isinstance(at, dict)
    assert metadata["v3_precision_at_threshold"].value == at["precision"]
    assert metadata["v3_coverage_at_threshold"].value == at["coverage"]
    assert metadata["v3_ece"].value == calibration()["ece"]
    assert metadata["v3_review_threshold"].value == 0.6
    assert not any(key.endswith("_png") for key in metadata)  # no path on the server any more
    sweep = metadata["v3_threshold_sweep"].value
    assert "| threshold | auto-applied (coverage) | precision | sent to review |" in sweep
    assert "| 0.60 |" in sweep and "Review threshold of the prompt: 0.6" in sweep


def test_precision_with_nothing_applied_is_empty_not_zero() -> None:
    result = version_result()
    nothing_applied = calibration_report([ScoredAnswer(0.2, True)], invalid=0, threshold=0.9, target_precision=0.9)
    report = {**result.run.report, "calibration": nothing_applied}
    run = EvaluationRun(**{**{f: getattr(result.run, f) for f in result.run.__dataclass_fields__}, "report": report})
    metadata = version_metadata(VersionResult(result.prompt, result.model, result.report, run, {}), "s")
    assert metadata["v3_precision_at_threshold"].value is None
    assert "lowest threshold for precision >= 90%: 0.200" in sweep_markdown(
        VersionResult(result.prompt, result.model, result.report, run, {})
    )


def test_markdown_table_escapes_pipes() -> None:
    assert markdown_table(["a", "b"], [["x|y", "1"]]) == "| a | b |\n| --- | --- |\n| x\\|y | 1 |"


def test_the_code_location_does_not_import_matplotlib() -> None:
    code = "import sys, triage_pipeline.definitions; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
