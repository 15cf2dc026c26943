"""Confidence computed from evidence, not claimed: the model's own token probabilities, the labels of the
most similar solved tickets, and what the owner's whole example bank says.

The model's self-reported `confidence` field is kept in the attempt's log only (`stated_confidence`): a
small model writes 1.0 whatever it answers. What decides instead, for the category and for the priority alike:

- the model's probability of each label, when the server returns log-probabilities: of the label it
  wrote from the tokens that wrote it, of the others it hesitated between from the alternatives listed
  where they part from the written value (a label no alternative reaches counts 0);
- the neighbour vote: the similarity-weighted share of the retrieved examples that carry each label;
- the example bank's classifier (`domain.example_classifier`): each label's probability from the words of
  all the examples the ticket's owner may use, not only the nearest.

With the vote, each label scores `model weight x the model's probability + bank weight x the bank's
probability + the rest x its share of the vote`, and the best-scoring label is the answer: a model unsure
of its answer is overruled by examples that agree with each other. The bank takes part only for a prompt
version that settles with it (`Prompt.example_bank`); then a server without logprobs leaves the vote and the
bank to decide (the model's weight is 0). Without both the bank and the model's probability, the model's
label stands and its share of the vote is the confidence (unless the model's weight is 0: then the vote decides
alone). Without the vote (no example found), the model's label stands and its probability is the
confidence. With no signal, the confidence is 0, so the answer goes to review. The category's confidence,
calibrated when the prompt version has a calibration, is the answer's.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from triage_pipeline.domain.calibration import CalibrationMap
from triage_pipeline.domain.example import NeighbourVote, TriageExample
from triage_pipeline.domain.review import ReviewStatus, review_status_for
from triage_pipeline.domain.triage_answer import Priority, TriageAnswer

CATEGORY_MODEL_WEIGHT = 0.05
PRIORITY_MODEL_WEIGHT = 0.0
"""How much the model's own probabilities count against the neighbours' vote. Chosen on an evaluation of all
600 shipped starter examples with the offline model (each never shown itself; README, Quality), not on the
sample the README reports. For the category, the vote alone was right on 58.8%; the more the model weighed, the
more often it overruled a right vote (0.3: 57.8%, 0.5: 54.2%), and only a small weight, where the model breaks
the vote's near-ties, did better (0.05: 59.7%, 10 tickets won and 5 lost against the vote). For the priority
the vote alone did best (47.8%; 0.05: 46.8%, 0.3: 44.7%), so the model's priority only breaks exact ties and
stands where no example was found."""
CATEGORY_BANK_WEIGHT = 0.4
PRIORITY_BANK_WEIGHT = 0.3
"""How much the example bank's classifier counts, chosen the same way: each of the 600 starter examples
classified by the other 599 (as `triage eval` does), version 4's answers on them re-settled with the
bank's probabilities (`bench/settling_weights.py` on a version-5 run measures the same). Category
(the vote alone: 58.8%): 0.2 71.2%, 0.3 72.3%, 0.4 73.2%, 0.5 71.5%. Priority (the vote alone: 47.8%): 0.3
53.7%, 0.5 53.3%, 1.0 53.3%. Either signal alone does worse than both: the vote knows which examples are
nearly the same ticket, the classifier which words mark a label across all of them."""


class Signal(StrEnum):
    """What a confidence was computed from (listed in the attempt's log)."""

    LOGPROBS = "logprobs"
    NEIGHBOURS = "neighbours"
    EXAMPLE_BANK = "example_bank"


@dataclass(frozen=True, slots=True)
class LabelDecision:
    """The label to store, its (raw) confidence, and what the decision was based on."""

    label: str
    confidence: float
    signals: tuple[Signal, ...]
    overruled: bool
    """The neighbours' label replaced the model's."""


def decide_label(
    model_label: str,
    model_probability: float | None,
    vote: NeighbourVote | None,
    vocabulary: tuple[str, ...] = (),
    model_weight: float = 0.5,
    model_distribution: Mapping[str, float] | None = None,
    bank: Mapping[str, float] | None = None,
    bank_weight: float = 0.0,
) -> LabelDecision:
    """The stored label and its confidence (see the module's docstring). Labels outside `vocabulary` (when
    given) never win. `model_distribution`, when known, gives the model's probability of the labels it did
    not write as well; the one it wrote keeps `model_probability`. `bank`: the example bank classifier's
    probabilities (empty or None: it knows nothing, and its weight goes to the vote)."""
    has_vote = vote is not None and bool(vote.shares)
    if has_vote and (model_probability is not None or model_weight == 0 or bank):
        assert vote is not None
        # Without the model's probability (a server without logprobs) the vote and the bank decide alone.
        model_weight = model_weight if model_probability is not None else 0.0
        bank_weight = bank_weight if bank else 0.0
        scores = {
            label: (1 - model_weight - bank_weight) * share
            for label, share in vote.shares.items()
            if not vocabulary or label in vocabulary
        }
        model = {
            label: probability
            for label, probability in (model_distribution or {}).items()
            if label != model_label and (not vocabulary or label in vocabulary)
        }
        model[model_label] = model_probability or 0.0
        for label, probability in model.items():
            scores[label] = scores.get(label, 0.0) + model_weight * probability
        for label, probability in (bank or {}).items():
            if not vocabulary or label in vocabulary:
                scores[label] = scores.get(label, 0.0) + bank_weight * probability
        # Ties keep the model's answer.
        best = max(scores, key=lambda label: (scores[label], label == model_label))
        signals = (
            *((Signal.LOGPROBS,) if model_probability is not None else ()),
            Signal.NEIGHBOURS,
            *((Signal.EXAMPLE_BANK,) if bank_weight else ()),
        )
        return LabelDecision(best, _clamp(scores[best]), signals, overruled=best != model_label)
    if model_probability is not None:
        return LabelDecision(model_label, _clamp(model_probability), (Signal.LOGPROBS,), overruled=False)
    if has_vote:
        assert vote is not None
        return LabelDecision(model_label, _clamp(vote.share(model_label)), (Signal.NEIGHBOURS,), overruled=False)
    return LabelDecision(model_label, 0.0, (), overruled=False)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _probabilities(distribution: Mapping[str, float] | None) -> dict[str, float] | None:
    return None if distribution is None else {label: round(p, 4) for label, p in distribution.items()}


def _shares(vote: NeighbourVote | None) -> dict[str, float]:
    return {label: round(share, 4) for label, share in vote.shares.items()} if vote else {}


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
    category_distribution: Mapping[str, float] | None = None,
    priority_distribution: Mapping[str, float] | None = None,
    category_bank: Mapping[str, float] | None = None,
    priority_bank: Mapping[str, float] | None = None,
    vocabulary: tuple[str, ...],
    review_threshold: float,
    calibration: CalibrationMap | None = None,
) -> SettledAnswer:
    """The model's answer with the category and the priority decided the same way (each from the model's
    probability of it and the neighbours' votes) and the category's confidence as the answer's confidence
    (see the module's docstring)."""
    vote = NeighbourVote.of_examples(examples, "category")
    category = decide_label(
        model_answer.category,
        category_probability,
        vote,
        vocabulary,
        CATEGORY_MODEL_WEIGHT,
        category_distribution,
        category_bank,
        CATEGORY_BANK_WEIGHT,
    )
    priority_vote = NeighbourVote.of_examples(examples, "priority")
    priority = decide_label(
        model_answer.priority.value,
        priority_probability,
        priority_vote,
        tuple(p.value for p in Priority),
        PRIORITY_MODEL_WEIGHT,
        priority_distribution,
        priority_bank,
        PRIORITY_BANK_WEIGHT,
    )
    # The calibration fitted on the prompt version's latest evaluation turns the raw score into the share of
    # answers with that score that were right: the number a reviewer can read as a probability.
    confidence = calibration.apply(category.confidence) if calibration else category.confidence
    answer = replace(
        model_answer,
        category=category.label,
        priority=Priority(priority.label),
        confidence=round(confidence, 4),
    )
    log = {
        "confidence": round(confidence, 4),
        "raw_confidence": round(category.confidence, 4),
        "calibrated_on": calibration.fitted_on if calibration else None,
        "signals": list(category.signals),
        "stated_confidence": model_answer.confidence,
        "model_category": model_answer.category,
        "category_probability": _rounded(category_probability),
        "category_distribution": _probabilities(category_distribution),
        "priority_probability": _rounded(priority_probability),
        "neighbour_shares": _shares(vote),
        "overruled": category.overruled,
        "model_priority": model_answer.priority.value,
        "priority_confidence": round(priority.confidence, 4),
        "priority_overruled": priority.overruled,
        "neighbour_priority_shares": _shares(priority_vote),
        "priority_distribution": _probabilities(priority_distribution),
        # None: the version does not settle with the bank, or the bank knew nothing of these labels.
        "bank_category": _probabilities(category_bank) if category_bank else None,
        "bank_priority": _probabilities(priority_bank) if priority_bank else None,
    }
    return SettledAnswer(answer, review_status_for(confidence, review_threshold), log)
