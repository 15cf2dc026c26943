"""The probability of a value the model wrote, from the log-probabilities of the tokens that wrote it."""

import json
import math
from typing import Any

import pytest

from triage_pipeline.infrastructure.llm.value_probability import (
    Alternative,
    TokenLogprob,
    read_token_logprobs,
    value_distribution,
    value_probability,
)


def entries(*tokens: tuple[str, float]) -> list[dict[str, Any]]:
    """Ollama's `logprobs` entries for (token text, logprob) pairs."""
    return [{"token": text, "logprob": logprob, "top_logprobs": []} for text, logprob in tokens]


def tokens(*pairs: tuple[str, float]) -> list[TokenLogprob]:
    read = read_token_logprobs(entries(*pairs))
    assert read is not None
    return read


LOG_09 = math.log(0.9)
LOG_05 = math.log(0.5)
LOG_099 = math.log(0.99)


def test_a_value_in_one_token_has_that_tokens_probability() -> None:
    content = '{"category": "bug", "priority": "low"}'
    split = tokens(
        ('{"', LOG_099),
        ("category", LOG_099),
        ('": "', LOG_099),
        ("bug", LOG_09),
        ('", "', LOG_099),
        ("priority", LOG_099),
        ('": "', LOG_099),
        ("low", LOG_05),
        ('"}', LOG_099),
    )

    assert value_probability(content, split, "category") == pytest.approx(0.9)
    assert value_probability(content, split, "priority") == pytest.approx(0.5)


def test_a_value_of_several_tokens_has_their_joint_probability() -> None:
    content = '{"category": "account_access"}'
    split = tokens(
        ('{"category": "', LOG_099),
        ("account", math.log(0.8)),
        ("_", math.log(0.95)),
        ("access", math.log(0.7)),
        ('"}', LOG_099),
    )

    assert value_probability(content, split, "category") == pytest.approx(0.8 * 0.95 * 0.7)


def test_tokens_that_hold_the_quote_and_part_of_the_value_count_whole() -> None:
    content = '{"category":"billing","priority":"high"}'
    split = tokens(
        ('{"category":', LOG_099),
        ('"bill', math.log(0.6)),
        ('ing","', math.log(0.9)),
        ('priority":"', LOG_099),
        ('high"}', math.log(0.7)),
    )

    assert value_probability(content, split, "category") == pytest.approx(0.6 * 0.9)
    assert value_probability(content, split, "priority") == pytest.approx(0.7)


def test_unicode_values_map_characters_to_the_bytes_of_split_tokens() -> None:
    content = json.dumps({"summary": "Olá, não consigo", "category": "cobrança"}, ensure_ascii=False)
    encoded = content.encode("utf-8")
    cut = encoded.index("ç".encode()) + 1  # a token that ends inside "ç": only `bytes` spell it exactly
    start = encoded.index(b"cobran")
    raw = [
        {"token": encoded[:start].decode(), "logprob": LOG_099},
        {"token": "cobran\ufffd", "bytes": list(encoded[start:cut]), "logprob": math.log(0.8)},
        {"token": "\ufffda", "bytes": list(encoded[cut : cut + 2]), "logprob": math.log(0.5)},
        {"token": '"}', "logprob": LOG_099},
    ]

    read = read_token_logprobs(raw)

    assert read is not None
    assert value_probability(content, read, "category") == pytest.approx(0.8 * 0.5)
    assert value_probability(content, read, "summary") == pytest.approx(0.99)


def test_escaped_characters_in_a_value_are_counted_as_written() -> None:
    content = r'{"summary": "say \"hi\" \u00e9", "category": "how_to"}'
    split = tokens(
        ('{"summary": "say ', LOG_099),
        (r"\"", math.log(0.9)),
        ("hi", math.log(0.8)),
        (r"\" \u00", math.log(0.7)),
        ('e9", "category": "', math.log(0.6)),
        ("how_to", math.log(0.5)),
        ('"}', LOG_099),
    )

    assert value_probability(content, split, "summary") == pytest.approx(0.99 * 0.9 * 0.8 * 0.7 * 0.6)
    assert value_probability(content, split, "category") == pytest.approx(0.5)


def test_whitespace_and_nested_values_before_the_field_are_skipped() -> None:
    content = '{\n  "meta": {"category": "nested", "n": [1, 2]},\n  "category" :  "outage"\n}'
    split = tokens((content[: content.index("outage")], LOG_099), ("outage", math.log(0.3)), ('"\n}', LOG_099))

    assert value_probability(content, split, "category") == pytest.approx(0.3)


def test_a_key_written_twice_counts_its_last_value_as_json_loads_does() -> None:
    content = '{"category": "bug", "category": "outage"}'
    split = tokens(
        ('{"category": "', 0.0), ("bug", math.log(0.2)), ('", "category": "', 0.0), ("outage", LOG_09), ('"}', 0.0)
    )

    assert value_probability(content, split, "category") == pytest.approx(0.9)


def test_trailing_tokens_after_the_content_are_allowed() -> None:
    content = '{"category": "bug"}'
    split = tokens(('{"category": "', 0.0), ("bug", LOG_09), ('"}', 0.0), ("<|im_end|>", -0.01))

    assert value_probability(content, split, "category") == pytest.approx(0.9)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="absent"),
        pytest.param([], id="empty"),
        pytest.param("not a list", id="not-a-list"),
        pytest.param([{"token": "{", "logprob": "high"}], id="logprob-not-a-number"),
        pytest.param([{"token": "{", "logprob": True}], id="logprob-a-boolean"),
        pytest.param([{"token": "{", "logprob": float("nan")}], id="logprob-nan"),
        pytest.param([{"logprob": -0.1}], id="no-token"),
        pytest.param(["{"], id="entry-not-an-object"),
    ],
)
def test_no_logprobs_or_malformed_ones_are_read_as_none(raw: object) -> None:
    assert read_token_logprobs(raw) is None


def test_invalid_bytes_fall_back_to_the_token_text() -> None:
    read = read_token_logprobs([{"token": "é", "bytes": [300], "logprob": -0.5}])

    assert read == [TokenLogprob("é".encode(), -0.5)]


def test_no_tokens_give_no_probability() -> None:
    assert value_probability('{"category": "bug"}', None, "category") is None
    assert value_probability('{"category": "bug"}', [], "category") is None


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param([('{"category": "', 0.0), ("bugs", LOG_09), ('"}', 0.0)], id="different-text"),
        pytest.param([('{"category": "', 0.0), ("bug", LOG_09)], id="shorter-than-the-content"),
        pytest.param([(' {"category": "', 0.0), ("bug", LOG_09), ('"}', 0.0)], id="shifted"),
    ],
)
def test_tokens_that_do_not_spell_the_content_give_no_probability(pairs: list[tuple[str, float]]) -> None:
    assert value_probability('{"category": "bug"}', tokens(*pairs), "category") is None


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"priority": "low"}', id="field-missing"),
        pytest.param('{"category": 3}', id="not-a-string"),
        pytest.param('{"category": ""}', id="empty-string"),
        pytest.param('Sure! {"category": "bug"}', id="not-a-json-object"),
        pytest.param('{"category": "bug", ', id="cut-off"),
        pytest.param("[]", id="an-array"),
    ],
)
def test_content_without_a_string_value_for_the_field_gives_no_probability(content: str) -> None:
    assert value_probability(content, tokens((content, 0.0)), "category") is None


def test_probability_never_exceeds_one() -> None:
    content = '{"category": "bug"}'

    assert value_probability(content, tokens((content, 1e-7)), "category") == 1.0


LABELS = ("bug", "billing", "outage", "other", "how_to")


def step(token: str, logprob: float, *alternatives: tuple[str, float]) -> dict[str, Any]:
    """An Ollama `logprobs` entry with its `top_logprobs` alternatives (the token itself first)."""
    top = [{"token": token, "logprob": logprob}] + [{"token": t, "logprob": lp} for t, lp in alternatives]
    return {"token": token, "logprob": logprob, "top_logprobs": top}


def test_the_labels_the_model_hesitated_between_get_the_probability_of_the_token_that_begins_them() -> None:
    content = '{"category": "how_to"}'
    read = read_token_logprobs(
        [
            step('{"category": "', 0.0),
            step("how", math.log(0.6), ("bill", math.log(0.25)), ("outa", math.log(0.05)), ("Sure", math.log(0.04))),
            step("_to", LOG_099),
            step('"}', 0.0),
        ]
    )

    distribution = value_distribution(content, read, "category", LABELS)

    assert distribution == pytest.approx({"how_to": 0.6 * 0.99, "billing": 0.25, "outage": 0.05})


def test_an_alternative_must_hold_what_the_step_holds_before_the_value() -> None:
    content = '{"category": "bug"}'
    read = read_token_logprobs(
        [
            step('{"category":', 0.0),
            step(' "bug', math.log(0.7), (' "billing', math.log(0.2)), ('"outage', math.log(0.05))),
            step('"}', 0.0),
        ]
    )

    assert value_distribution(content, read, "category", LABELS) == pytest.approx({"bug": 0.7, "billing": 0.2})


def test_a_whole_label_with_its_closing_quote_counts_and_an_ambiguous_beginning_does_not() -> None:
    content = '{"category": "bug"}'
    read = read_token_logprobs(
        [
            step('{"category": "', 0.0),
            step("bug", math.log(0.5), ('other"', math.log(0.2)), ("b", math.log(0.1)), ("o", math.log(0.1))),
            step('"}', 0.0),
        ]
    )

    assert value_distribution(content, read, "category", LABELS) == pytest.approx({"bug": 0.5, "other": 0.2})


def test_a_label_told_apart_at_a_later_step_has_the_written_prefix_times_its_alternative() -> None:
    content = '{"category": "billing"}'
    read = read_token_logprobs(
        [
            step('{"category": "', 0.0),
            step("b", math.log(0.8), ("o", math.log(0.1))),  # `o`: outage or other, neither told apart
            step("illing", math.log(0.5), ("ug", math.log(0.4)), ("ill", math.log(0.05))),
            step('"}', 0.0),
        ]
    )

    distribution = value_distribution(content, read, "category", LABELS)

    assert distribution == pytest.approx({"billing": 0.8 * 0.5, "bug": 0.8 * 0.4})


def test_alternatives_of_one_label_add_up() -> None:
    content = '{"category": "bug"}'
    read = read_token_logprobs(
        [
            step('{"category": "', 0.0),
            step("bug", math.log(0.5), ("out", math.log(0.1)), ("outage", math.log(0.2))),
            step('"}', 0.0),
        ]
    )

    assert value_distribution(content, read, "category", LABELS) == pytest.approx({"bug": 0.5, "outage": 0.3})


@pytest.mark.parametrize(
    ("content", "labels"),
    [
        pytest.param('{"category": "bug"}', ("billing", "outage"), id="written-value-not-a-label"),
        pytest.param('{"priority": "low"}', LABELS, id="field-missing"),
    ],
)
def test_no_distribution_without_a_written_label(content: str, labels: tuple[str, ...]) -> None:
    assert value_distribution(content, tokens((content, LOG_09)), "category", labels) is None


def test_no_distribution_without_logprobs_and_only_the_written_label_without_alternatives() -> None:
    content = '{"category": "bug"}'

    assert value_distribution(content, None, "category", LABELS) is None
    assert value_distribution(content, tokens((content, LOG_09)), "category", LABELS) == pytest.approx({"bug": 0.9})


def test_malformed_alternatives_are_left_out_and_the_tokens_still_read() -> None:
    read = read_token_logprobs(
        [
            {
                "token": "bug",
                "logprob": -0.1,
                "top_logprobs": [
                    {"token": "bill", "logprob": "high"},
                    "bill",
                    {"logprob": -1.0},
                    {"token": "out", "logprob": -2.0},
                ],
            }
        ]
    )

    assert read == [TokenLogprob(b"bug", -0.1, (Alternative(b"out", -2.0),))]
