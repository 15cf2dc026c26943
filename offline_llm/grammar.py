"""Ollama's `format` as a llama.cpp grammar (GBNF), so the model can only write JSON of that shape.

llama-cpp-python's converter does the work; `harden_gbnf` fixes two things it gets wrong for triage
answers, and is pure text so it is tested without llama.cpp.
"""

import importlib
import json
import re
from collections.abc import Mapping
from typing import Any

# The converter's string rule lets raw control characters (newline, tab, ...) into JSON strings, which
# makes the output invalid JSON. Exclude them as JSON requires; escapes stay allowed.
_CHAR_RULE = re.compile(r"^char ::= .*$", re.MULTILINE)
STRICT_CHAR_RULE = (
    r'char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
)

# The converter ignores numeric bounds. A top-level number bounded to [0, 1] (a confidence) gets this
# rule instead: always in range, and at most 3 decimals (small models otherwise write 16 digits).
UNIT_INTERVAL_RULE = 'unit-interval ::= ("0" ("." [0-9] [0-9]? [0-9]?)? | "1" ("." "0" "0"? "0"?)?) space'


def unit_interval_properties(schema: Mapping[str, Any]) -> list[str]:
    """The top-level properties of `schema` that are numbers with minimum 0 and maximum 1."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    return [
        name
        for name, prop in properties.items()
        if isinstance(prop, Mapping)
        and prop.get("type") == "number"
        and prop.get("minimum") == 0
        and prop.get("maximum") == 1
    ]


def harden_gbnf(gbnf: str, schema: Mapping[str, Any]) -> str:
    """The converter's grammar of `schema` with strict JSON strings and [0, 1] numbers kept in range."""
    gbnf = _CHAR_RULE.sub(lambda _match: STRICT_CHAR_RULE, gbnf)
    bounded = 0
    for name in unit_interval_properties(schema):
        rule = re.sub(r"[^a-zA-Z0-9-]+", "-", name) + "-kv"
        pattern = re.compile(rf"^({re.escape(rule)} ::= .*) number$", re.MULTILINE)
        gbnf, count = pattern.subn(lambda match: f"{match.group(1)} unit-interval", gbnf)
        bounded += count
    return f"{gbnf}\n{UNIT_INTERVAL_RULE}\n" if bounded else gbnf


def schema_to_gbnf(schema: Mapping[str, Any]) -> str:
    """The llama.cpp grammar of a JSON schema, keeping its property order (needs llama_cpp)."""
    llama_grammar: Any = importlib.import_module("llama_cpp.llama_grammar")
    order = list(schema.get("properties", {}) or {})
    return harden_gbnf(str(llama_grammar.json_schema_to_gbnf(json.dumps(schema), prop_order=order)), schema)


def json_gbnf() -> str:
    """A grammar of any JSON object: Ollama's `format: "json"` (needs llama_cpp)."""
    llama_grammar: Any = importlib.import_module("llama_cpp.llama_grammar")
    return str(llama_grammar.JSON_GBNF)
