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
    """Every calibration figure of one evaluation, JSON-ready (stored in the evaluation run's report).

    `answers` carry raw confidences. A calibration map is fitted on all of them (`map`, what production
    applies from then on); the figures are those of cross-validated calibrated confidences (each answer
    calibrated by a map fitted without it), the honest estimate of how the map does on new tickets. With
    too few answers to fit, the figures are those of the raw confidences and there is no map.
    """
    fitted = fit_isotonic(answers)
    scored = cross_validated(answers) if fitted else list(answers)
    best = lowest_threshold_for(scored, target_precision, invalid)
    return {
        "ece": expected_calibration_error(scored),
        "raw_ece": expected_calibration_error(answers),
        "calibrated": fitted is not None,
        "map": fitted.as_dict() if fitted else None,
        "reliability": [
            {
                "low": b.low,
                "high": b.high,
                "count": b.count,
                "mean_confidence": b.mean_confidence,
                "accuracy": b.accuracy,
            }
            for b in reliability(scored)
        ],
        "at_threshold": split_at(scored, threshold, invalid).as_dict(),
        "sweep": [split_at(scored, t, invalid).as_dict() for t in SWEEP],
        "target_precision": target_precision,
        "lowest_threshold_for_target": best.as_dict() if best else None,
    }


@dataclass(frozen=True, slots=True)
class CalibrationMap:
    """A monotone step function from a raw confidence to the accuracy observed at that confidence, fitted on
    a labelled file (isotonic regression): `apply` turns production scores into probabilities that mean
    what they say. `steps` are (upper bound of raw confidence, calibrated value), ascending."""

    steps: tuple[tuple[float, float], ...]
    fitted_on: int
    """How many answers the map was fitted on."""

    def apply(self, raw: float) -> float:
        for upper, value in self.steps:
            if raw <= upper:
                return value
        return self.steps[-1][1] if self.steps else raw

    def as_dict(self) -> dict[str, Any]:
        return {"steps": [list(step) for step in self.steps], "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: Any) -> "CalibrationMap | None":
        """The map stored by `as_dict`, or None for anything else (an older report)."""
        try:
            steps = tuple((float(upper), float(value)) for upper, value in data["steps"])
            return cls(steps, int(data["fitted_on"])) if steps else None
        except (KeyError, TypeError, ValueError):
            return None


MIN_ANSWERS_TO_FIT = 20
"""Fewer answers than this fit no map: the steps would be noise."""


def fit_isotonic(answers: Sequence[ScoredAnswer], prior_weight: float = 1.0) -> CalibrationMap | None:
    """Pool-adjacent-violators over answers sorted by raw confidence; each block's value is its accuracy,
    pulled slightly towards the block's mean raw confidence (`prior_weight` pseudo-answers) so that a
    block of three right answers does not become a certainty."""
    if len(answers) < MIN_ANSWERS_TO_FIT:
        return None
    ordered = sorted(answers, key=lambda a: a.confidence)
    # Blocks of [sum correct, count, sum raw, upper raw]
    blocks: list[list[float]] = []
    for answer in ordered:
        blocks.append([float(answer.correct), 1.0, answer.confidence, answer.confidence])
        while len(blocks) > 1 and _value(blocks[-2], prior_weight) >= _value(blocks[-1], prior_weight):
            right, count, raw, upper = blocks.pop()
            blocks[-1][0] += right
            blocks[-1][1] += count
            blocks[-1][2] += raw
            blocks[-1][3] = upper
    steps = [(block[3], round(_value(block, prior_weight), 4)) for block in blocks]
    steps[-1] = (1.0, steps[-1][1])  # everything above the highest fitted score gets the top block's value
    return CalibrationMap(tuple(steps), len(answers))


def _value(block: list[float], prior_weight: float) -> float:
    right, count, raw, _upper = block
    return (right + prior_weight * raw / count) / (count + prior_weight)


def cross_validated(answers: Sequence[ScoredAnswer], folds: int = 5) -> list[ScoredAnswer]:
    """Each answer calibrated by a map fitted on the other folds: what the calibration would do on tickets
    it was not fitted on (the honest figures to report); answers keep their raw confidence when a fold's
    remainder is too small to fit."""
    maps = [fit_isotonic([a for i, a in enumerate(answers) if i % folds != fold]) for fold in range(folds)]
    calibrated: list[ScoredAnswer] = []
    for index, answer in enumerate(answers):
        fitted = maps[index % folds]
        calibrated.append(
            ScoredAnswer(fitted.apply(answer.confidence) if fitted else answer.confidence, answer.correct)
        )
    return calibrated
