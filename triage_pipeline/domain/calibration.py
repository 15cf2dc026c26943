"""Whether confidence means something: calibration (ECE, reliability bins), the split at a review threshold,
a threshold sweep, and the lowest threshold that reaches a target precision of auto-applied answers (pure).

Each scored answer is (confidence, correct) for the category; an invalid output counts as sent to review
(it has no answer to apply) and as wrong for calibration at confidence 0.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BINS = 10
SWEEP = tuple(round(i * 0.05, 2) for i in range(20))  # 0.00 .. 0.95


@dataclass(frozen=True, slots=True)
class ScoredAnswer:
    confidence: float
    correct: bool


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_confidence: float
    accuracy: float


def reliability(answers: Sequence[ScoredAnswer], bins: int = BINS) -> list[ReliabilityBin]:
    """Answers grouped by confidence into equal-width bins ([0, .1), ..., [.9, 1.0]); empty bins included."""
    grouped: list[list[ScoredAnswer]] = [[] for _ in range(bins)]
    for answer in answers:
        grouped[min(int(answer.confidence * bins), bins - 1)].append(answer)
    return [
        ReliabilityBin(
            low=i / bins,
            high=(i + 1) / bins,
            count=len(group),
            mean_confidence=sum(a.confidence for a in group) / len(group) if group else 0.0,
            accuracy=sum(a.correct for a in group) / len(group) if group else 0.0,
        )
        for i, group in enumerate(grouped)
    ]


def expected_calibration_error(answers: Sequence[ScoredAnswer], bins: int = BINS) -> float:
    """Sum over bins of |accuracy - mean confidence| weighted by the bin's share of answers."""
    if not answers:
        return 0.0
    return sum(b.count / len(answers) * abs(b.accuracy - b.mean_confidence) for b in reliability(answers, bins))


@dataclass(frozen=True, slots=True)
class ThresholdSplit:
    """What a review threshold does to a set of answers."""

    threshold: float
    auto_right: int
    auto_wrong: int
    review: int

    @property
    def total(self) -> int:
        return self.auto_right + self.auto_wrong + self.review

    @property
    def coverage(self) -> float:
        """Share of answers applied without a person."""
        return (self.auto_right + self.auto_wrong) / self.total if self.total else 0.0

    @property
    def precision(self) -> float | None:
        """Share of applied answers that are right; None when nothing is applied."""
        applied = self.auto_right + self.auto_wrong
        return self.auto_right / applied if applied else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "auto_right": self.auto_right,
            "auto_wrong": self.auto_wrong,
            "review": self.review,
            "coverage": self.coverage,
            "precision": self.precision,
        }


def split_at(answers: Sequence[ScoredAnswer], threshold: float, invalid: int = 0) -> ThresholdSplit:
    """Applied when confidence >= threshold (as `domain.review`); invalid outputs go to review."""
    applied = [a for a in answers if a.confidence >= threshold]
    right = sum(a.correct for a in applied)
    return ThresholdSplit(threshold, right, len(applied) - right, len(answers) - len(applied) + invalid)


def lowest_threshold_for(
    answers: Sequence[ScoredAnswer], target_precision: float, invalid: int = 0
) -> ThresholdSplit | None:
    """The lowest threshold (most coverage) whose applied answers reach `target_precision`, among the
    answers' own confidences; None when no threshold reaches it."""
    for threshold in sorted({a.confidence for a in answers}):
        split = split_at(answers, threshold, invalid)
        if split.precision is not None and split.precision >= target_precision:
            return split
    return None


def calibration_report(
    answers: Sequence[ScoredAnswer], *, invalid: int, threshold: float, target_precision: float
) -> dict[str, Any]:
    """Every calibration figure of one evaluation, JSON-ready (stored in the evaluation run's report)."""
    best = lowest_threshold_for(answers, target_precision, invalid)
    return {
        "ece": expected_calibration_error(answers),
        "reliability": [
            {
                "low": b.low,
                "high": b.high,
                "count": b.count,
                "mean_confidence": b.mean_confidence,
                "accuracy": b.accuracy,
            }
            for b in reliability(answers)
        ],
        "at_threshold": split_at(answers, threshold, invalid).as_dict(),
        "sweep": [split_at(answers, t, invalid).as_dict() for t in SWEEP],
        "target_precision": target_precision,
        "lowest_threshold_for_target": best.as_dict() if best else None,
    }
