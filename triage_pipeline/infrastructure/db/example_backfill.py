"""A migration's fill of a new column derived from each existing example (migrations 0011, 0015).

Page by page in id order, so a large bank never sits in memory at once; each page is one UPDATE from arrays.
Migrations call this with Alembic's connection; keep its behaviour as it is, since applied migrations run it.
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

PAGE = 5_000
_BELOW_EVERY_UUID4 = "00000000-0000-0000-0000-000000000000"


def fill_example_column(column: str, reads: Sequence[str], value: Callable[[sa.Row[Any]], str], sql_type: str) -> None:
    """Set `column` of every example to `value(row)`, the row holding `id` and the columns `reads`; the value
    travels as text and is cast to `sql_type`."""
    connection = op.get_bind()
    last_id = _BELOW_EVERY_UUID4
    while True:
        rows = connection.execute(
            sa.text(
                f"SELECT id, {', '.join(reads)} FROM triage_examples WHERE id > CAST(:last AS uuid)"
                " ORDER BY id LIMIT :page"
            ),
            {"last": last_id, "page": PAGE},
        ).all()
        if not rows:
            return
        connection.execute(
            sa.text(
                f"UPDATE triage_examples e SET {column} = CAST(v.value AS {sql_type})"
                " FROM unnest(CAST(:ids AS uuid[]), CAST(:values AS text[])) AS v(id, value) WHERE e.id = v.id"
            ),
            {"ids": [row.id for row in rows], "values": [value(row) for row in rows]},
        )
        last_id = rows[-1].id
