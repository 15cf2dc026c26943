"""Reading ticket files: JSONL or CSV (pandas), labelled or not; the shipped sample set.

pandas is imported when a file is read, not with this module: the Dagster code location imports this
module and every process that loads it (code server, run worker, CLI) would pay for pandas otherwise.
"""

import hashlib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from triage_pipeline.domain.evaluation import EVALUATED_FIELDS, LabelledTicket

SAMPLE_NAME = "tickets_labelled.jsonl"
STARTER_EXAMPLES_NAME = "starter_examples.jsonl"
"""Labelled tickets shown to the model as solved cases; none of them is in the sample (the demo and
evaluation set), so an evaluation never grades a ticket the model was shown."""


def sample_path() -> Path:
    """The labelled sample set shipped with the package."""
    return Path(str(resources.files("triage_pipeline") / "data" / SAMPLE_NAME))


def starter_examples_path() -> Path:
    """The shipped starter examples (shared bank)."""
    return Path(str(resources.files("triage_pipeline") / "data" / STARTER_EXAMPLES_NAME))


def read_frame(path: Path) -> "pd.DataFrame":
    """A JSONL (.jsonl/.ndjson) or CSV file as a frame of strings; ValueError when unreadable."""
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson", ".json"):
            frame = pd.read_json(path, lines=True, dtype=False)
        elif suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise ValueError(f"{path}: unsupported format {suffix or '(none)'}; use .jsonl or .csv")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read: {exc}") from None
    return frame.astype(object).where(frame.notna(), None)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, to tell evaluation datasets apart."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_labelled(path: Path, limit: int | None = None) -> list[LabelledTicket]:
    """Labelled tickets: external_id, title, description and the gold fields present in the file."""
    frame = read_frame(path)
    missing = {"external_id", "title", "description", "category", "priority"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    rows = frame.to_dict(orient="records")[:limit]
    return [
        LabelledTicket(
            external_id=str(row["external_id"]),
            title=str(row["title"]),
            description=str(row["description"] or ""),
            labels={name: str(row[name]) for name in EVALUATED_FIELDS if row.get(name) is not None},
        )
        for row in rows
    ]
