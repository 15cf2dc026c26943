"""`triage examples import FILE | list | delete ID`: the labelled example banks, through the example use cases.

An import reads the whole file first (at most `MAX_FILE_BYTES`), so a file that cannot be read at all is refused
before anything is stored; then the rows are stored `IMPORT_CHUNK` at a time, each chunk in its own transaction,
so that a failure part-way keeps every chunk already stored. A row that is malformed (not JSON, not an object,
a missing label, a field too long) or whose labels are outside the active prompt's vocabulary is reported
INVALID with its line number, and never holds back the others.
"""

import argparse
import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from triage_pipeline.application.examples import (
    DeleteExample,
    DeleteExampleCommand,
    ExampleItemStatus,
    ImportExamples,
    ImportExamplesCommand,
    ListExamples,
    ListExamplesQuery,
    NewExample,
)
from triage_pipeline.application.ticket_queries import MAX_PAGE_SIZE
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.output import console, progress_bar
from triage_pipeline.domain.example import TriageExample
from triage_pipeline.domain.exceptions import DomainError
from triage_pipeline.domain.ticket import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH

MAX_FILE_BYTES = 50 * 1024 * 1024
"""The largest file one import reads (split a bigger one)."""
IMPORT_CHUNK = 1000
"""Rows stored per transaction."""
REFERENCE_MAX_LENGTH = 500
_TEXT_LIMITS = {"title": TITLE_MAX_LENGTH, "description": DESCRIPTION_MAX_LENGTH, "reference": REFERENCE_MAX_LENGTH}
_LABEL_LIMITS = {"category": 64, "priority": 16, "sentiment": 16, "language": 8}
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True, slots=True)
class Row:
    """One record of the file: the example it holds, or why it holds none."""

    line: int
    """The file line the record starts on (1 is the first line, a CSV header included)."""
    example: NewExample | None
    problem: str | None = None


def check_import_file(path: Path) -> None:
    """ValueError, with one line saying why, for a path that is not a regular file under the size limit."""
    try:
        if not path.exists():
            raise ValueError(f"no such file: {path}")
        if not path.is_file():
            raise ValueError(f"{path} is not a regular file")
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{path} is {size / 1024 / 1024:.1f} MiB, over the {MAX_FILE_BYTES // 1024 // 1024} MiB limit of one"
            " import; split it into smaller files"
        )


def read_rows(path: Path) -> tuple[str, list[Row]]:
    """The file's format (jsonl or csv) and its records; ValueError when the file as a whole cannot be read."""
    check_import_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    start = data.lstrip()[:1]
    if not start:
        raise ValueError(f"{path} is empty: there is no example to import")
    if start == b"[":
        raise ValueError(f"{path} holds a JSON array: write one JSON object per line (JSONL), or CSV")
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES or (suffix != ".csv" and start == b"{"):
        return "jsonl", list(_jsonl_rows(path, data))
    return "csv", _csv_rows(path, data)


def _jsonl_rows(path: Path, data: bytes) -> Iterator[Row]:
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except UnicodeDecodeError:
            yield Row(number, None, "not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            yield Row(number, None, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(record, dict):
            yield Row(number, None, f"not a JSON object but {type(record).__name__}")
            continue
        yield _row(path, number, record)


def _csv_rows(path: Path, data: bytes) -> list[Row]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    previous_limit = csv.field_size_limit(MAX_FILE_BYTES)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [name for name in ("category", "priority") if name not in header]
        if "title" not in header and "description" not in header:
            missing.insert(0, "title or description")
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} in the header line")
        rows: list[Row] = []
        line = reader.line_num + 1
        while True:
            try:
                values = next(reader, None)
            except csv.Error as exc:
                rows.append(Row(line, None, f"cannot be read as CSV ({exc}); the rest of the file was not read"))
                break
            if values is None:
                break
            if any(value.strip() for value in values):
                if len(values) != len(header):
                    rows.append(Row(line, None, f"has {len(values)} fields, the header has {len(header)}"))
                else:
                    rows.append(_row(path, line, dict(zip(header, values, strict=True))))
            line = reader.line_num + 1
        if not rows:
            raise ValueError(f"{path} has a header line but no rows: there is no example to import")
        return rows
    finally:
        csv.field_size_limit(previous_limit)


def _text(record: Mapping[str, Any], name: str) -> str | None:
    """The field as text ('' when absent or null); None when it is not text."""
    value = record.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def _row(path: Path, line: int, record: Mapping[str, Any]) -> Row:
    """The example of one record, or the first thing wrong with it."""
    values: dict[str, str] = {}
    for name in ("title", "description", "reference", "category", "priority", "sentiment", "language"):
        value = _text(record, name)
        if value is None:
            return Row(line, None, f"{name} must be text, not {type(record[name]).__name__}")
        if name in _LABEL_LIMITS:
            value = value.strip()
        limit = _TEXT_LIMITS.get(name) or _LABEL_LIMITS[name]
        if len(value) > limit:
            return Row(line, None, f"{name} is longer than {limit} characters")
        if "\x00" in value:
            return Row(line, None, f"{name} holds a NUL character, which cannot be stored")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return Row(line, None, f"{name} holds an unpaired surrogate (\\ud800-\\udfff), which is not text")
        values[name] = value
    for name in ("category", "priority"):
        if not values[name]:
            return Row(line, None, f"{name} is missing")
    reference = values["reference"]
    if not reference:
        external_id = record.get("external_id")
        reference = f"{path.name}#{external_id if isinstance(external_id, str | int) else f'line {line}'}"
    example = NewExample(
        title=values["title"],
        description=values["description"],
        category=values["category"],
        priority=values["priority"],
        sentiment=values["sentiment"] or None,
        language=values["language"] or None,
        reference=reference[:REFERENCE_MAX_LENGTH],
    )
    return Row(line, example)


def _bank(owner_id: UUID | None) -> str:
    return "the shared bank" if owner_id is None else f"the bank of owner {owner_id}"


def import_examples(container: Container, path: Path, owner_id: UUID | None) -> Counter[str]:
    """Store the file's examples in chunks, reporting each INVALID row on stderr; counts by outcome."""
    kind, rows = read_rows(path)
    use_case = container.use(ImportExamples)
    counts: Counter[str] = Counter()
    with progress_bar(f"importing {path.name} ({kind})", len(rows)) as bar:
        for start in range(0, len(rows), IMPORT_CHUNK):
            chunk = rows[start : start + IMPORT_CHUNK]
            valid = [row for row in chunk if row.example is not None]
            try:
                outcomes = (
                    use_case.execute(
                        ImportExamplesCommand([row.example for row in valid if row.example is not None], owner_id)
                    )
                    if valid
                    else []
                )
            except (DomainError, SQLAlchemyError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                stored = counts[ExampleItemStatus.CREATED.value]
                if not stored:
                    raise ValueError(f"{reason}; nothing was stored") from None
                raise ValueError(
                    f"{path}: stopped at line {chunk[0].line}: {reason}; the {stored} example(s) created before"
                    " it are stored"
                ) from None
            problems = {row.line: row.problem for row in chunk if row.problem is not None}
            for row, outcome in zip(valid, outcomes, strict=True):
                counts[outcome.status.value] += 1
                if outcome.status is ExampleItemStatus.INVALID:
                    problems[row.line] = outcome.error or f"{outcome.field} is invalid"
            counts[ExampleItemStatus.INVALID.value] += len(chunk) - len(valid)
            for line in sorted(problems):
                bar.console.print(
                    f"line {line}: INVALID: {problems[line]}", markup=False, highlight=False, soft_wrap=True
                )
            bar.update(bar.task_ids[0], completed=start + len(chunk))
    return counts


def cmd_import(container: Container, args: argparse.Namespace) -> int:
    """Import, then print one summary line."""
    path = Path(args.file)
    counts = import_examples(container, path, None if args.shared else args.owner_id)
    total = sum(counts.values())
    summary = ", ".join(f"{counts[s.value]} {s.value.lower()}" for s in ExampleItemStatus)
    print(f"{path}: {total} row(s) into {_bank(None if args.shared else args.owner_id)}: {summary}")
    return 0


def _all_examples(container: Container, query: ListExamplesQuery) -> Iterator[TriageExample]:
    cursor = None
    while True:
        page = container.use(ListExamples).execute(
            ListExamplesQuery(query.owner_id, shared_only=query.shared_only, limit=MAX_PAGE_SIZE, cursor=cursor)
        )
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def cmd_list(container: Container, args: argparse.Namespace) -> int:
    """Every example of the chosen banks, newest first: a table, or JSON lines with --json."""
    examples = _all_examples(container, ListExamplesQuery(owner_id=args.owner_id, shared_only=args.shared))
    if args.json:
        for e in examples:
            record = {
                "id": str(e.id),
                "owner_id": str(e.owner_id) if e.owner_id else None,
                "source": e.source.value,
                "title": e.title,
                "description": e.description,
                "category": e.category,
                "priority": e.priority.value,
                "sentiment": e.sentiment,
                "language": e.language,
                "reference": e.reference,
                "ticket_id": str(e.ticket_id) if e.ticket_id else None,
                "created_at": e.created_at.isoformat(),
            }
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return 0
    banks = "every bank" if args.owner_id is None and not args.shared else _bank(args.owner_id)
    if args.owner_id is not None:
        banks += " and the shared bank"
    table = Table(title=f"examples of {banks}")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, to be pasted into `triage examples delete`
    table.add_column("owner", overflow="ellipsis", no_wrap=True, max_width=13)
    for name in ("source", "category", "priority"):
        table.add_column(name)
    table.add_column("title", overflow="ellipsis", no_wrap=True)
    for e in examples:
        owner = str(e.owner_id) if e.owner_id else "shared"
        table.add_row(str(e.id), owner, e.source.value, e.category, e.priority.value, e.title)
    console.print(table)
    return 0


def cmd_delete(container: Container, args: argparse.Namespace) -> int:
    container.use(DeleteExample).execute(DeleteExampleCommand(args.example_id, caller_owner_id=None))
    print(f"deleted example {args.example_id}")
    return 0


def _banks(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--owner", "--owner-id", dest="owner_id", type=UUID, default=None, help="an owner's bank")
    group.add_argument("--shared", action="store_true", help="the shared bank (every owner's prompts may use it)")


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `examples import|list|delete`."""
    examples = sub.add_parser("examples", help="labelled examples: import FILE | list | delete ID")
    actions = examples.add_subparsers(dest="action", required=True)
    imp = actions.add_parser(
        "import",
        help="add labelled examples from a .jsonl or .csv file (title, description, category, priority;"
        f" optional sentiment, language, reference), at most {MAX_FILE_BYTES // 1024 // 1024} MiB",
    )
    imp.add_argument("file")
    _banks(imp, required=True)
    imp.set_defaults(container_handler=cmd_import)
    listing = actions.add_parser("list", help="examples newest first (default: every bank)")
    _banks(listing, required=False)
    listing.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    listing.set_defaults(container_handler=cmd_list)
    delete = actions.add_parser("delete", help="delete one example")
    delete.add_argument("example_id", type=UUID)
    delete.set_defaults(container_handler=cmd_delete)
