"""Confidence computed from evidence, not claimed: the model's own token probabilities and the labels of
the most similar solved tickets.

The model's self-reported `confidence` field is kept in the attempt's log only (`stated_confidence`): a
small model writes 1.0 whatever it answers. What decides instead:

- `category_probability`: the probability the model gave the category it wrote (from the tokens'
  log-probabilities, when the server returns them);
- the neighbour vote: the similarity-weighted share of the retrieved examples that carry each label.

With both, each category scores the mean of the two (the model's probability counts for the category it
wrote only, since the others' are unknown) and the best-scoring category is the answer: a model unsure of
its answer is overruled by examples that agree with each other. With one signal, the model's category
stands and that signal is the confidence. With none, the confidence is 0, so the answer goes to review.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from triage_pipeline.domain.calibration import CalibrationMap
from triage_pipeline.domain.example import NeighbourVote, TriageExample
from triage_pipeline.domain.review import ReviewStatus, review_status_for
from triage_pipeline.domain.triage_answer import Priority, TriageAnswer

CATEGORY_MODEL_WEIGHT = 0.3
PRIORITY_MODEL_WEIGHT = 0.0
"""How much the model's own probability counts against the neighbours' vote, chosen on the first 40 shipped
evaluation tickets with the offline model (README, Quality). For the category a mix beat either alone there
(70% at 0.3, against 62.5% for the model and 60% for the vote), and the full 160 tickets agreed that the
model should weigh less than the vote. For the priority the vote beat the model (45% against 27.5%) and every
mix, so the model's priority only breaks ties and stands where no example was found."""


class Signal(StrEnum):
    """What a confidence was computed from (listed in the attempt's log)."""

    LOGPROBS = "logprobs"
    NEIGHBOURS = "neighbours"


@dataclass(frozen=True, slots=True)
class CategoryDecision:
    """The category to store, its confidence, and what the decision was based on (for the attempt's log)."""

    category: str
    confidence: float
    signals: tuple[str, ...]
    overruled: bool
    """The neighbours' category replaced the model's."""

    def log_fields(
        self,
        *,
        model_category: str,
        stated_confidence: float,
        category_probability: float | None,
        priority_probability: float | None,
        vote: NeighbourVote | None,
    ) -> dict[str, Any]:
        """The confidence part of an attempt's log: every input and the outcome, JSON-ready."""
        return {
            "confidence": round(self.confidence, 4),
            "signals": list(self.signals),
            "stated_confidence": stated_confidence,
            "model_category": model_category,
            "category_probability": _rounded(category_probability),
            "priority_probability": _rounded(priority_probability),
            "neighbour_shares": {k: round(v, 4) for k, v in vote.shares.items()} if vote else {},
            "overruled": self.overruled,
        }


def decide_category(
    model_category: str,
    category_probability: float | None,
    vote: NeighbourVote | None,
    vocabulary: tuple[str, ...] = (),
    model_weight: float = 0.5,
) -> CategoryDecision:
    """The stored label and its confidence (see the module's docstring): with both signals each label scores
    `model_weight` x the model's probability (its own label only) + the rest x its neighbours' share.
    Labels outside `vocabulary` (when given) never win."""
    has_vote = vote is not None and bool(vote.shares)
    if has_vote and category_probability is None and model_weight == 0:
        category_probability = 0.0  # the model's probability would not count anyway: the neighbours decide
    if category_probability is not None and has_vote:
        assert vote is not None
        scores = {
            label: (1 - model_weight) * share
            for label, share in vote.shares.items()
            if not vocabulary or label in vocabulary
        }
        scores[model_category] = scores.get(model_category, 0.0) + model_weight * category_probability
        # Ties keep the model's answer.
        best = max(scores, key=lambda label: (scores[label], label == model_category))
        return CategoryDecision(
            best, _clamp(scores[best]), (Signal.LOGPROBS, Signal.NEIGHBOURS), overruled=best != model_category
        )
    if category_probability is not None:
        return CategoryDecision(model_category, _clamp(category_probability), (Signal.LOGPROBS,), overruled=False)
    if has_vote:
        assert vote is not None
        return CategoryDecision(model_category, _clamp(vote.share(model_category)), (Signal.NEIGHBOURS,), False)
    return CategoryDecision(model_category, 0.0, (), overruled=False)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True, slots=True)
class SettledAnswer:
    """The answer as stored: category and confidence from the evidence, and whether it waits for a person."""

    answer: TriageAnswer
    review_status: ReviewStatus
    log: dict[str, Any]
    """How it was settled, for the attempt's log (`confidence` column)."""


def settle_answer(
    model_answer: TriageAnswer,
    *,
    category_probability: float | None,
    priority_probability: float | None,
    examples: Sequence[TriageExample],
    vocabulary: tuple[str, ...],
    review_threshold: float,
    calibration: CalibrationMap | None = None,
) -> SettledAnswer:
    """The model's answer with the category and the priority decided the same way (each from the model's
    probability of it and the neighbours' votes) and the category's confidence as the answer's confidence
    (see the module's docstring)."""
    vote = NeighbourVote.of([(e.category, e.similarity or 0.0) for e in examples]) if examples else None
    decision = decide_category(model_answer.category, category_probability, vote, vocabulary, CATEGORY_MODEL_WEIGHT)
    priority_vote = NeighbourVote.of([(e.priority.value, e.similarity or 0.0) for e in examples]) if examples else None
    priority = decide_category(
        model_answer.priority.value,
        priority_probability,
        priority_vote,
        tuple(p.value for p in Priority),
        PRIORITY_MODEL_WEIGHT,
    )
    # The calibration fitted on the prompt version's latest evaluation turns the raw score into the share of
    # answers with that score that were right: the number a reviewer can read as a probability.
    confidence = calibration.apply(decision.confidence) if calibration else decision.confidence
    answer = replace(
        model_answer,
        category=decision.category,
        priority=Priority(priority.category),
        confidence=round(confidence, 4),
    )
    log = decision.log_fields(
        model_category=model_answer.category,
        stated_confidence=model_answer.confidence,
        category_probability=category_probability,
        priority_probability=priority_probability,
        vote=vote,
    )
    log |= {
        "confidence": round(confidence, 4),
        "raw_confidence": round(decision.confidence, 4),
        "calibrated_on": calibration.fitted_on if calibration else None,
        "model_priority": model_answer.priority.value,
        "priority_confidence": round(priority.confidence, 4),
        "priority_overruled": priority.overruled,
        "neighbour_priority_shares": {k: round(v, 4) for k, v in priority_vote.shares.items()} if priority_vote else {},
    }
    return SettledAnswer(answer, review_status_for(confidence, review_threshold), log)
