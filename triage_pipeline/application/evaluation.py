"""Evaluate prompt versions on a labelled file through the production LLM client and validation path."""

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from triage_pipeline.application.triage import error_class_of
from triage_pipeline.domain.calibration import ScoredAnswer, calibration_report
from triage_pipeline.domain.confidence import settle_answer
from triage_pipeline.domain.evaluation import (
    EVALUATED_FIELDS,
    EvaluationItem,
    EvaluationReport,
    EvaluationRun,
    LabelledTicket,
    build_report,
)
from triage_pipeline.domain.example import NeighbourVote, TriageExample
from triage_pipeline.domain.example_classifier import BankOpinion
from triage_pipeline.domain.exceptions import NoActivePrompt, NotFound
from triage_pipeline.domain.ports import Clock, ExampleQuery, LlmGateway, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, VOTE_K, Prompt
from triage_pipeline.domain.triage_answer import Priority, Sentiment

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class EvaluateCommand:
    """Evaluate these versions (none: the active one) on labelled tickets."""

    items: Sequence[LabelledTicket]
    dataset: str
    dataset_sha256: str
    versions: Sequence[int] = ()
    prompt_name: str = DEFAULT_PROMPT_NAME
    concurrency: int = 4
    on_progress: Progress | None = None
    target_precision: float = 0.9
    owner_id: UUID | None = None
    """Examples of this owner and the shared ones are used; None: the shared ones only."""


@dataclass(frozen=True, slots=True)
class VersionResult:
    """The report of one prompt version, and accuracy of production answers against human corrections."""

    prompt: Prompt
    model: str
    report: EvaluationReport
    run: EvaluationRun
    corrections: dict[str, Any]


class EvaluatePrompts:
    """Run every labelled ticket through each version; an LLM fault on one ticket counts as invalid."""

    def __init__(self, uow: UnitOfWorkFactory, llm: LlmGateway, clock: Clock) -> None:
        self._uow = uow
        self._llm = llm
        self._clock = clock

    def execute(self, command: EvaluateCommand) -> list[VersionResult]:
        """One result per version, in the order asked; each is stored as an evaluation run."""
        prompts = self._prompts(command)
        corrections = self._corrections_accuracy()
        total = len(prompts) * len(command.items)
        done = 0
        results = []
        for prompt in prompts:
            neighbours = self._neighbours(prompt, command)
            with ThreadPoolExecutor(max_workers=max(1, command.concurrency)) as pool:
                items = []
                for item in pool.map(self._one, [prompt] * len(command.items), command.items, neighbours):
                    items.append(item)
                    done += 1
                    if command.on_progress:
                        command.on_progress(done, total)
            report = build_report(
                items,
                {
                    "category": prompt.categories,
                    "priority": [p.value for p in Priority],
                    "sentiment": [s.value for s in Sentiment],
                },
            )
            run = EvaluationRun(
                id=uuid4(),
                prompt_id=prompt.id,
                prompt_name=prompt.name,
                prompt_version=prompt.version,
                model=self._llm.model,
                dataset=command.dataset,
                dataset_sha256=command.dataset_sha256,
                report={
                    **report.as_dict(),
                    "corrections": corrections,
                    "few_shot_k": prompt.few_shot_k,
                    "review_threshold": prompt.review_threshold,
                    "calibration": calibration_report(
                        [ScoredAnswer(i.confidence or 0.0, _right(i, "category")) for i in items if i.predicted],
                        invalid=report.invalid,
                        threshold=prompt.review_threshold,
                        target_precision=command.target_precision,
                    ),
                    "floors": floors(items),
                    "answers": [item.as_dict() for item in items],
                },
                created_at=self._clock.now(),
            )
            with self._uow() as uow:
                uow.evaluations.add(run)
                uow.commit()
            results.append(VersionResult(prompt, self._llm.model, report, run, corrections))
        return results

    def _prompts(self, command: EvaluateCommand) -> list[Prompt]:
        with self._uow() as uow:
            if not command.versions:
                active = uow.prompts.active(command.prompt_name)
                if active is None:
                    raise NoActivePrompt(command.prompt_name)
                return [active]
            prompts = []
            for version in command.versions:
                prompt = uow.prompts.by_version(command.prompt_name, version)
                if prompt is None:
                    raise NotFound("prompt version", f"{command.prompt_name} v{version}")
                prompts.append(prompt)
            return prompts

    def _neighbours(self, prompt: Prompt, command: EvaluateCommand) -> list[tuple[list[TriageExample], BankOpinion]]:
        """The nearest examples of every ticket in one statement and what the example bank's classifier says
        of it, never learning from the ticket itself (same text)."""
        keys = [uuid4() for _ in command.items]
        queries = [
            ExampleQuery(key, command.owner_id, item.title, item.description)
            for key, item in zip(keys, command.items, strict=True)
        ]
        with self._uow() as uow:
            found = uow.examples.nearest(
                queries, max(prompt.neighbours_to_retrieve, VOTE_K), prompt.categories, exclude_same_text=True
            )
            # Like the vote's floor, the bank's reference is measured for every version, few-shot or not.
            counts = uow.examples.bank_counts(queries, exclude_same_text=True)
        return [
            (
                found.get(key, []),
                BankOpinion.of(counts[key], prompt.categories) if key in counts else BankOpinion(),
            )
            for key, item in zip(keys, command.items, strict=True)
        ]

    def _one(
        self, prompt: Prompt, ticket: LabelledTicket, evidence: tuple[list[TriageExample], BankOpinion]
    ) -> EvaluationItem:
        started = time.monotonic()
        neighbours, bank = evidence
        # The floor: what the vote of the nearest VOTE_K examples alone would answer, without the LLM.
        votes = {name: NeighbourVote.of_examples(neighbours[:VOTE_K], name) for name in ("category", "priority")}
        floor = {name: vote.winner for name, vote in votes.items() if vote is not None and vote.winner is not None}
        # A reference measured like the floor: the example bank's classifier alone.
        bank_alone = {
            name: max(probabilities, key=probabilities.__getitem__)
            for name, probabilities in (("category", bank.category), ("priority", bank.priority))
            if probabilities
        }
        examples = neighbours[: prompt.neighbours_to_retrieve]  # as production: the first k shown, all vote
        if not examples or not prompt.example_bank:
            bank = BankOpinion()  # as production: only a version that settles with the bank learns from it
        try:
            answer = self._llm.triage(prompt.render(ticket.title, ticket.description, examples))
        except Exception as exc:  # one bad ticket is an invalid output, never a crashed evaluation
            return EvaluationItem(
                external_id=ticket.external_id,
                gold=ticket.labels,
                predicted=None,
                error_class=error_class_of(exc),
                latency_ms=int((time.monotonic() - started) * 1000),
                neighbours=floor,
                bank=bank_alone,
            )
        settled = settle_answer(
            answer.answer,
            category_probability=answer.category_probability,
            priority_probability=answer.priority_probability,
            category_distribution=answer.category_distribution,
            priority_distribution=answer.priority_distribution,
            examples=examples,
            category_bank=bank.category,
            priority_bank=bank.priority,
            vocabulary=prompt.categories,
            review_threshold=prompt.review_threshold,
        )
        predicted = {k: str(v) for k, v in settled.answer.as_dict().items() if k not in ("summary", "confidence")}
        return EvaluationItem(
            external_id=ticket.external_id,
            gold=ticket.labels,
            predicted=predicted,
            error_class=None,
            latency_ms=int((time.monotonic() - started) * 1000),
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            confidence=settled.answer.confidence,
            neighbours=floor,
            settled=settled.log,
            bank=bank_alone,
        )

    def _corrections_accuracy(self) -> dict[str, Any]:
        with self._uow() as uow:
            pairs = uow.corrections.latest_per_ticket()
        n = len(pairs)
        category = sum(1 for c, _ in pairs if c.model_category == c.category)
        priority = sum(1 for c, _ in pairs if c.model_priority == c.priority.value)
        return {
            "corrected_tickets": n,
            "category_accuracy": category / n if n else None,
            "priority_accuracy": priority / n if n else None,
        }


@dataclass(frozen=True, slots=True)
class ListEvaluationsQuery:
    """An empty `versions` means every version of `prompt_name`."""

    prompt_name: str = DEFAULT_PROMPT_NAME
    versions: Sequence[int] = ()


class ListEvaluations:
    """Stored evaluation runs, newest first."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: ListEvaluationsQuery) -> list[EvaluationRun]:
        with self._uow() as uow:
            return uow.evaluations.list(command.prompt_name, command.versions)


def _right(item: EvaluationItem, name: str) -> bool:
    return item.predicted is not None and item.predicted.get(name) == item.gold.get(name)


def floors(items: Sequence[EvaluationItem]) -> dict[str, Any]:
    """Two baselines measured on the same tickets: always the most common gold label of the file, and the
    similarity-weighted vote of the nearest examples alone (no LLM); and, as a reference, the example bank's
    classifier alone (no LLM either)."""
    result: dict[str, Any] = {}
    for name in ("category", "priority"):
        gold = [item.gold[name] for item in items if name in item.gold]
        if not gold:
            continue
        majority, count = Counter(gold).most_common(1)[0]
        knn_right = sum(
            1 for item in items if name in item.gold and (item.neighbours or {}).get(name) == item.gold[name]
        )
        with_bank = any(item.bank for item in items)
        bank_right = sum(1 for item in items if name in item.gold and (item.bank or {}).get(name) == item.gold[name])
        result[name] = {
            "majority_label": majority,
            "majority_accuracy": count / len(gold),
            "neighbour_vote_accuracy": knn_right / len(gold),
            "bank_accuracy": bank_right / len(gold) if with_bank else None,
        }
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def comparison_rows(results: Sequence[VersionResult]) -> list[list[str]]:
    """The side-by-side figures of evaluated versions: one row per figure, one column per version."""
    rows: list[list[str]] = []
    for name in EVALUATED_FIELDS:
        rows.append([f"{name} accuracy", *(_pct(r.report.fields[name].accuracy) for r in results)])
        if name in ("category", "priority"):
            rows.append([f"{name} macro-F1", *(f"{r.report.fields[name].macro_f1:.3f}" for r in results)])
    rows += [
        ["invalid outputs", *(_pct(r.report.invalid_share) for r in results)],
        ["latency p50 / p95 ms", *(f"{r.report.latency_p50_ms:.0f} / {r.report.latency_p95_ms:.0f}" for r in results)],
        ["tokens in / out", *(f"{r.report.prompt_tokens} / {r.report.completion_tokens}" for r in results)],
        ["errors", *(json.dumps(dict(r.report.errors)) for r in results)],
        ["model", *(r.model for r in results)],
    ]
    rows += confidence_rows(results)
    corrections = results[0].corrections if results else {}
    if corrections.get("corrected_tickets"):
        summary = (
            f"{corrections['corrected_tickets']} tickets: category {_pct(corrections['category_accuracy'])}, "
            f"priority {_pct(corrections['priority_accuracy'])}"
        )
        rows.append(["production vs human corrections", *(summary for _ in results)])
    return rows


def confidence_rows(results: Sequence[VersionResult]) -> list[list[str]]:
    """The figures that say whether confidence can be trusted, and the two floors, one column per version."""

    def calibration(r: VersionResult) -> dict[str, Any]:
        return dict(r.run.report.get("calibration") or {})

    def split(r: VersionResult) -> str:
        at = calibration(r).get("at_threshold") or {}
        counts = f"{at.get('auto_right', 0)} / {at.get('auto_wrong', 0)} / {at.get('review', 0)}"
        return f"{counts} (t={r.prompt.review_threshold:g})"

    def precision(r: VersionResult) -> str:
        at = calibration(r).get("at_threshold") or {}
        return f"{_pct(at.get('precision'))} / {_pct(at.get('coverage'))}"

    def best(r: VersionResult) -> str:
        found = calibration(r).get("lowest_threshold_for_target")
        if not found:
            return "none reaches it"
        return f"t={found['threshold']:.3f}: coverage {_pct(found['coverage'])}, precision {_pct(found['precision'])}"

    def floor(r: VersionResult, name: str, figure: str) -> str:
        values = (r.run.report.get("floors") or {}).get(name) or {}
        return _pct(values.get(figure))

    target = calibration(results[0]).get("target_precision", 0.9) if results else 0.9
    return [
        ["few-shot examples (k)", *(str(r.prompt.few_shot_k) for r in results)],
        ["auto-applied right / wrong / review", *(split(r) for r in results)],
        ["auto-applied precision / coverage", *(precision(r) for r in results)],
        ["ECE (category confidence)", *(f"{calibration(r).get('ece', 0.0):.3f}" for r in results)],
        [f"lowest threshold for precision >= {target:.0%}", *(best(r) for r in results)],
        [
            "floor: most common label (category / priority)",
            *(
                f"{floor(r, 'category', 'majority_accuracy')} / {floor(r, 'priority', 'majority_accuracy')}"
                for r in results
            ),
        ],
        [
            "floor: nearest-neighbour vote (category / priority)",
            *(
                f"{floor(r, 'category', 'neighbour_vote_accuracy')} / {floor(r, 'priority', 'neighbour_vote_accuracy')}"
                for r in results
            ),
        ],
        [
            "reference: example bank classifier alone (category / priority)",
            *(f"{floor(r, 'category', 'bank_accuracy')} / {floor(r, 'priority', 'bank_accuracy')}" for r in results),
        ],
    ]


def sweep_rows(result: VersionResult) -> list[list[str]]:
    """The threshold sweep of one version: coverage and precision of auto-applied answers per threshold."""
    rows = []
    for point in (result.run.report.get("calibration") or {}).get("sweep", []):
        rows.append(
            [f"{point['threshold']:.2f}", _pct(point["coverage"]), _pct(point["precision"]), str(point["review"])]
        )
    return rows
