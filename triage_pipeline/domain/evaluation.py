"""Evaluation of triage answers against gold labels: accuracy, macro-F1, confusion matrices (pure)."""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

EVALUATED_FIELDS = ("category", "priority", "sentiment", "language")


@dataclass(frozen=True, slots=True)
class LabelledTicket:
    """A ticket with its gold labels."""

    external_id: str
    title: str
    description: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class EvaluationItem:
    """The outcome of one labelled ticket: the predicted labels, or the error that prevented them."""

    external_id: str
    gold: Mapping[str, str]
    predicted: Mapping[str, str] | None
    error_class: str | None
    latency_ms: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    confidence: float | None = None
    """The computed confidence of the stored answer (None for an invalid output)."""
    neighbours: Mapping[str, str] | None = None
    """What the nearest examples' vote alone says (category, priority): the nearest-neighbour floor."""
    settled: Mapping[str, Any] | None = None
    """How the answer's category and confidence were settled (as an attempt's log `confidence`)."""
    bank: Mapping[str, str] | None = None
    """What the example bank's classifier alone says (category, priority): a reference beside the floors."""

    def as_dict(self) -> dict[str, Any]:
        """One ticket's outcome, JSON-ready: kept in the run's report to audit or recalibrate from."""
        return {
            "external_id": self.external_id,
            "gold": dict(self.gold),
            "predicted": dict(self.predicted) if self.predicted is not None else None,
            "error_class": self.error_class,
            "latency_ms": self.latency_ms,
            "confidence": self.confidence,
            "neighbours": dict(self.neighbours) if self.neighbours is not None else None,
            "settled": dict(self.settled) if self.settled is not None else None,
            "bank": dict(self.bank) if self.bank is not None else None,
        }


@dataclass(frozen=True, slots=True)
class FieldScore:
    """Accuracy, macro-F1 and the confusion matrix of one field (invalid outputs count as wrong)."""

    accuracy: float
    macro_f1: float
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: gold label, columns: predicted label (+ "invalid")


def _percentile(values: Sequence[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def score_field(items: Sequence[EvaluationItem], name: str, vocabulary: Sequence[str] = ()) -> FieldScore:
    """Score one field; labels are the vocabulary plus any label seen in gold or predictions."""
    pairs = [(item.gold[name], (item.predicted or {}).get(name)) for item in items if name in item.gold]
    seen = {g for g, _ in pairs} | {p for _, p in pairs if p is not None}
    labels = tuple(vocabulary) + tuple(sorted(seen - set(vocabulary)))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    for gold, predicted in pairs:
        matrix[index[gold]][index[predicted] if predicted is not None else len(labels)] += 1
    correct = sum(1 for g, p in pairs if g == p)
    f1_scores = []
    for label in labels:
        tp = sum(1 for g, p in pairs if g == label and p == label)
        fp = sum(1 for g, p in pairs if g != label and p == label)
        fn = sum(1 for g, p in pairs if g == label and p != label)
        if tp + fp + fn == 0:
            continue  # a label nobody used does not weigh on the macro average
        f1_scores.append(2 * tp / (2 * tp + fp + fn))
    return FieldScore(
        accuracy=correct / len(pairs) if pairs else 0.0,
        macro_f1=sum(f1_scores) / len(f1_scores) if f1_scores else 0.0,
        labels=labels,
        confusion=tuple(tuple(row) for row in matrix),
    )


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """Every figure of one evaluation run."""

    items: int
    invalid: int
    fields: Mapping[str, FieldScore]
    latency_p50_ms: float
    latency_p95_ms: float
    prompt_tokens: int
    completion_tokens: int
    errors: Mapping[str, int] = field(default_factory=dict)

    @property
    def invalid_share(self) -> float:
        """Share of tickets with no valid answer."""
        return self.invalid / self.items if self.items else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "items": self.items,
            "invalid": self.invalid,
            "invalid_share": self.invalid_share,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "errors": dict(self.errors),
            "fields": {
                name: {
                    "accuracy": s.accuracy,
                    "macro_f1": s.macro_f1,
                    "labels": list(s.labels),
                    "confusion": [list(row) for row in s.confusion],
                }
                for name, s in self.fields.items()
            },
        }


def build_report(items: Sequence[EvaluationItem], vocabularies: Mapping[str, Sequence[str]]) -> EvaluationReport:
    latencies = [item.latency_ms for item in items]
    return EvaluationReport(
        items=len(items),
        invalid=sum(1 for item in items if item.predicted is None),
        fields={name: score_field(items, name, vocabularies.get(name, ())) for name in EVALUATED_FIELDS},
        latency_p50_ms=_percentile(latencies, 0.5),
        latency_p95_ms=_percentile(latencies, 0.95),
        prompt_tokens=sum(item.prompt_tokens or 0 for item in items),
        completion_tokens=sum(item.completion_tokens or 0 for item in items),
        errors=dict(Counter(item.error_class for item in items if item.error_class)),
    )


@dataclass(frozen=True, slots=True)
class EvaluationRun:
    """A stored evaluation of one prompt version on one labelled file."""

    id: UUID
    prompt_id: UUID
    prompt_name: str
    prompt_version: int
    model: str
    dataset: str
    dataset_sha256: str
    report: Mapping[str, Any]
    created_at: datetime
