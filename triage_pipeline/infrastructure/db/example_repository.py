"""Labelled examples in table `triage_examples`, found by trigram similarity (pg_trgm) in the database.

A small bank is searched exactly (a GiST kNN scan). From `APPROXIMATE_FROM` examples the scan's tail grows
(p95 112 ms at 100,000), so a large bank first takes the examples sharing MinHash bands with the ticket
(`domain.similarity_bands`, a GIN index of the `intarray` extension), keeps the `CANDIDATES` sharing the
most, and ranks those by the same trigram similarity; a ticket with fewer than k candidates is searched
exactly after all. The result is approximate: benchmark 9 reports how close it comes to the exact k nearest.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import cast
from uuid import UUID

from sqlalchemy import TextClause, delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from triage_pipeline.domain.example import TriageExample, search_text, text_key
from triage_pipeline.domain.example_classifier import BankCounts, BankEvidence, LabelCounts, classifier_terms
from triage_pipeline.domain.ports import ExampleQuery
from triage_pipeline.domain.similarity_bands import similarity_bands
from triage_pipeline.infrastructure.db.bulk_statements import (
    EXAMPLE_COLUMNS,
    INSERT_EXAMPLES,
    as_arrays,
    integer_array_text,
)
from triage_pipeline.infrastructure.db.mappers import example_from_row, example_to_values
from triage_pipeline.infrastructure.db.models import ExampleSeedRow, TriageExampleRow
from triage_pipeline.infrastructure.db.ticket_repository import decode_cursor, encode_cursor

# Every query's k nearest in one statement: a LATERAL kNN scan of the GiST trigram index per query
# (`<->` is 1 - similarity), filtered by owner (the query's own and shared ones) and vocabulary.
_NEAREST = text(
    f"""
    SELECT q.key AS query_key, n.distance, {", ".join(f"n.{c}" for c in EXAMPLE_COLUMNS)}
      FROM unnest(CAST(:keys AS uuid[]), CAST(:owners AS uuid[]), CAST(:texts AS text[]), CAST(:text_keys AS text[]))
           AS q(key, owner_id, search_text, text_key)
     CROSS JOIN LATERAL (
           SELECT e.*, e.search_text <-> q.search_text AS distance
             FROM triage_examples e
            WHERE (e.owner_id = q.owner_id OR e.owner_id IS NULL)
              AND e.category = ANY(CAST(:categories AS text[]))
              AND (NOT :exclude_same_text OR e.text_key <> q.text_key)
            ORDER BY e.search_text <-> q.search_text
            LIMIT :k) AS n
     ORDER BY q.key, n.distance, n.id
    """
)


# The same, with each query's candidates taken by the bands it shares (intarray's GIN index and `&`; the
# most shared first), then ranked by trigram distance. The bands travel as text: unnest would flatten an
# array of arrays.
_NEAREST_BY_BANDS = text(
    f"""
    SELECT q.key AS query_key, n.distance, {", ".join(f"n.{c}" for c in EXAMPLE_COLUMNS)}
      FROM unnest(CAST(:keys AS uuid[]), CAST(:owners AS uuid[]), CAST(:texts AS text[]),
                  CAST(:text_keys AS text[]), CAST(:bands AS text[]))
           AS given(key, owner_id, search_text, text_key, bands)
     CROSS JOIN LATERAL (SELECT given.*, CAST(given.bands AS integer[]) AS band_values) AS q
     CROSS JOIN LATERAL (
           SELECT c.*, c.search_text <-> q.search_text AS distance
             FROM (SELECT e.*
                     FROM triage_examples e
                    WHERE e.similarity_bands && q.band_values
                      AND (e.owner_id = q.owner_id OR e.owner_id IS NULL)
                      AND e.category = ANY(CAST(:categories AS text[]))
                      AND (NOT :exclude_same_text OR e.text_key <> q.text_key)
                    ORDER BY icount(e.similarity_bands & q.band_values) DESC, e.id
                    LIMIT :candidates) AS c
            ORDER BY c.search_text <-> q.search_text
            LIMIT :k) AS n
     ORDER BY q.key, n.distance, n.id
    """
)
# The example bank classifier's counts (kept by the triggers of migration 0015): the labels' totals of the
# queries' owners and the shared bank, and the counts of the terms the queries hold (two index scans, each
# on (term, owner_id): an OR of the owners would read every owner's rows of a common word).
_LABEL_COUNTS = text(
    """
    SELECT owner_id, field, label, examples, terms
      FROM example_label_counts
     WHERE (owner_id = ANY(CAST(:owners AS uuid[])) OR owner_id IS NULL) AND examples > 0
    """
)
_TERM_COUNTS = text(
    """
    SELECT term, owner_id, field, label, examples
      FROM example_term_counts
     WHERE term = ANY(CAST(:terms AS text[])) AND owner_id = ANY(CAST(:owners AS uuid[])) AND examples > 0
     UNION ALL
    SELECT term, owner_id, field, label, examples
      FROM example_term_counts
     WHERE term = ANY(CAST(:terms AS text[])) AND owner_id IS NULL AND examples > 0
    """
)
_SAME_TEXT = text(
    """
    SELECT owner_id, text_key, category, priority, classifier_terms
      FROM triage_examples
     WHERE text_key = ANY(CAST(:text_keys AS text[]))
       AND (owner_id = ANY(CAST(:owners AS uuid[])) OR owner_id IS NULL)
    """
)
_ESTIMATED_ROWS = text("SELECT reltuples FROM pg_class WHERE oid = 'triage_examples'::regclass")

APPROXIMATE_FROM = 20_000
"""Below this many examples (the planner's estimate for the whole table) the exact kNN is already fast
(p95 8 ms at 20,000) and every figure of the Quality section was measured with it."""
CANDIDATES = 30
"""Candidates ranked by trigram similarity per ticket: about 40 microseconds each."""


class SqlExampleRepository:
    def __init__(self, session: Session, approximate_from: int = APPROXIMATE_FROM) -> None:
        self._session = session
        self._approximate_from = approximate_from

    def add_many(self, examples: Sequence[TriageExample]) -> set[UUID]:
        """One statement for any number of examples; the ids of those stored (a text already in the bank,
        added by a concurrent import, is skipped by the unique index)."""
        if not examples:
            return set()
        rows = self._session.connection().execute(
            INSERT_EXAMPLES, as_arrays([example_to_values(e) for e in examples], EXAMPLE_COLUMNS)
        )
        return {row.id for row in rows}

    def upsert_for_ticket(self, example: TriageExample) -> TriageExample:
        values = example_to_values(example)
        updated = {k: v for k, v in values.items() if k not in ("id", "created_at", "ticket_id", "owner_id")}
        row = self._session.execute(
            insert(TriageExampleRow)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["ticket_id"], index_where=text("ticket_id IS NOT NULL"), set_=updated
            )
            .returning(TriageExampleRow)
        ).scalar_one()
        return example_from_row(row)

    def get(self, example_id: UUID) -> TriageExample | None:
        row = self._session.get(TriageExampleRow, example_id)
        return example_from_row(row) if row else None

    def delete(self, example_id: UUID) -> bool:
        result = self._session.execute(
            delete(TriageExampleRow).where(TriageExampleRow.id == example_id).returning(TriageExampleRow.id)
        )
        return result.first() is not None

    def page(
        self, *, owner_id: UUID | None, shared_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[TriageExample], str | None]:
        query = select(TriageExampleRow)
        if owner_id is not None:
            query = query.where((TriageExampleRow.owner_id == owner_id) | TriageExampleRow.owner_id.is_(None))
        elif shared_only:
            query = query.where(TriageExampleRow.owner_id.is_(None))
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            query = query.where(tuple_(TriageExampleRow.created_at, TriageExampleRow.id) < tuple_(created_at, last_id))
        rows = list(
            self._session.scalars(
                query.order_by(TriageExampleRow.created_at.desc(), TriageExampleRow.id.desc()).limit(limit + 1)
            )
        )
        next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
        return [example_from_row(r) for r in rows[:limit]], next_cursor

    def nearest(
        self,
        queries: Sequence[ExampleQuery],
        k: int,
        categories: Sequence[str],
        *,
        exclude_same_text: bool,
    ) -> dict[UUID, list[TriageExample]]:
        found: dict[UUID, list[TriageExample]] = {q.key: [] for q in queries}
        if not queries or k <= 0 or not categories:
            return found
        texts = {q.key: search_text(q.title, q.description) for q in queries}
        params = {"categories": list(categories), "exclude_same_text": exclude_same_text, "k": k}
        exact = list(queries)
        if self._large_bank():
            bands = [integer_array_text(similarity_bands(texts[q.key])) for q in queries]
            self._collect(
                found, _NEAREST_BY_BANDS, queries, texts, {**params, "bands": bands, "candidates": CANDIDATES}
            )
            exact = [q for q in queries if len(found[q.key]) < k]
            for q in exact:
                found[q.key] = []
        if exact:
            self._collect(found, _NEAREST, exact, texts, params)
        return found

    def _large_bank(self) -> bool:
        """From the planner's estimate, -1 until the table is first analysed; 0 or less means any bank."""
        if self._approximate_from <= 0:
            return True
        return float(self._session.connection().execute(_ESTIMATED_ROWS).scalar_one()) >= self._approximate_from

    def _collect(
        self,
        found: dict[UUID, list[TriageExample]],
        statement: TextClause,
        queries: Sequence[ExampleQuery],
        texts: dict[UUID, str],
        params: dict[str, object],
    ) -> None:
        rows = self._session.connection().execute(
            statement,
            {
                **params,
                "keys": [q.key for q in queries],
                "owners": [q.owner_id for q in queries],
                "texts": [texts[q.key] for q in queries],
                "text_keys": [text_key(q.title, q.description) for q in queries],
            },
        )
        for row in rows:
            found[row.query_key].append(
                example_from_row(cast(TriageExampleRow, row), similarity=round(1.0 - float(row.distance), 4))
            )

    def bank_counts(self, queries: Sequence[ExampleQuery], *, exclude_same_text: bool) -> dict[UUID, BankEvidence]:
        if not queries:
            return {}
        connection = self._session.connection()
        terms = {q.key: classifier_terms(q.title, q.description) for q in queries}
        owners = sorted({q.owner_id for q in queries if q.owner_id is not None}, key=str)
        labels: dict[tuple[UUID | None, str], dict[str, LabelCounts]] = defaultdict(dict)
        for row in connection.execute(_LABEL_COUNTS, {"owners": owners}):
            labels[(row.owner_id, row.field)][row.label] = LabelCounts(row.examples, row.terms)
        term_examples: dict[tuple[UUID | None, str], dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        asked = sorted(set().union(*terms.values()))
        for row in connection.execute(_TERM_COUNTS, {"terms": asked, "owners": owners}):
            term_examples[(row.owner_id, row.field)][row.term][row.label] = row.examples

        def bank(owner_id: UUID | None) -> BankEvidence:
            counts = {
                name: BankCounts(labels.get((owner_id, name), {}), term_examples.get((owner_id, name), {}))
                for name in ("category", "priority")
            }
            return BankEvidence(counts["category"], counts["priority"])

        shared = bank(None)
        scopes: dict[UUID | None, BankEvidence] = {owner_id: shared.merged(bank(owner_id)) for owner_id in owners}
        found = {q.key: replace(scopes.get(q.owner_id, shared), terms=terms[q.key]) for q in queries}
        if exclude_same_text:
            keys = {q.key: text_key(q.title, q.description) for q in queries}
            same: dict[str, list[tuple[UUID | None, str, str, list[str]]]] = defaultdict(list)
            for row in connection.execute(_SAME_TEXT, {"text_keys": sorted(set(keys.values())), "owners": owners}):
                own_terms = row.classifier_terms.split("\n") if row.classifier_terms else []
                same[row.text_key].append((row.owner_id, row.category, row.priority, own_terms))
            for q in queries:
                for owner_id, category, priority, own_terms in same.get(keys[q.key], []):
                    if owner_id is None or owner_id == q.owner_id:
                        found[q.key] = found[q.key].without(category, priority, own_terms)
        return found

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(TriageExampleRow)) or 0)

    def exists(self) -> bool:
        return bool(self._session.scalar(select(select(TriageExampleRow.id).exists())))

    def ids_by_text_key(self, owner_id: UUID | None, keys: Sequence[str]) -> dict[str, UUID]:
        if not keys:
            return {}
        owner = TriageExampleRow.owner_id.is_(None) if owner_id is None else TriageExampleRow.owner_id == owner_id
        rows = self._session.execute(
            select(TriageExampleRow.text_key, TriageExampleRow.id).where(
                owner, TriageExampleRow.text_key.in_(list(set(keys)))
            )
        )
        return {key: example_id for key, example_id in rows}

    def seed_mark(self, source: str) -> str | None:
        row = self._session.get(ExampleSeedRow, source)
        return row.last_reference if row else None

    def set_seed_mark(self, source: str, reference: str) -> None:
        self._session.execute(
            insert(ExampleSeedRow)
            .values(source=source, last_reference=reference)
            .on_conflict_do_update(
                index_elements=["source"], set_={"last_reference": reference, "updated_at": func.now()}
            )
        )
