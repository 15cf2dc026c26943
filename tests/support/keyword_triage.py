"""The deterministic triage answer of the test doubles: keyword rules over the ticket in a chat request.

The fake Ollama and the keyword backend of the offline LLM's tests both answer with it, so a test can
predict the answer from the ticket alone (a "Site is down" ticket is an urgent `outage`).
"""

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_TICKET_BLOCK = re.compile(r"<ticket>\s*(.*?)\s*</ticket>", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+")

_CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("security", ("phishing", "hacked", "vulnerab", "suspicious", "breach", "xss", "injection", "leak")),
    ("outage", ("outage", "is down", "site down", "everyone", "all users", "all our customers", "502", "503")),
    ("account_access", ("login", "log in", "password", "2fa", "locked out", "sso", "sign in", "logs me out")),
    ("billing", ("charge", "invoice", "refund", "billing", "payment", "subscription", "payout", "plan")),
    ("feature_request", ("feature", "would be great", "please add", "sugestão", "integração", "suggestion")),
    ("how_to", ("how do i", "how to", "how can i", "where can i", "is it possible")),
    ("bug", ("error", "broken", "crash", "bug", "not working", "doesn't work", "fails", "wrong")),
)
_PRIORITY_BY_CATEGORY = {
    "security": "urgent",
    "outage": "urgent",
    "billing": "high",
    "account_access": "high",
    "bug": "normal",
    "how_to": "normal",
    "feature_request": "low",
    "other": "low",
}
_NEGATIVE = ("terrible", "worst", "angry", "unacceptable", "frustrat", "ridiculous", "useless", "fix it", "!!!")
_POSITIVE = ("thank", "love", "great", "awesome", "fantastic", "you rock", "adoro", "obrigad", "gracias", "merci")
_LANGUAGE_MARKERS = {
    "pt": {"não", "olá", "oi", "obrigado", "obrigada", "você", "vocês", "estou", "pessoal", "seria", "muito"},
    "es": {"hola", "gracias", "puedo", "usted", "pero", "necesito", "cuenta", "mi", "tengo", "por", "favor"},
    "de": {"ich", "nicht", "und", "danke", "bitte", "mein", "meine", "ist", "konto", "kann", "habe"},
    "fr": {"je", "ne", "pas", "merci", "bonjour", "mon", "est", "compte", "vous", "avec", "suis"},
}


def triage_answer(title: str, description: str, categories: tuple[str, ...] | None) -> dict[str, Any]:
    """The answer of a ticket by keyword rules; `category` is one of `categories` when they are given."""
    text = f"{title}\n{description}".lower()
    category = _category(text, categories)
    negative = sum(marker in text for marker in _NEGATIVE)
    positive = sum(marker in text for marker in _POSITIVE)
    sentiment = "negative" if negative > positive else "positive" if positive > negative else "neutral"
    words = set(_WORD.findall(text))
    hits = {lang: len(words & markers) for lang, markers in _LANGUAGE_MARKERS.items()}
    language = max(hits, key=lambda lang: hits[lang]) if max(hits.values()) > 0 else "en"
    summary = " ".join(title.split())[:300] or " ".join(description.split())[:300] or "Support ticket"
    return {
        "category": category,
        "priority": _PRIORITY_BY_CATEGORY.get(category, "normal"),
        "sentiment": sentiment,
        "language": language,
        "summary": f"Customer writes: {summary}",
        "confidence": 0.8,
    }


def _category(text: str, categories: tuple[str, ...] | None) -> str:
    allowed = set(categories) if categories else None
    for category, keywords in _CATEGORY_RULES:
        if (allowed is None or category in allowed) and any(word in text for word in keywords):
            return category
    for category in categories or ():
        # A custom vocabulary: a category whose own name appears in the ticket wins.
        if category.replace("_", " ") in text:
            return category
    if allowed is None or "other" in allowed:
        return "other"
    return (categories or ("other",))[0]


def schema_categories(schema: object) -> tuple[str, ...] | None:
    """The `category` enum of a `format` JSON schema, or None when it has none."""
    if not isinstance(schema, dict):
        return None
    category = schema.get("properties", {}).get("category", {})
    enum = category.get("enum") if isinstance(category, dict) else None
    if isinstance(enum, list) and enum and all(isinstance(value, str) for value in enum):
        return tuple(enum)
    return None


def ticket_of(messages: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(title, description) from the last user message's `<ticket>` JSON block, or its plain text."""
    content = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = str(message.get("content") or "")
            break
    block = _TICKET_BLOCK.search(content)
    if block is not None:
        try:
            data = json.loads(block.group(1))
        except ValueError:
            data = None
        if isinstance(data, dict):
            return str(data.get("title", "")), str(data.get("description", ""))
        content = block.group(1)
    first_line = content.strip().split("\n", 1)[0]
    return first_line, content
