"""Evaluate prompt versions on a labelled file through the production LLM client and validation path."""

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from triage_pipeline.application.triage import error_class_of
from triage_pipeline.domain.evaluation import (
    EVALUATED_FIELDS,
    EvaluationItem,
    EvaluationReport,
    EvaluationRun,
    LabelledTicket,
    build_report,
)
from triage_pipeline.domain.exceptions import NoActivePrompt, NotFound
from triage_pipeline.domain.ports import Clock, LlmGateway, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, Prompt
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
            with ThreadPoolExecutor(max_workers=max(1, command.concurrency)) as pool:
                items = []
                for item in pool.map(self._one, [prompt] * len(command.items), command.items):
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
                report={**report.as_dict(), "corrections": corrections},
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

    def _one(self, prompt: Prompt, ticket: LabelledTicket) -> EvaluationItem:
        started = time.monotonic()
        try:
            answer = self._llm.triage(prompt.render(ticket.title, ticket.description))
        except Exception as exc:  # one bad ticket is an invalid output, never a crashed evaluation
            return EvaluationItem(
                external_id=ticket.external_id,
                gold=ticket.labels,
                predicted=None,
                error_class=error_class_of(exc),
                latency_ms=int((time.monotonic() - started) * 1000),
            )
        predicted = {k: str(v) for k, v in answer.answer.as_dict().items() if k != "summary"}
        return EvaluationItem(
            external_id=ticket.external_id,
            gold=ticket.labels,
            predicted=predicted,
            error_class=None,
            latency_ms=int((time.monotonic() - started) * 1000),
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
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
    corrections = results[0].corrections if results else {}
    if corrections.get("corrected_tickets"):
        summary = (
            f"{corrections['corrected_tickets']} tickets: category {_pct(corrections['category_accuracy'])}, "
            f"priority {_pct(corrections['priority_accuracy'])}"
        )
        rows.append(["production vs human corrections", *(summary for _ in results)])
    return rows
