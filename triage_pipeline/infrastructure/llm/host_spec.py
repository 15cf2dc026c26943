"""The LLM hosts of `LLM_BASE_URL`: a comma-separated list of base URLs, each with an optional `#N`.

`http://gpu-a:11434#8,http://gpu-b:11434#4` is two Ollama hosts taking at most 8 and 4 calls at once from
one process (set N to the host's OLLAMA_NUM_PARALLEL: more calls would only queue inside Ollama). A host
without `#N` takes the default the caller passes (LLM_CONCURRENCY), so a single URL behaves as before:
its cap is the number of calls a step makes at once anyway.

Errors are `HostSpecError`s whose message names the bad entry; the settings report them under LLM_BASE_URL.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HOST_CONCURRENCY = 256
"""The same bound as LLM_CONCURRENCY's."""


class HostSpecError(ValueError):
    """An entry of the host list is malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class LlmHostSpec:
    """One LLM host: its base URL (no trailing slash) and how many calls one process sends it at once."""

    url: str
    concurrency: int


@dataclass(frozen=True, slots=True)
class _Entry:
    url: str
    concurrency: int | None
    """None: no `#N` was written, the caller's default applies."""


def parse_llm_hosts(text: str, default_concurrency: int) -> list[LlmHostSpec]:
    """The hosts of a list such as `http://gpu-a:11434#8,http://gpu-b:11434`, in the order written."""
    if not 1 <= default_concurrency <= MAX_HOST_CONCURRENCY:
        raise ValueError(f"default concurrency must be 1 to {MAX_HOST_CONCURRENCY}, got {default_concurrency}")
    return [
        LlmHostSpec(entry.url, default_concurrency if entry.concurrency is None else entry.concurrency)
        for entry in _entries(text)
    ]


def normalise_llm_hosts(text: str) -> str:
    """The list validated and written canonically (blanks and trailing slashes dropped, `#N` kept only where
    it was given), so it can be handed on to child processes as it is; HostSpecError when malformed."""
    return ",".join(
        entry.url + ("" if entry.concurrency is None else f"#{entry.concurrency}") for entry in _entries(text)
    )


def _entries(text: str) -> list[_Entry]:
    raw_entries = text.split(",")
    entries: list[_Entry] = []
    seen: dict[tuple[str, str, int, str], int] = {}
    for number, raw in enumerate(raw_entries, start=1):
        entry = _entry(raw.strip(), number, len(raw_entries))
        key = _identity(entry.url)
        if key in seen:
            raise HostSpecError(f"host {entry.url} is listed twice (entries {seen[key]} and {number})")
        seen[key] = number
        entries.append(entry)
    return entries


def _entry(raw: str, number: int, count: int) -> _Entry:
    where = f"entry {number}" if count > 1 else "the URL"
    if not raw:
        raise HostSpecError(
            f"{where} is empty (a host list is base URLs separated by commas, e.g. "
            "http://gpu-a:11434#8,http://gpu-b:11434#4)"
        )
    url, hash_sign, suffix = raw.partition("#")
    concurrency: int | None = None
    if hash_sign:
        suffix = suffix.strip()
        if not (suffix.isascii() and suffix.isdigit()) or not 1 <= int(suffix) <= MAX_HOST_CONCURRENCY:
            raise HostSpecError(
                f"{where} ({raw!r}): the concurrency after # must be a whole number from 1 to "
                f"{MAX_HOST_CONCURRENCY}, got {suffix!r}"
            )
        concurrency = int(suffix)
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise HostSpecError(f"{where} ({raw!r}) is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise HostSpecError(f"{where} ({raw!r}) must start with http:// or https://")
    if not parts.hostname:
        raise HostSpecError(f"{where} ({raw!r}) has no host name")
    if parts.query or port == 0:
        raise HostSpecError(f"{where} ({raw!r}) must be a base URL: http(s)://host[:port][/path]")
    return _Entry(url, concurrency)


def _identity(url: str) -> tuple[str, str, int, str]:
    """What makes two URLs the same host: scheme, host name (any case), port (defaults filled in), path."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80), parts.path
