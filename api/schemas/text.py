"""Text constraints shared by request DTOs: what PostgreSQL can store, and no control characters in ids."""

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# Documented in the OpenAPI schema; the validators below enforce the same rules with clearer messages.
NUL_FREE_PATTERN = r"^[^\u0000]*$"
NO_CONTROL_CHARACTERS_PATTERN = r"^[^\u0000-\u001f\u007f]*$"


def _storable(value: str) -> str:
    """Reject NUL characters, which PostgreSQL text cannot hold (pydantic already rejects unpaired surrogates)."""
    if "\x00" in value:
        raise PydanticCustomError(
            "nul_character", "must not contain NUL characters (\\u0000); PostgreSQL cannot store them"
        )
    return value


def _no_control_characters(value: str) -> str:
    """Reject C0 control characters and DEL (tabs and newlines included)."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise PydanticCustomError("control_character", "must not contain control characters")
    return value


STORABLE = AfterValidator(_storable)
"""Storable text: no NUL (put after the length constraints)."""

NO_CONTROL_CHARACTERS = AfterValidator(_no_control_characters)
"""An identifier: no control characters (put after STORABLE)."""
