"""How sure the model was of a value it wrote, from the log-probabilities of the tokens that wrote it.

Ollama returns, when asked (`"logprobs": true`), a top-level `logprobs` list with one entry per
generated token: `{"token": str, "logprob": float, "bytes": [int, ...]?, "top_logprobs": [...]?}`.
The tokens, in order, spell the answer's `message.content`. The probability of a JSON string value
(the category the model chose) is the joint probability of the tokens that overlap the value's
characters: exp(sum of their logprobs). A token that also holds the quote or the next key counts
whole; with a grammar the first token often decides the value and the rest are near-certain, and
the product is right either way.

The same steps also tell what else the model would have written: each entry's `top_logprobs` lists the
most likely tokens at that step. `value_distribution` reads them along the written value, so an answer
carries the model's probability of the labels it did not write too, not only of the one it did.

Everything here is pure and never raises on what a server sent: no logprobs (an older Ollama),
malformed entries, or tokens that do not spell the content give None.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_JSON_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class Alternative:
    """A token the model could have generated at a step, with its log-probability."""

    piece: bytes
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its UTF-8 bytes, its log-probability and the step's most likely tokens."""

    piece: bytes
    logprob: float
    top: tuple[Alternative, ...] = ()


def read_token_logprobs(raw: object) -> list[TokenLogprob] | None:
    """Ollama's `logprobs` list as tokens; None when it is absent, empty or not in Ollama's shape.

    `bytes` is preferred over `token` when present: a token that ends inside a multi-byte character
    has a `token` string with a replacement character, but its `bytes` are exact.
    """
    if not isinstance(raw, list) or not raw:
        return None
    tokens: list[TokenLogprob] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            return None
        logprob = _logprob(entry)
        piece = _token_bytes(entry)
        if logprob is None or piece is None:
            return None
        tokens.append(TokenLogprob(piece, logprob, _alternatives(entry.get("top_logprobs"))))
    return tokens


def _alternatives(raw: object) -> tuple[Alternative, ...]:
    """A step's `top_logprobs`; malformed entries are left out, since they only refine a probability."""
    if not isinstance(raw, list):
        return ()
    found = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        logprob = _logprob(entry)
        piece = _token_bytes(entry)
        if logprob is not None and piece:
            found.append(Alternative(piece, logprob))
    return tuple(found)


def _logprob(entry: Mapping[str, object]) -> float | None:
    """An entry's `logprob` as a number; None when it is missing, a boolean or NaN."""
    logprob = entry.get("logprob")
    if not isinstance(logprob, int | float) or isinstance(logprob, bool) or math.isnan(logprob):
        return None
    return float(logprob)


def value_probability(content: str, tokens: Sequence[TokenLogprob] | None, field: str) -> float | None:
    """The probability of the string value of the top-level `field` in the JSON `content`.

    None when there are no tokens, when the tokens do not spell `content` (trailing tokens after
    it, such as an end-of-turn token or a stop text cut off, are allowed), or when `content` has no
    non-empty string value for `field`. For a key written twice, the last value counts, as
    `json.loads` keeps it.
    """
    if not tokens:
        return None
    span = _string_value_span(content, field)
    if span is None:
        return None
    encoded = content.encode("utf-8")
    if not b"".join(token.piece for token in tokens).startswith(encoded):
        return None
    first = len(content[: span[0]].encode("utf-8"))
    last = len(content[: span[1]].encode("utf-8"))
    total = 0.0
    position = 0
    for token in tokens:
        end = position + len(token.piece)
        if end > first and position < last:
            total += token.logprob
        if end >= last:
            break
        position = end
    return min(1.0, math.exp(total))


def value_distribution(
    content: str, tokens: Sequence[TokenLogprob] | None, field: str, labels: Sequence[str]
) -> dict[str, float] | None:
    """The model's probability of each of `labels` as the string value of `field`, as far as the tokens
    tell: the label it wrote has its joint probability (`value_probability`); another label has the
    probability of leaving the written value where the two part: the probability of the written tokens up
    to that step times that of the alternative token that continues towards it there (the rest of a label
    is near-certain once it is told apart). So `billing` written as `b` + `illing` gives `bug` the
    probability of `b` times that of `ug` at the second step.

    An alternative that still fits several labels (`b` for `bug` and `billing` at the first step) tells none
    of them apart and is ignored. Labels no alternative reaches are left out: the server did not list them
    at any step of the written value (their tokens were less likely than the last one listed there).

    None when `value_probability` is None, or when the written value is not one of `labels`.
    """
    written = value_probability(content, tokens, field)
    span = _string_value_span(content, field)
    if written is None or span is None or tokens is None:
        return None
    value = json.loads(content[span[0] - 1 : span[1] + 1])
    if value not in labels:
        return None
    encoded = content.encode("utf-8")
    first = len(content[: span[0]].encode("utf-8"))
    last = len(content[: span[1]].encode("utf-8"))
    every = {label: label.encode("utf-8") for label in labels}
    distribution: dict[str, float] = {}
    reached = 0.0  # log-probability of the written tokens before this step
    position = 0
    for token in tokens:
        end = position + len(token.piece)
        if end > first:
            # The text this step's alternatives continue: the value written so far, or what the step's
            # token holds before the value (an opening quote), which every alternative must hold too.
            before = encoded[position:first] if position < first else b""
            so_far = encoded[first:position] if position > first else b""
            for alternative in token.top:
                if not alternative.piece.startswith(before):
                    continue
                begun = so_far + alternative.piece[len(before) :]
                matches = [
                    label
                    for label, text in every.items()
                    if len(begun) > len(so_far) and (text.startswith(begun) or begun.startswith(text + b'"'))
                ]
                if len(matches) == 1 and matches[0] != value:  # the written label has its joint probability
                    probability = math.exp(reached + alternative.logprob)
                    distribution[matches[0]] = distribution.get(matches[0], 0.0) + probability
            reached += token.logprob
        if end >= last:
            break
        position = end
    distribution[value] = written
    return {label: min(1.0, probability) for label, probability in distribution.items()}


def _token_bytes(entry: Mapping[str, object]) -> bytes | None:
    raw_bytes = entry.get("bytes")
    if isinstance(raw_bytes, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in raw_bytes
    ):
        return bytes(raw_bytes)
    token = entry.get("token")
    return token.encode("utf-8") if isinstance(token, str) else None


def _string_value_span(content: str, field: str) -> tuple[int, int] | None:
    """Character offsets [start, end) of the text between the quotes of `field`'s string value."""
    spans: dict[str, tuple[int, int]] = {}
    index = _skip_whitespace(content, 0)
    if not content.startswith("{", index):
        return None
    index = _skip_whitespace(content, index + 1)
    if content.startswith("}", index):
        return None
    try:
        while True:
            key, index = _DECODER.raw_decode(content, index)
            index = _skip_whitespace(content, index)
            if not isinstance(key, str) or not content.startswith(":", index):
                return None
            start = _skip_whitespace(content, index + 1)
            value, index = _DECODER.raw_decode(content, start)
            if isinstance(value, str):
                spans[key] = (start + 1, index - 1)
            else:
                spans.pop(key, None)
            index = _skip_whitespace(content, index)
            if content.startswith("}", index):
                break
            if not content.startswith(",", index):
                return None
            index = _skip_whitespace(content, index + 1)
    except ValueError:
        return None
    span = spans.get(field)
    return span if span is not None and span[1] > span[0] else None


def _skip_whitespace(text: str, index: int) -> int:
    while index < len(text) and text[index] in _JSON_WHITESPACE:
        index += 1
    return index
