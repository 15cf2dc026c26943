"""Labelled examples: import many (a result per item), list, delete; owners see their own and shared ones."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID, uuid4

from triage_pipeline.domain.example import ExampleSource, TriageExample, text_key
from triage_pipeline.domain.exceptions import NoActivePrompt, NotFound
from triage_pipeline.domain.ports import Clock, UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME
from triage_pipeline.domain.ticket import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH
from triage_pipeline.domain.triage_answer import Priority, Sentiment

LANGUAGE_LENGTH = 2
REFERENCE_MAX_LENGTH = 500


@dataclass(frozen=True, slots=True)
class NewExample:
    """One labelled ticket to learn from, as a client or a file gives it (labels not checked yet)."""

    title: str
    description: str
    category: str
    priority: str
    sentiment: str | None = None
    language: str | None = None
    reference: str = ""


class ExampleItemStatus(StrEnum):
    CREATED = "CREATED"
    DUPLICATE = "DUPLICATE"
    """The same text is already an example of this owner (or shared): nothing is added."""
    INVALID = "INVALID"
    """A label outside the active prompt's vocabulary, or an empty text."""


@dataclass(frozen=True, slots=True)
class ExampleItemResult:
    """One item's outcome: the example's id (CREATED, or the one it duplicates), or what is wrong with it."""

    status: ExampleItemStatus
    example_id: UUID | None = None
    field: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ImportExamplesCommand:
    """Add these examples to `owner_id`'s bank (None: the shared bank, an admin's decision)."""

    items: Sequence[NewExample]
    owner_id: UUID | None
    prompt_name: str = DEFAULT_PROMPT_NAME


def _problem(item: NewExample, categories: tuple[str, ...]) -> tuple[str, str] | None:
    """(field, message) of the first thing wrong with an item, or None."""
    if not item.title.strip() and not item.description.strip():
        return "title", "an example needs a title or a description"
    if len(item.title) > TITLE_MAX_LENGTH:
        return "title", f"the title has {len(item.title)} characters, over {TITLE_MAX_LENGTH}"
    if len(item.description) > DESCRIPTION_MAX_LENGTH:
        return "description", f"the description has {len(item.description)} characters, over {DESCRIPTION_MAX_LENGTH}"
    if len(item.reference) > REFERENCE_MAX_LENGTH:
        return "reference", f"the reference has {len(item.reference)} characters, over {REFERENCE_MAX_LENGTH}"
    if item.category not in categories:
        return "category", f"category {item.category!r} is not one of {', '.join(categories)}"
    if item.priority not in Priority.__members__.values():
        return "priority", f"priority {item.priority!r} is not one of {', '.join(p.value for p in Priority)}"
    if item.sentiment is not None and item.sentiment not in Sentiment.__members__.values():
        return "sentiment", f"sentiment {item.sentiment!r} is not one of {', '.join(s.value for s in Sentiment)}"
    if item.language is not None and not (len(item.language) == LANGUAGE_LENGTH and item.language.isalpha()):
        return "language", f"language {item.language!r} is not an ISO 639-1 code such as en"
    return None


def _after_race(result: ExampleItemResult, stored: set[UUID], raced: dict[str, UUID], key: str) -> ExampleItemResult:
    """A result pointing at an example that was not stored is a DUPLICATE of the one stored first."""
    if result.status is not ExampleItemStatus.INVALID and result.example_id not in stored and key in raced:
        return ExampleItemResult(ExampleItemStatus.DUPLICATE, raced[key])
    return result


class ImportExamples:
    """Validate every item against the active prompt's vocabulary; store the valid new ones in one transaction.

    An invalid item or a duplicate never holds back the others; nothing is stored if the database fails.
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: ImportExamplesCommand) -> list[ExampleItemResult]:
        """One result per item, in order. NotFound for an unknown owner, NoActivePrompt without a vocabulary."""
        now = self._clock.now()
        with self._uow() as uow:
            if command.owner_id is not None and uow.owners.get(command.owner_id) is None:
                raise NotFound("owner", command.owner_id)
            prompt = uow.prompts.active(command.prompt_name)
            if prompt is None:
                raise NoActivePrompt(command.prompt_name)
            keys = [text_key(item.title, item.description) for item in command.items]
            existing = uow.examples.ids_by_text_key(command.owner_id, keys)
            results: list[ExampleItemResult] = []
            new: list[TriageExample] = []
            for item, key in zip(command.items, keys, strict=True):
                problem = _problem(item, prompt.categories)
                if problem is not None:
                    results.append(ExampleItemResult(ExampleItemStatus.INVALID, field=problem[0], error=problem[1]))
                    continue
                if key in existing:
                    results.append(ExampleItemResult(ExampleItemStatus.DUPLICATE, existing[key]))
                    continue
                example = TriageExample(
                    id=uuid4(),
                    owner_id=command.owner_id,
                    title=item.title,
                    description=item.description,
                    category=item.category,
                    priority=Priority(item.priority),
                    source=ExampleSource.IMPORT,
                    created_at=now,
                    sentiment=item.sentiment,
                    language=item.language,
                    reference=item.reference,
                )
                existing[key] = example.id  # a repeat inside the same import is a duplicate of this one
                new.append(example)
                results.append(ExampleItemResult(ExampleItemStatus.CREATED, example.id))
            stored = uow.examples.add_many(new)
            if len(stored) < len(new):  # a concurrent import added some of these texts first
                raced = uow.examples.ids_by_text_key(
                    command.owner_id, [text_key(e.title, e.description) for e in new if e.id not in stored]
                )
                results = [_after_race(result, stored, raced, key) for result, key in zip(results, keys, strict=True)]
            uow.commit()
        return results


@dataclass(frozen=True, slots=True)
class ListExamplesQuery:
    """`owner_id` set: that owner's and the shared examples; None: every example (admins), or only the
    shared ones with `shared_only`."""

    owner_id: UUID | None
    shared_only: bool = False
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ExamplePage:
    """Examples newest first, and the cursor of the next page (None on the last)."""

    items: list[TriageExample]
    next_cursor: str | None


class ListExamples:
    """The example bank a caller may see, one page at a time."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: ListExamplesQuery) -> ExamplePage:
        """Newest first; InvalidCursor for a cursor that is not one of ours."""
        with self._uow() as uow:
            items, cursor = uow.examples.page(
                owner_id=command.owner_id, shared_only=command.shared_only, limit=command.limit, cursor=command.cursor
            )
        return ExamplePage(items, cursor)


@dataclass(frozen=True, slots=True)
class GetExampleQuery:
    """`visible_to` None: an admin, who sees every example; an owner sees its own and the shared ones."""

    example_id: UUID
    visible_to: UUID | None = None


class GetExample:
    """One example, as visible to the caller (another owner's answers NotFound, like a missing one)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: GetExampleQuery) -> TriageExample:
        """NotFound for an unknown example and for another owner's."""
        with self._uow() as uow:
            example = uow.examples.get(command.example_id)
        if example is None or (command.visible_to is not None and example.owner_id not in (None, command.visible_to)):
            raise NotFound("example", command.example_id)
        return example


@dataclass(frozen=True, slots=True)
class DeleteExampleCommand:
    """`caller_owner_id` None: an admin, who may delete any example; an owner deletes only its own."""

    example_id: UUID
    caller_owner_id: UUID | None


class DeleteExample:
    """Remove an example from the bank; corrections and logs that named it keep their own records."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def execute(self, command: DeleteExampleCommand) -> None:
        """NotFound for an unknown example and for one the caller may not touch (another owner's, or shared)."""
        with self._uow() as uow:
            example = uow.examples.get(command.example_id)
            if example is None or (command.caller_owner_id is not None and example.owner_id != command.caller_owner_id):
                raise NotFound("example", command.example_id)
            uow.examples.delete(example.id)
            uow.commit()


@dataclass(frozen=True, slots=True)
class SeedExamplesCommand:
    """The shipped starter examples of the file `source`, in the file's order."""

    source: str
    items: Sequence[NewExample]
    prompt_name: str = DEFAULT_PROMPT_NAME


class SeedSharedExamples:
    """Import into the shared bank the starter examples that come after the last one imported before.

    The shipped file only grows at its end. The last reference imported is kept (`example_seeds`), so a new
    release's examples reach an existing bank at its next start and examples an admin deleted stay deleted.
    A bank seeded before that mark existed (or loaded with `triage examples import`, whose references
    differ) is placed by text: after the last of the file's examples it holds.
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._import = ImportExamples(uow, clock)
        self._uow = uow

    def execute(self, command: SeedExamplesCommand) -> int:
        """How many examples were added (0: every one was seeded before)."""
        items = list(command.items)
        if not items:
            return 0
        with self._uow() as uow:
            mark = uow.examples.seed_mark(command.source)
            references = [item.reference for item in items]
            if mark in references:
                last_seeded = references.index(mark)
            else:
                keys = [text_key(i.title, i.description) for i in items]
                present = uow.examples.ids_by_text_key(None, keys)
                last_seeded = max((i for i, key in enumerate(keys) if key in present), default=-1)
        new = items[last_seeded + 1 :]
        results = self._import.execute(ImportExamplesCommand(new, None, command.prompt_name)) if new else []
        with self._uow() as uow:
            uow.examples.set_seed_mark(command.source, references[-1])
            uow.commit()
        return sum(1 for r in results if r.status is ExampleItemStatus.CREATED)
