"""The offline LLM's grammar of a `format` schema: strict JSON strings and a confidence kept in [0, 1]."""

import pytest

from offline_llm.grammar import STRICT_CHAR_RULE, UNIT_INTERVAL_RULE, harden_gbnf, schema_to_gbnf
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES
from triage_pipeline.infrastructure.llm.answer_model import answer_json_schema

# What llama-cpp-python's converter writes for a schema like the triage answer's (abridged).
CONVERTED = "\n".join(
    [
        r'char ::= [^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])',
        r'confidence-kv ::= "\"confidence\"" space ":" space number',
        r'score-kv ::= "\"score\"" space ":" space number',
        r'root ::= "{" space summary-kv "," space confidence-kv "," space score-kv "}" space',
        r'summary-kv ::= "\"summary\"" space ":" space string',
    ]
)
SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "score": {"type": "number", "minimum": 0, "maximum": 10},
    },
}


def test_strings_exclude_raw_control_characters_but_keep_escapes() -> None:
    hardened = harden_gbnf(CONVERTED, SCHEMA)

    [char_rule] = [line for line in hardened.splitlines() if line.startswith("char ::=")]
    assert char_rule == STRICT_CHAR_RULE
    assert r"\x00-\x1F" in char_rule and r'["\\/bfnrt]' in char_rule


def test_only_a_number_bounded_to_zero_and_one_gets_the_unit_interval_rule() -> None:
    lines = harden_gbnf(CONVERTED, SCHEMA).splitlines()

    assert r'confidence-kv ::= "\"confidence\"" space ":" space unit-interval' in lines
    assert r'score-kv ::= "\"score\"" space ":" space number' in lines
    assert lines.count(UNIT_INTERVAL_RULE) == 1


def test_a_schema_without_a_unit_interval_number_gets_no_extra_rule() -> None:
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}}

    assert UNIT_INTERVAL_RULE not in harden_gbnf(CONVERTED, schema)


def test_the_triage_answer_schema_becomes_a_grammar_llama_cpp_accepts() -> None:
    # Guards the text surgery above against a converter that changes its output (skipped without llama.cpp).
    llama_cpp = pytest.importorskip("llama_cpp")
    gbnf = schema_to_gbnf(answer_json_schema(DEFAULT_CATEGORIES))

    assert STRICT_CHAR_RULE in gbnf.splitlines()
    assert any(line.startswith("confidence-kv ::=") and line.endswith("unit-interval") for line in gbnf.splitlines())
    llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
