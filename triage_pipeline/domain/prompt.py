"""The Prompt entity: one immutable version of a named triage prompt."""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from triage_pipeline.domain.example import TriageExample

DEFAULT_PROMPT_NAME = "triage"
FEW_SHOT_K_MAX = 20
VOTE_K = 5
"""With few-shot on, at least this many nearest examples are retrieved and vote on the labels, even when the
prompt shows fewer: on the shipped evaluation set the vote of 5 beat that of 3 (58% against 54% category
accuracy) while every example shown costs prompt tokens (latency)."""
EXAMPLE_DESCRIPTION_MAX_LENGTH = 120
"""An example's description is cut to this in the prompt: its start says what it is about, and every
character of every example is prompt the model must read before it answers (latency)."""
EXAMPLES_PLACEHOLDER = "{examples}"
_PLACEHOLDERS = re.compile(r"\{ticket\}|\{examples\}")


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """What is sent to the LLM for one ticket."""

    system: str
    user: str
    output_schema: Mapping[str, Any]
    options: Mapping[str, Any]
    categories: tuple[str, ...]


def ticket_as_data(title: str, description: str) -> str:
    """The ticket text as a JSON object that cannot close the data block it is placed in."""
    encoded = json.dumps({"title": title, "description": description}, ensure_ascii=False)
    # `<` and `>` are escaped so the text can never forge the closing tag of its data block.
    return encoded.replace("<", "\\u003c").replace(">", "\\u003e")


def examples_as_data(examples: Sequence[TriageExample]) -> str:
    """Solved tickets as a data block, one JSON object per line, the most similar last (nearest the ticket).

    Only the labels a person gave are shown; like the ticket, the text cannot close its block.
    """
    lines = []
    for example in reversed(examples):
        solved = {
            "title": example.title,
            "description": example.description[:EXAMPLE_DESCRIPTION_MAX_LENGTH],
            "category": example.category,
            "priority": example.priority.value,
        }
        lines.append(json.dumps(solved, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e"))
    return "<solved_tickets>\n" + "\n".join(lines) + "\n</solved_tickets>"


@dataclass(frozen=True, slots=True)
class Prompt:
    """A versioned prompt; versions are never edited, a new version is a new row."""

    id: UUID
    name: str
    version: int
    system_text: str
    user_template: str
    output_schema: Mapping[str, Any]
    model_options: Mapping[str, Any]
    is_active: bool
    created_at: datetime
    description: str = ""
    categories: tuple[str, ...] = field(default=())
    few_shot_k: int = 0
    """How many of the most similar labelled examples the prompt shows (0: none)."""
    review_threshold: float = 0.0
    """Answers whose confidence is below this wait for a person (`NEEDS_REVIEW`)."""
    example_bank: bool = False
    """Settle answers with the example bank's classifier too (`domain.confidence`); only with few-shot on,
    since it needs the neighbours' vote beside it."""

    @property
    def neighbours_to_retrieve(self) -> int:
        """How many nearest examples a ticket needs: none without few-shot, else the shown and the voting ones."""
        return max(self.few_shot_k, VOTE_K) if self.few_shot_k > 0 else 0

    def render(self, title: str, description: str, examples: Sequence[TriageExample] = ()) -> RenderedPrompt:
        """Fill the user template with the ticket (`{ticket}`) and the first `few_shot_k` of the examples
        (`{examples}`, most similar first), as data.

        Without examples `{examples}` becomes empty; a template without `{examples}` gets them before it.
        """
        shown = examples[: self.few_shot_k] if self.few_shot_k else examples
        block = examples_as_data(shown) if shown else ""
        template = self.user_template
        if EXAMPLES_PLACEHOLDER not in template and block:
            template = "{examples}\n" + template
        values = {"{ticket}": ticket_as_data(title, description), EXAMPLES_PLACEHOLDER: block}
        # One pass, so a ticket or example that contains a placeholder's text is never filled in itself.
        user = _PLACEHOLDERS.sub(lambda match: values[match.group(0)], template)
        return RenderedPrompt(
            system=self.system_text,
            user=user,
            output_schema=self.output_schema,
            options=self.model_options,
            categories=self.categories,
        )
