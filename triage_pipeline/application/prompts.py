"""Prompt management: list versions, add a version (never edit one), activate one atomically with an audit row."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import uuid4

from triage_pipeline.domain import promotion_gate
from triage_pipeline.domain.exceptions import InvalidPrompt, NoActivePrompt, NotFound, PromotionRefused
from triage_pipeline.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, FEW_SHOT_K_MAX, Prompt

SchemaBuilder = Callable[[Sequence[str]], dict[str, Any]]
ALLOWED_OPTIONS = frozenset({"temperature", "seed", "num_predict", "top_p", "top_k", "num_ctx", "repeat_penalty"})


@dataclass(frozen=True, slots=True)
class ListPromptsQuery:
    name: str = DEFAULT_PROMPT_NAME


class ListPrompts:
    """Versions oldest first."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: ListPromptsQuery) -> list[Prompt]:
        with self._uow() as uow:
            return uow.prompts.versions(command.name)


@dataclass(frozen=True, slots=True)
class AddPromptCommand:
    """A new version; unset fields are copied from the active version of the name."""

    name: str = DEFAULT_PROMPT_NAME
    system_text: str | None = None
    user_template: str | None = None
    categories: Sequence[str] | None = None
    model_options: Mapping[str, Any] | None = None
    description: str = ""
    activate: bool = False
    actor: str = "cli"
    few_shot_k: int | None = None
    review_threshold: float | None = None
    example_bank: bool | None = None


@dataclass(frozen=True, slots=True)
class ActivatePromptCommand:
    """Make one version the active one of its name; `force` overrides the promotion gate (recorded)."""

    version: int
    name: str = DEFAULT_PROMPT_NAME
    actor: str = "cli"
    force: bool = False


def _of(prompt: Prompt | None) -> Prompt:
    assert prompt is not None  # checked by the caller: a field is copied only when there is a base
    return prompt


def _activate(
    uow: UnitOfWork,
    prompt: Prompt,
    actor: str,
    clock: Clock,
    *,
    forced: bool = False,
    gate: Mapping[str, Any] | None = None,
) -> None:
    previous = uow.prompts.active(prompt.name)
    uow.prompts.activate(prompt.name, prompt.version)
    uow.activations.add(prompt, previous.version if previous else None, actor, clock.now(), forced=forced, gate=gate)


class AddPromptVersion:
    """Store a new immutable version (optionally activating it in the same transaction)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, schema_for: SchemaBuilder) -> None:
        self._uow = uow
        self._clock = clock
        self._schema_for = schema_for

    def execute(self, command: AddPromptCommand) -> Prompt:
        """NoActivePrompt or InvalidPrompt when the new version could not be used.

        NoActivePrompt: the system text, template or categories are left to copy and the name has no active version.
        InvalidPrompt: an empty system text or category list, a user template without `{ticket}`, duplicate or
        blank categories, model options outside `ALLOWED_OPTIONS`, or the example bank without few-shot.
        """
        with self._uow() as uow:
            base = uow.prompts.active(command.name)
            if base is None and None in (command.system_text, command.user_template, command.categories):
                raise NoActivePrompt(command.name)
            system_text = command.system_text if command.system_text is not None else _of(base).system_text
            user_template = command.user_template if command.user_template is not None else _of(base).user_template
            categories = tuple(command.categories) if command.categories is not None else _of(base).categories
            options = dict(
                command.model_options if command.model_options is not None else base.model_options if base else {}
            )
            if not system_text.strip() or not categories:
                raise InvalidPrompt("the system text and the categories must not be empty")
            if "{ticket}" not in user_template:
                raise InvalidPrompt("the user template must contain the {ticket} placeholder")
            if len(set(categories)) != len(categories) or any(not c.strip() for c in categories):
                raise InvalidPrompt("categories must be distinct, non-empty labels")
            unknown = set(options) - ALLOWED_OPTIONS
            if unknown:
                raise InvalidPrompt(f"unknown model options: {', '.join(sorted(unknown))}")
            few_shot_k = command.few_shot_k if command.few_shot_k is not None else base.few_shot_k if base else 0
            threshold = (
                command.review_threshold
                if command.review_threshold is not None
                else base.review_threshold
                if base
                else 0.0
            )
            example_bank = (
                command.example_bank if command.example_bank is not None else base.example_bank if base else False
            )
            if example_bank and few_shot_k == 0:
                raise InvalidPrompt(
                    "example_bank needs few_shot_k > 0 (the bank settles beside the neighbours' vote):"
                    " set few_shot_k, or example_bank false"
                )
            if not 0 <= few_shot_k <= FEW_SHOT_K_MAX:
                raise InvalidPrompt(f"few_shot_k must be between 0 and {FEW_SHOT_K_MAX}, got {few_shot_k}")
            if not 0.0 <= threshold <= 1.0:
                raise InvalidPrompt(f"review_threshold must be between 0 and 1, got {threshold}")
            prompt = Prompt(
                id=uuid4(),
                name=command.name,
                version=uow.prompts.next_version(command.name),
                system_text=system_text,
                user_template=user_template,
                output_schema=self._schema_for(categories),
                model_options=dict(options),
                is_active=False,
                created_at=self._clock.now(),
                description=command.description,
                categories=tuple(categories),
                few_shot_k=few_shot_k,
                review_threshold=threshold,
                example_bank=example_bank,
            )
            uow.prompts.add(prompt)
            if command.activate:
                _activate(uow, prompt, command.actor, self._clock)
            uow.commit()
        return replace(prompt, is_active=command.activate)


class ActivatePrompt:
    """Switch the active version; the switch and its audit row commit together."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: ActivatePromptCommand) -> Prompt:
        """The now-active version; NotFound for an unknown version; PromotionRefused (with the figures) when
        it evaluated worse than the active version on a file both were evaluated on, unless `force`."""
        with self._uow() as uow:
            prompt = uow.prompts.by_version(command.name, command.version)
            if prompt is None:
                raise NotFound("prompt version", f"{command.name} v{command.version}")
            active = uow.prompts.active(command.name)
            comparisons: list[dict[str, Any]] = []
            if active is not None and active.version != prompt.version:
                comparisons = promotion_gate.compare(
                    uow.evaluations.list(command.name, [prompt.version]),
                    uow.evaluations.list(command.name, [active.version]),
                )
            refused = any(c["worse"] for c in comparisons)
            if refused and not command.force:
                assert active is not None
                raise PromotionRefused(prompt.version, active.version, comparisons)
            _activate(
                uow,
                prompt,
                command.actor,
                self._clock,
                forced=refused,
                gate={"comparisons": comparisons, "overridden": refused},
            )
            uow.commit()
            active = uow.prompts.active(command.name)
        assert active is not None
        return active
