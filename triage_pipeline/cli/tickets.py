"""`triage tickets import FILE` and `triage tickets export`: through the intake and query use cases."""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.ticket_queries import MAX_PAGE_SIZE, ListTickets, ListTicketsQuery
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.examples import check_import_file
from triage_pipeline.cli.output import print_table, progress_bar
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.ticket import DESCRIPTION_MAX_LENGTH, EXTERNAL_ID_MAX_LENGTH, TITLE_MAX_LENGTH
from triage_pipeline.infrastructure.labelled_file import read_frame

IMPORT_CHUNK = 1000


def _problem(row: dict[str, Any]) -> str | None:
    for name, limit in (("title", TITLE_MAX_LENGTH), ("external_id", EXTERNAL_ID_MAX_LENGTH)):
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"{name} is missing"
        if len(value) > limit:
            return f"{name} is longer than {limit}"
    description = row.get("description") or ""
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX_LENGTH:
        return f"description must be text of at most {DESCRIPTION_MAX_LENGTH} characters"
    if any("\x00" in str(row.get(n) or "") for n in ("title", "description", "external_id")):
        return "NUL characters cannot be stored"
    return None


def import_tickets(container: Container, path: Path, owner: UUID | None) -> Counter[str]:
    """Create the file's tickets in chunks; returns counts by outcome (CREATED, DUPLICATE, INVALID, ...)."""
    check_import_file(path)
    try:
        frame = read_frame(path)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    counts: Counter[str] = Counter()
    valid: list[NewTicket] = []
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]
    for number, row in enumerate(records, start=1):
        problem = _problem(row)
        owner_id = owner or DEFAULT_OWNER_ID
        if owner is None and row.get("owner_id"):
            try:
                owner_id = UUID(str(row["owner_id"]))
            except ValueError:
                problem = problem or "owner_id is not a UUID"
        if problem:
            counts["INVALID"] += 1
            print(f"line {number}: INVALID: {problem}", file=sys.stderr)
            continue
        valid.append(NewTicket(owner_id, str(row["external_id"]), str(row["title"]), str(row.get("description") or "")))
    with progress_bar(f"importing {path.name}", len(valid)) as bar:
        for start in range(0, len(valid), IMPORT_CHUNK):
            chunk = valid[start : start + IMPORT_CHUNK]
            results = container.use(CreateTickets).execute(CreateTicketsCommand(chunk))
            counts.update(result.status.value for result in results)
            bar.update(bar.task_ids[0], completed=start + len(chunk))
    return counts


def cmd_import(container: Container, args: argparse.Namespace) -> int:
    """Import and print the counts."""
    counts = import_tickets(container, Path(args.file), args.owner_id)
    print_table(f"import of {args.file}", ["outcome", "tickets"], sorted(counts.items()))
    return 0


def export_rows(
    container: Container,
    status: TicketStatus | None,
    owner_id: UUID | None,
    review_status: ReviewStatus | None = None,
) -> list[dict[str, Any]]:
    """Every ticket (filtered) with its triage fields, newest first."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = container.use(ListTickets).execute(
            ListTicketsQuery(
                status=status, owner_id=owner_id, limit=MAX_PAGE_SIZE, cursor=cursor, review_status=review_status
            )
        )
        for ticket in page.items:
            answer = ticket.answer.as_dict() if ticket.answer else {}
            rows.append(
                {
                    "id": str(ticket.id),
                    "owner_id": str(ticket.owner_id),
                    "external_id": ticket.external_id,
                    "title": ticket.title,
                    "description": ticket.description,
                    "status": ticket.status.value,
                    "review_status": ticket.review_status.value if ticket.review_status else None,
                    **{
                        k: answer.get(k)
                        for k in ("category", "priority", "sentiment", "language", "summary", "confidence")
                    },
                    "created_at": ticket.created_at.isoformat(),
                    "updated_at": ticket.updated_at.isoformat(),
                }
            )
        cursor = page.next_cursor
        if cursor is None:
            return rows


def cmd_export(container: Container, args: argparse.Namespace) -> int:
    """Write tickets as CSV or JSONL to a file or stdout."""
    rows = export_rows(container, args.status, args.owner_id, args.review_status)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "csv":
            import pandas as pd  # only for CSV export: every other `triage` command starts without it

            pd.DataFrame(rows).to_csv(out, index=False)
        else:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"exported {len(rows)} ticket(s) to {args.output}", file=sys.stderr)
    return 0


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `tickets import|export`."""
    tickets = sub.add_parser("tickets", help="tickets: import FILE | export")
    actions = tickets.add_subparsers(dest="action", required=True)
    imp = actions.add_parser(
        "import", help="create tickets from a .jsonl or .csv file (title, description, external_id)"
    )
    imp.add_argument("file")
    imp.add_argument(
        "--owner-id", type=UUID, default=None, help="owner of every ticket (default: the file's or the default owner)"
    )
    imp.set_defaults(container_handler=cmd_import)
    exp = actions.add_parser("export", help="write tickets with their triage fields")
    exp.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    exp.add_argument("--output", "-o", default=None, help="file to write (default: stdout)")
    exp.add_argument("--status", type=TicketStatus, choices=list(TicketStatus), default=None)
    exp.add_argument("--owner-id", type=UUID, default=None)
    exp.add_argument(
        "--review-status",
        type=ReviewStatus,
        choices=list(ReviewStatus),
        default=None,
        help="only tickets in this review status (NEEDS_REVIEW: the review queue)",
    )
    exp.set_defaults(container_handler=cmd_export)
