"""Benchmark 9: few-shot retrieval, the k most similar examples of a ticket among 100,000, in milliseconds.

The query is the real one (`SqlExampleRepository.nearest`: at this size, candidates sharing MinHash bands
with the ticket, ranked by trigram similarity, filtered by owner and vocabulary), run for one ticket at a time
(the cost a single triage pays) and for 16 tickets in one statement (the coordinator's grouped start). Since
those candidates make the answer approximate, the row also says how close it comes to the exact k nearest
(the GiST kNN scan of a small bank): their mean similarity side by side, and the share of the exact ones
found. The row also times the example bank classifier's reads for the same tickets (`bank_counts`: the
labels' totals and the counts of the tickets' terms, kept by triggers as the examples are copied in). The
examples are variants of the shipped labelled
tickets: sentences shuffled and cut, numbers, names and filler words changed, so no two texts are equal and
the index holds 100,000 distinct texts of realistic length. Queries are the 160 evaluation tickets.

    .venv/bin/python bench/retrieval.py [--quick]
"""

import json
import random
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import Postgres, Row, percentile, psycopg_dsn, require, run_standalone, say

from triage_pipeline.domain.example import TriageExample, search_text, text_key
from triage_pipeline.domain.example_classifier import BankEvidence, classifier_terms, terms_text
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.ports import ExampleQuery, UnitOfWork
from triage_pipeline.domain.similarity_bands import similarity_bands
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES

EXAMPLES = 100_000
K = 5
GROUP = 16
TARGET_P95_MS = 10.0
DATA = Path(__file__).resolve().parents[1] / "triage_pipeline" / "data"
FILLER = [
    "please",
    "asap",
    "again",
    "still",
    "also",
    "today",
    "now",
    "really",
    "just",
    "thanks",
    "hello",
    "team",
    "order",
    "store",
    "customer",
    "app",
]


def variant(rng: random.Random, title: str, description: str) -> tuple[str, str]:
    """A different ticket about the same thing: shuffled, cut and reworded sentences."""
    sentences = re.split(r"(?<=[.!?])\s+", description)
    rng.shuffle(sentences)
    kept = sentences[: max(1, rng.randint(len(sentences) // 2, len(sentences)))]
    text = " ".join(kept)
    text = re.sub(r"\d+", lambda _m: str(rng.randint(1, 99999)), text)
    words = text.split()
    for _ in range(rng.randint(1, 6)):
        words.insert(rng.randint(0, len(words)), rng.choice(FILLER))
    return f"{title} {rng.choice(FILLER)}", " ".join(words)


def sources() -> list[dict[str, str]]:
    rows = []
    for name in ("tickets_labelled.jsonl", "starter_examples.jsonl"):
        path = DATA / name
        if path.exists():
            rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def seed(dsn: str, count: int) -> None:
    """`count` shared examples (a fifth of them the default owner's), by COPY, then VACUUM ANALYZE."""
    import psycopg

    rng = random.Random(7)
    base = sources()
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE triage_examples")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY triage_examples (id, owner_id, title, description, category, priority, source, reference,"
                " search_text, similarity_bands, text_key, classifier_terms, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for i in range(count):
                row = base[i % len(base)]
                title, description = variant(rng, row["title"], row["description"])
                description += f" (case {i})"  # two variants may still coincide; a bank holds a text once
                owner = DEFAULT_OWNER_ID if i % 5 == 0 else None
                copy.write_row(
                    (
                        uuid4(),
                        owner,
                        title[:300],
                        description,
                        row["category"],
                        row["priority"],
                        "import",
                        f"bench-{i}",
                        search_text(title, description),
                        similarity_bands(search_text(title, description)),
                        text_key(title, description),
                        terms_text(classifier_terms(title, description)),
                        now,
                        now,
                    )
                )
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE triage_examples")


def timings[T](
    url: str,
    queries: list[dict[str, str]],
    group: int,
    rounds: int,
    read: Callable[[UnitOfWork, list[ExampleQuery]], T],
    check: Callable[[list[ExampleQuery], T], None],
) -> list[float]:
    """Milliseconds per call of `read` for `group` tickets at once, over `rounds` calls; `check` (not timed)
    refuses a call that found too little."""
    from triage_pipeline.infrastructure.db.engine import make_engine
    from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

    uow = SqlUnitOfWorkFactory(make_engine(url))
    times: list[float] = []
    for i in range(rounds):
        chosen = [queries[(i * group + j) % len(queries)] for j in range(group)]
        asked = [ExampleQuery(uuid4(), DEFAULT_OWNER_ID, q["title"], q["description"]) for q in chosen]
        with uow() as tx:
            began = time.perf_counter()
            found = read(tx, asked)
            times.append((time.perf_counter() - began) * 1000)
        check(asked, found)
    uow.engine.dispose()
    return times


def nearest(tx: UnitOfWork, asked: list[ExampleQuery]) -> dict[UUID, list[TriageExample]]:
    return tx.examples.nearest(asked, K, DEFAULT_CATEGORIES, exclude_same_text=True)


def all_k_found(asked: list[ExampleQuery], found: dict[UUID, list[TriageExample]]) -> None:
    total = sum(len(v) for v in found.values())
    require(total == len(asked) * K, f"retrieval returned {total} examples, not {len(asked) * K}")


def bank_counts(tx: UnitOfWork, asked: list[ExampleQuery]) -> dict[UUID, BankEvidence]:
    return tx.examples.bank_counts(asked, exclude_same_text=False)


def counts_found(asked: list[ExampleQuery], found: dict[UUID, BankEvidence]) -> None:
    require(all(found[a.key].category.labels for a in asked), "the bank classifier found no counts")


def closeness(url: str, queries: list[dict[str, str]]) -> tuple[float, float, float]:
    """Mean similarity of the k found (as `nearest` runs at this size) and of the exact k nearest, and the
    share of the exact ones found, over all the queries."""
    from triage_pipeline.infrastructure.db.engine import make_engine
    from triage_pipeline.infrastructure.db.example_repository import SqlExampleRepository
    from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

    uow = SqlUnitOfWorkFactory(make_engine(url))
    asked = [ExampleQuery(uuid4(), DEFAULT_OWNER_ID, q["title"], q["description"]) for q in queries]
    with uow() as tx:
        found = tx.examples.nearest(asked, K, DEFAULT_CATEGORIES, exclude_same_text=True)
        exact = SqlExampleRepository(tx.session, approximate_from=2**62).nearest(
            asked, K, DEFAULT_CATEGORIES, exclude_same_text=True
        )
    uow.engine.dispose()

    def mean(nearest: dict[UUID, list[TriageExample]]) -> float:
        return sum(e.similarity or 0.0 for v in nearest.values() for e in v) / (len(asked) * K)

    shared = sum(len({e.id for e in found[a.key]} & {e.id for e in exact[a.key]}) for a in asked)
    return mean(found), mean(exact), shared / (len(asked) * K)


def run(pg: Postgres, quick: bool) -> list[Row]:
    """Benchmark 9 on `pg`; the rows of the table."""
    count = 20_000 if quick else EXAMPLES
    rounds = 60 if quick else 200
    url = pg.database("bench_retrieval")
    say(f"benchmark 9: seeding {count:,} examples")
    seed(psycopg_dsn(url), count)
    queries = [json.loads(line) for line in (DATA / "tickets_labelled.jsonl").read_text().splitlines() if line]
    timings(url, queries, 1, 10, nearest, all_k_found)  # warm-up: connections, statement cache, index pages
    say(f"benchmark 9: {rounds} single-ticket retrievals and {rounds // 4} of {GROUP} tickets at once")
    single = timings(url, queries, 1, rounds, nearest, all_k_found)
    grouped = timings(url, queries, GROUP, rounds // 4, nearest, all_k_found)
    found_similarity, exact_similarity, shared = closeness(url, queries)
    timings(url, queries, 1, 10, bank_counts, counts_found)  # warm-up
    bank_single = timings(url, queries, 1, rounds, bank_counts, counts_found)
    bank_grouped = timings(url, queries, GROUP, rounds // 4, bank_counts, counts_found)
    p95 = percentile(single, 95)
    return [
        Row(
            "9",
            f"few-shot retrieval: {K} nearest of {count:,} examples, one ticket",
            f"p50 {percentile(single, 50):.1f} / p95 {p95:.1f} ms",
            "-",
            "-",
            f"p95 <= {TARGET_P95_MS:g} ms",
            p95 <= TARGET_P95_MS,
            (
                f"{rounds} tickets; {GROUP} tickets in one statement: p50 {percentile(grouped, 50):.1f} ms "
                f"({percentile(grouped, 50) / GROUP:.1f} ms per ticket); mean similarity of the {K} found "
                f"{found_similarity:.3f}, of the exact {K} nearest {exact_similarity:.3f}; {shared:.0%} of the exact "
                f"ones found; the example bank classifier's counts: p50 {percentile(bank_single, 50):.1f} / p95 "
                f"{percentile(bank_single, 95):.1f} ms for one ticket, p50 {percentile(bank_grouped, 50):.1f} ms "
                f"for {GROUP}"
            ),
        )
    ]


def main() -> None:
    """Run on a throwaway PostgreSQL and print the table."""
    run_standalone(__doc__, run)


if __name__ == "__main__":
    main()
