"""The example bank's classifier (`domain.example_classifier`): every example's terms, and per owner, field
(category, priority), label and term how many examples contain it, kept by triggers.

The counts are what the classifier reads, so a ticket is classified by the whole bank in two indexed reads
however large it grows. Triggers keep them right for every way an example comes or goes (import, a
correction's upsert, `DELETE /examples`, a deleted ticket or owner cascading, TRUNCATE). They are
statement-level with transition tables: a bulk import adds its counts in one statement per table, in one
order (term, owner, field, label), so two statements lock rows in the same order (a transaction that wrote
examples in several statements could still deadlock with another: the application writes them in one). The
counts of an owner's common words are hot rows: writers of one owner's examples wait for each other's commit.

The count tables have no foreign key to `owners`: a deleted owner's examples are subtracted by the trigger
after the owner's row is gone, which a foreign key would refuse; counts that reach zero are deleted.
Existing examples get their terms here from the function new examples use (imported, as 0011 does, because
the two must agree); the backfill runs under the lock of ADD COLUMN, so on a large bank triage waits for it.
A row written by hand without `classifier_terms` counts no terms.

A prompt version settles with the classifier only when its `example_bank` says so (versions are never
edited: the existing ones keep settling as they did); migration 0016 adds the version that does.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from triage_pipeline.domain.example_classifier import classifier_terms, terms_text
from triage_pipeline.infrastructure.db.example_backfill import fill_example_column

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The changed rows, as the trigger of each event sees them (transition tables are visible to EXECUTE too).
_APPLY = r"""
CREATE FUNCTION example_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT owner_id, category, priority, classifier_terms, 1 AS sign FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT owner_id, category, priority, classifier_terms, -1 AS sign FROM old_rows'
        ELSE 'SELECT owner_id, category, priority, classifier_terms, -1 AS sign FROM old_rows'
             ' UNION ALL SELECT owner_id, category, priority, classifier_terms, 1 FROM new_rows'
    END;
BEGIN
    EXECUTE format($sql$
        INSERT INTO example_term_counts AS c (term, owner_id, field, label, examples)
        SELECT t.term, ch.owner_id, f.field, f.label, sum(ch.sign)
          FROM (%s) AS ch
         CROSS JOIN LATERAL (VALUES ('category', ch.category), ('priority', ch.priority)) AS f(field, label)
         CROSS JOIN LATERAL unnest(string_to_array(ch.classifier_terms, E'\n')) AS t(term)
         GROUP BY t.term, ch.owner_id, f.field, f.label
        HAVING sum(ch.sign) <> 0
         ORDER BY t.term, ch.owner_id, f.field, f.label
            ON CONFLICT (term, owner_id, field, label) DO UPDATE SET examples = c.examples + excluded.examples
    $sql$, changes);
    EXECUTE format($sql$
        INSERT INTO example_label_counts AS c (owner_id, field, label, examples, terms)
        SELECT ch.owner_id, f.field, f.label, sum(ch.sign), sum(ch.sign * ch.terms)
          FROM (SELECT *, cardinality(string_to_array(classifier_terms, E'\n')) AS terms FROM (%s) AS s) AS ch
         CROSS JOIN LATERAL (VALUES ('category', ch.category), ('priority', ch.priority)) AS f(field, label)
         GROUP BY ch.owner_id, f.field, f.label
        HAVING sum(ch.sign) <> 0 OR sum(ch.sign * ch.terms) <> 0
         ORDER BY ch.owner_id, f.field, f.label
            ON CONFLICT (owner_id, field, label)
            DO UPDATE SET examples = c.examples + excluded.examples, terms = c.terms + excluded.terms
    $sql$, changes);
    -- What reached zero is gone (a deleted owner's counts, a word no example holds any more), looked up by
    -- the removed rows' own (term, owner) and owner, so that no other owner's rows are read.
    IF TG_OP <> 'INSERT' THEN
        EXECUTE format($sql$
            WITH removed AS (SELECT DISTINCT t.term, ch.owner_id
                               FROM (%s) AS ch
                              CROSS JOIN LATERAL unnest(string_to_array(ch.classifier_terms, E'\n')) AS t(term)
                              WHERE ch.sign < 0),
                 owned AS (DELETE FROM example_term_counts c USING removed r
                            WHERE c.term = r.term AND c.owner_id = r.owner_id AND c.examples = 0)
            DELETE FROM example_term_counts c USING removed r
             WHERE c.term = r.term AND c.owner_id IS NULL AND r.owner_id IS NULL AND c.examples = 0
        $sql$, changes);
        EXECUTE format($sql$
            WITH removed AS (SELECT DISTINCT owner_id FROM (%s) AS ch WHERE ch.sign < 0),
                 owned AS (DELETE FROM example_label_counts c USING removed r
                            WHERE c.owner_id = r.owner_id AND c.examples = 0 AND c.terms = 0)
            DELETE FROM example_label_counts c
             WHERE c.owner_id IS NULL AND EXISTS (SELECT 1 FROM removed WHERE owner_id IS NULL)
               AND c.examples = 0 AND c.terms = 0
        $sql$, changes);
    END IF;
    RETURN NULL;
END $$
"""

_CLEAR = """
CREATE FUNCTION example_counts_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE example_term_counts, example_label_counts;
    RETURN NULL;
END $$
"""

_TRIGGERS = (
    "CREATE TRIGGER example_counts_insert AFTER INSERT ON triage_examples REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION example_counts_apply()",
    "CREATE TRIGGER example_counts_update AFTER UPDATE ON triage_examples"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION example_counts_apply()",
    "CREATE TRIGGER example_counts_delete AFTER DELETE ON triage_examples REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION example_counts_apply()",
    "CREATE TRIGGER example_counts_truncate AFTER TRUNCATE ON triage_examples"
    " FOR EACH STATEMENT EXECUTE FUNCTION example_counts_clear()",
)


def upgrade() -> None:
    op.add_column("prompts", sa.Column("example_bank", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("triage_examples", sa.Column("classifier_terms", sa.Text(), nullable=False, server_default=""))
    fill_example_column(
        "classifier_terms",
        ["title", "description"],
        lambda row: terms_text(classifier_terms(row.title, row.description)),
        "text",
    )
    op.create_table(
        "example_term_counts",
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
    )
    op.create_index(
        "uq_example_term_counts",
        "example_term_counts",
        ["term", "owner_id", "field", "label"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "example_label_counts",
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("terms", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "uq_example_label_counts",
        "example_label_counts",
        ["owner_id", "field", "label"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.execute(_APPLY)
    op.execute(_CLEAR)
    # The examples already there, counted the way the trigger counts them.
    op.execute(
        r"""
        INSERT INTO example_term_counts (term, owner_id, field, label, examples)
        SELECT t.term, e.owner_id, f.field, f.label, count(*)
          FROM triage_examples e
         CROSS JOIN LATERAL (VALUES ('category', e.category), ('priority', e.priority)) AS f(field, label)
         CROSS JOIN LATERAL unnest(string_to_array(e.classifier_terms, E'\n')) AS t(term)
         GROUP BY t.term, e.owner_id, f.field, f.label
        """
    )
    op.execute(
        r"""
        INSERT INTO example_label_counts (owner_id, field, label, examples, terms)
        SELECT e.owner_id, f.field, f.label, count(*), sum(cardinality(string_to_array(e.classifier_terms, E'\n')))
          FROM triage_examples e
         CROSS JOIN LATERAL (VALUES ('category', e.category), ('priority', e.priority)) AS f(field, label)
         GROUP BY e.owner_id, f.field, f.label
        """
    )
    for trigger in _TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    for name in ("example_counts_insert", "example_counts_update", "example_counts_delete", "example_counts_truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON triage_examples")
    op.execute("DROP FUNCTION IF EXISTS example_counts_apply()")
    op.execute("DROP FUNCTION IF EXISTS example_counts_clear()")
    op.drop_table("example_label_counts")
    op.drop_table("example_term_counts")
    op.drop_column("triage_examples", "classifier_terms")
    op.drop_column("prompts", "example_bank")
