"""Accuracy, macro-F1 and confusion matrices of an evaluation, with invalid outputs counted as wrong."""

import pytest

from triage_pipeline.domain.evaluation import EvaluationItem, build_report, score_field


def item(gold: str, predicted: str | None, latency: int = 100) -> EvaluationItem:
    return EvaluationItem(
        external_id="x",
        gold={"category": gold},
        predicted={"category": predicted} if predicted is not None else None,
        error_class=None if predicted is not None else "invalid_json",
        latency_ms=latency,
    )


def test_accuracy_counts_invalid_outputs_as_wrong() -> None:
    score = score_field([item("bug", "bug"), item("bug", None), item("billing", "billing")], "category")
    assert score.accuracy == pytest.approx(2 / 3)


def test_macro_f1_averages_per_label_f1() -> None:
    items = [item("bug", "bug"), item("bug", "billing"), item("billing", "billing"), item("outage", "bug")]
    score = score_field(items, "category", ["bug", "billing", "outage"])
    # bug: tp1 fp1 fn1 -> 0.5; billing: tp1 fp1 fn0 -> 2/3; outage: tp0 fp0 fn1 -> 0
    assert score.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0) / 3)


def test_confusion_matrix_rows_are_gold_columns_are_predicted_plus_invalid() -> None:
    score = score_field(
        [item("bug", "billing"), item("bug", None), item("billing", "billing")], "category", ["bug", "billing"]
    )
    assert score.labels == ("bug", "billing")
    assert score.confusion == ((0, 1, 1), (0, 1, 0))


def test_report_has_invalid_share_latency_percentiles_and_error_counts() -> None:
    items = [item("bug", "bug", 100), item("bug", None, 300), item("bug", "bug", 200), item("bug", "bug", 400)]
    report = build_report(items, {"category": ["bug"]})
    assert report.invalid == 1 and report.invalid_share == 0.25
    assert report.latency_p50_ms == 250
    assert report.errors == {"invalid_json": 1}
    assert report.as_dict()["fields"]["category"]["accuracy"] == 0.75
