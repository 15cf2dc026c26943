"""The Prompt entity: one immutable version of a named triage prompt."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

DEFAULT_PROMPT_NAME = "triage"


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

    def render(self, title: str, description: str) -> RenderedPrompt:
        """Fill the user template with the ticket, delimited as data (`{ticket}` placeholder)."""
        user = self.user_template.replace("{ticket}", ticket_as_data(title, description))
        return RenderedPrompt(
            system=self.system_text,
            user=user,
            output_schema=self.output_schema,
            options=self.model_options,
            categories=self.categories,
        )
