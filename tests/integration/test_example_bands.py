"""A large bank's retrieval: candidates taken by MinHash bands (intarray GIN index), ranked by trigram
similarity; the exact kNN when too few share a band. Real PostgreSQL; the bank is small, so the repository
is told to treat it as large."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID, uuid4

from alembic import command
from sqlalchemy import create_engine, event, pool, text

from tests.integration.test_examples_and_review import other_owner, triage
from triage_pipeline.application.corrections import CorrectTriage, CorrectTriageCommand
from triage_pipeline.application.examples import ExampleItemStatus, ImportExamples, ImportExamplesCommand, NewExample
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.example import search_text
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.ports import ExampleQuery
from triage_pipeline.domain.similarity_bands import similarity_bands
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES, Priority
from triage_pipeline.infrastructure.db.example_repository import SqlExampleRepository
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres
from triage_pipeline.infrastructure.migrations import alembic_config

TOPICS = {
    "billing": "I was charged twice for my annual plan and the refund promised by support never reached my card.",
    "outage": "The storefront returns a gateway error on every page and no customer can reach the checkout today.",
    "account_access": "After resetting my password the login page keeps sending me back to the sign in form.",
    "how_to": "How do I export last month's orders with their tax lines into a spreadsheet for our accountant?",
    "security": "Someone added an unknown admin user to our store and changed the payout bank account details.",
    "feature_request": "Please let us schedule discount codes so they start and end automatically on given dates.",
}
FILLER = ["please", "again", "still", "also", "today", "really", "thanks", "team", "urgent", "hello"]


def variant(rng: random.Random, sentence: str) -> str:
    words = sentence.split()
    for _ in range(3):
        words.insert(rng.randint(0, len(words)), rng.choice(FILLER))
    return " ".join(words)


def import_bank(container: Container, owner: UUID | None, per_topic: int, seed: int) -> None:
    rng = random.Random(seed)
    items = [
        NewExample(f"{category} case {i}", variant(rng, sentence), category, "normal")
        for category, sentence in TOPICS.items()
        for i in range(per_topic)
    ]
    results = container.use(ImportExamples).execute(ImportExamplesCommand(items, owner))
    assert all(r.status is ExampleItemStatus.CREATED for r in results)


@contextmanager
def statements(container: Container) -> Iterator[list[str]]:
    """The SQL statements run meanwhile, to tell which search answered."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(container.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(container.engine, "before_cursor_execute", record)


def searched_by(seen: list[str]) -> list[str]:
    return ["bands" if "similarity_bands &&" in s else "exact" for s in seen if "CROSS JOIN LATERAL" in s]


def ask(owner: UUID, category: str) -> ExampleQuery:
    return ExampleQuery(uuid4(), owner, f"{category} question", TOPICS[category])


def test_bands_find_the_nearest_example_and_others_almost_as_near_as_the_exact_search(container: Container) -> None:
    import_bank(container, None, per_topic=8, seed=1)
    queries = [ask(DEFAULT_OWNER_ID, category) for category in TOPICS]
    with container.uow() as uow, statements(container) as seen:
        exact = SqlExampleRepository(uow.session, approximate_from=2**62).nearest(
            queries, 4, DEFAULT_CATEGORIES, exclude_same_text=True
        )
        banded = SqlExampleRepository(uow.session, approximate_from=0).nearest(
            queries, 4, DEFAULT_CATEGORIES, exclude_same_text=True
        )
    assert searched_by(seen) == ["exact", "bands"]
    for query, category in zip(queries, TOPICS, strict=True):
        assert [e.category for e in banded[query.key]] == [category] * 4
        assert banded[query.key][0].id == exact[query.key][0].id
        # Approximate: a near example that shares no band is missed, so the rest may be slightly less similar.
        found, best = (sum(e.similarity or 0 for e in nearest[query.key]) for nearest in (banded, exact))
        assert found >= 0.95 * best


def test_bands_keep_to_the_owner_the_vocabulary_and_never_return_the_same_text(container: Container) -> None:
    other = other_owner(container)
    import_bank(container, other, per_topic=6, seed=2)
    results = container.use(ImportExamples).execute(
        ImportExamplesCommand([NewExample("billing question", TOPICS["billing"], "billing", "high")], DEFAULT_OWNER_ID)
    )
    [mine] = [r.example_id for r in results]
    same_text = ask(DEFAULT_OWNER_ID, "billing")
    with container.uow() as uow:
        banded = SqlExampleRepository(uow.session, approximate_from=0)
        as_me = banded.nearest([same_text], 3, DEFAULT_CATEGORIES, exclude_same_text=False)[same_text.key]
        without_itself = banded.nearest([same_text], 3, DEFAULT_CATEGORIES, exclude_same_text=True)[same_text.key]
        as_other = ExampleQuery(uuid4(), other, "billing question", TOPICS["billing"])
        theirs = banded.nearest([as_other], 3, ("outage", "how_to"), exclude_same_text=False)[as_other.key]
    assert [e.id for e in as_me] == [mine]
    assert without_itself == []
    assert len(theirs) == 3 and {e.owner_id for e in theirs} == {other}
    assert {e.category for e in theirs} <= {"outage", "how_to"}


def test_only_the_tickets_sharing_no_band_with_enough_examples_are_searched_exactly(container: Container) -> None:
    import_bank(container, None, per_topic=2, seed=3)
    unrelated = ExampleQuery(uuid4(), DEFAULT_OWNER_ID, "zebra", "quokka axolotl narwhal pangolin")
    wordless = ExampleQuery(uuid4(), DEFAULT_OWNER_ID, "12345", "678 910")
    near = ask(DEFAULT_OWNER_ID, "outage")
    with container.uow() as uow, statements(container) as seen:
        assert similarity_bands(search_text("zebra", "quokka axolotl narwhal pangolin"))  # it has bands, none shared
        found = SqlExampleRepository(uow.session, approximate_from=0).nearest(
            [unrelated, wordless, near], 2, DEFAULT_CATEGORIES, exclude_same_text=True
        )
    assert searched_by(seen) == ["bands", "exact"]
    assert len(found[unrelated.key]) == 2 and len(found[wordless.key]) == 2
    assert [e.category for e in found[near.key]] == ["outage", "outage"]


def test_imported_and_corrected_examples_store_the_bands_of_their_search_text(container: Container) -> None:
    import_bank(container, None, per_topic=1, seed=4)
    ticket = triage(container, "BANDS-1", "Refund missing")
    container.use(CorrectTriage).execute(CorrectTriageCommand(ticket.id, "billing", Priority.HIGH, actor="agent"))
    with container.uow() as uow:
        rows = uow.session.execute(text("SELECT search_text, similarity_bands, source FROM triage_examples")).all()
    assert {row.source for row in rows} == {"import", "correction"}
    assert all(row.similarity_bands == similarity_bands(row.search_text) and row.similarity_bands for row in rows)


def test_the_migration_gives_existing_examples_their_bands(pg_server: EmbeddedPostgres) -> None:
    url = pg_server.ensure_database("triage_bands_migration")
    config = alembic_config(url)
    command.upgrade(config, "0010")
    searched = search_text("Refund missing", TOPICS["billing"])
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO triage_examples (id, title, description, category, priority, source, search_text,"
                " text_key, created_at, updated_at) VALUES (:id, 'Refund missing', :d, 'billing', 'high', 'import',"
                " :s, 'k', now(), now())"
            ),
            {"id": uuid4(), "d": TOPICS["billing"], "s": searched},
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT similarity_bands FROM triage_examples")).scalar_one()
    engine.dispose()
    assert stored == similarity_bands(searched)
