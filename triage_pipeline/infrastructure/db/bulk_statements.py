"""The statements on many rows of the hot paths (triage loop, bulk intake, batch claims), built once.

Each takes one array parameter per column, so one statement of a constant text (prepared once by the
server) reads or writes any number of rows in one round trip; psycopg's executemany would pay a pipelined
round of work per row. They are Core statements on the tables: no ORM hydration, no ORM DML bookkeeping,
cache keys computed once. Their parameters are built by the repositories, one list per column.
"""

import json
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, TextClause, Uuid, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.base import PGDialect

from triage_pipeline.infrastructure.db.models import (
    TicketRow,
    TriageExampleRow,
    TriageJobBatchItemRow,
    TriageJobLogRow,
    TriageJobRow,
)

_TICKETS = cast(Table, TicketRow.__table__)
_JOBS = cast(Table, TriageJobRow.__table__)
_ITEMS = cast(Table, TriageJobBatchItemRow.__table__)
_LOGS = cast(Table, TriageJobLogRow.__table__)
_EXAMPLES = cast(Table, TriageExampleRow.__table__)
_PG = PGDialect()  # type: ignore[no-untyped-call]  # only compiles column types to SQL


def _unnest(table: Table, columns: Sequence[str]) -> str:
    """`unnest(CAST(:a AS type[]), ...) AS v(a, ...)`: one array parameter per column, typed as the column.
    An array column travels as text (see `as_arrays`), since unnest would flatten an array of arrays."""
    casts = ", ".join(
        f"CAST(:{c} AS {'text' if _is_array(table, c) else table.c[c].type.compile(dialect=_PG)}[])" for c in columns
    )
    return f"unnest({casts}) AS v({', '.join(columns)})"


def _is_array(table: Table, column: str) -> bool:
    return isinstance(table.c[column].type, ARRAY)


# The array columns the bulk statements write: the examples' bands, integers (text would need quoting).
_INTEGER_ARRAYS = frozenset(c.name for c in _EXAMPLES.c if _is_array(_EXAMPLES, c.name))


def _value(table: Table, column: str) -> str:
    """An unnested column's value, an array column's cast back from its text."""
    return (
        f"CAST(v.{column} AS {table.c[column].type.compile(dialect=_PG)})"
        if _is_array(table, column)
        else f"v.{column}"
    )


def _update_from_arrays(table: Table, keys: Sequence[str], columns: Sequence[str], where: str = "") -> TextClause:
    """UPDATE of many rows, each matched on `keys`, from one array parameter per column."""
    assignments = ", ".join(f"{c} = {_value(table, c)}" for c in columns)
    matches = " AND ".join([f"t.{k} = v.{k}" for k in keys] + ([where] if where else []))
    return text(f"UPDATE {table.name} AS t SET {assignments} FROM {_unnest(table, [*keys, *columns])} WHERE {matches}")


def _insert_from_arrays(table: Table, columns: Sequence[str]) -> TextClause:
    names = ", ".join(columns)
    values = ", ".join(_value(table, c) for c in columns)
    return text(f"INSERT INTO {table.name} ({names}) SELECT {values} FROM {_unnest(table, columns)}")


def as_arrays(rows: list[dict[str, object]], columns: Sequence[str]) -> dict[str, list[object]]:
    """One list per column; a mapper that grew a column these statements do not write is a bug, not data loss."""
    if rows and rows[0].keys() != set(columns):
        raise RuntimeError(f"columns {sorted(rows[0].keys() ^ set(columns))} are not in the bulk statement")
    return {
        name: [integer_array_text(row[name]) for row in rows]
        if name in _INTEGER_ARRAYS
        else [row[name] for row in rows]
        for name in columns
    }


def integer_array_text(value: object) -> str:
    """An integer list as PostgreSQL's array literal: how one array travels inside an array parameter, which
    unnest would otherwise flatten (`_unnest`, the band search of `SqlExampleRepository`)."""
    if not isinstance(value, list):
        raise TypeError(f"an integer array column needs a list, not {type(value).__name__}")
    return "{" + ",".join(str(int(item)) for item in value) + "}"


def json_text(value: object) -> str | None:
    """A JSONB value as the text the array parameter carries."""
    return None if value is None else json.dumps(value)


# The locking read of the triage loop: jobs with their tickets, the columns labelled JOB_PREFIX + name and
# TICKET_PREFIX + name (read by mappers.job_and_ticket_from_row).
JOB_PREFIX = "j_"
TICKET_PREFIX = "t_"
GET_JOBS_WITH_TICKETS = (
    select(
        *(c.label(f"{JOB_PREFIX}{c.name}") for c in _JOBS.c if c.name != "batch_id"),
        *(c.label(f"{TICKET_PREFIX}{c.name}") for c in _TICKETS.c),
    )
    .join_from(_JOBS, _TICKETS, _TICKETS.c.id == _JOBS.c.ticket_id)
    .where(_JOBS.c.id == any_(bindparam("ids", type_=ARRAY(Uuid()))))
)
# Rows are locked in id order, so two lockers of overlapping sets cannot deadlock.
GET_JOBS_WITH_TICKETS_FOR_UPDATE = GET_JOBS_WITH_TICKETS.order_by(_JOBS.c.id).with_for_update(of=_JOBS)

# The triage loop's writes: the triage state of jobs, tickets and batch items.
UPDATE_JOBS = _update_from_arrays(
    _JOBS, ["id"], ["status", "attempts", "last_error", "started_at", "finished_at", "heartbeat_at", "updated_at"]
)
UPDATE_TICKETS = _update_from_arrays(
    _TICKETS, ["id"], ["status", "category", "priority", "triage_result", "review_status", "updated_at"]
)
SET_ITEMS_STATUS = _update_from_arrays(
    _ITEMS, ["job_id"], ["status", "updated_at"], where="t.batch_id = CAST(:batch_id AS uuid)"
)

# Bulk intake: every column of the new rows as one array each (ticket_to_values / job_to_values keys).
TICKET_COLUMNS = [
    "id",
    "owner_id",
    "external_id",
    "title",
    "description",
    "status",
    "category",
    "priority",
    "triage_result",
    "review_status",
    "created_at",
    "updated_at",
]
INSERT_NEW_TICKETS = text(
    _insert_from_arrays(_TICKETS, TICKET_COLUMNS).text
    + " ON CONFLICT ON CONSTRAINT uq_tickets_owner_external_id DO NOTHING RETURNING id"
)
JOB_COLUMNS = [
    "id",
    "ticket_id",
    "status",
    "attempts",
    "last_error",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "created_at",
    "updated_at",
]
INSERT_JOBS = _insert_from_arrays(_JOBS, JOB_COLUMNS)

# The attempt logs (log_to_values keys), the JSONB ones passed as text.
LOG_COLUMNS = [c.name for c in _LOGS.c]
LOG_JSON_COLUMNS = frozenset(c.name for c in _LOGS.c if isinstance(c.type, JSONB))
INSERT_LOGS = _insert_from_arrays(_LOGS, LOG_COLUMNS)

# The items of a new batch (its claim).
ITEM_COLUMNS = ["id", "batch_id", "job_id", "status", "created_at", "updated_at"]
INSERT_ITEMS = _insert_from_arrays(_ITEMS, ITEM_COLUMNS)

# Imported examples (example_to_values keys).
EXAMPLE_COLUMNS = [c.name for c in _EXAMPLES.c]
INSERT_EXAMPLES = text(_insert_from_arrays(_EXAMPLES, EXAMPLE_COLUMNS).text + " ON CONFLICT DO NOTHING RETURNING id")
