"""The shipped starter examples reach the shared bank once each: a grown file adds only its new ones, and an
example an admin deleted does not come back (real PostgreSQL)."""

from triage_pipeline.application.examples import (
    DeleteExample,
    DeleteExampleCommand,
    ListExamples,
    ListExamplesQuery,
    NewExample,
    SeedExamplesCommand,
    SeedSharedExamples,
)
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.labelled_file import read_labelled, starter_examples_path

TOPICS = ["refund never arrived", "checkout spins forever", "cannot log in after reset", "export orders to csv"]


def starters(count: int) -> list[NewExample]:
    return [
        NewExample(
            f"Starter {i}: {TOPICS[i % len(TOPICS)]}",
            f"case {i} of the shipped file",
            "bug",
            "normal",
            reference=f"starter STARTER-{i:04d}",
        )
        for i in range(1, count + 1)
    ]


def shared_references(container: Container) -> set[str]:
    return {
        e.reference
        for e in container.use(ListExamples).execute(ListExamplesQuery(None, shared_only=True, limit=1000)).items
    }


def test_a_start_imports_the_starter_examples_then_only_those_a_grown_file_adds(container: Container) -> None:
    seed = container.use(SeedSharedExamples)
    assert seed.execute(SeedExamplesCommand(starters(4))) == 4
    assert seed.execute(SeedExamplesCommand(starters(4))) == 0
    assert seed.execute(SeedExamplesCommand(starters(7))) == 3
    assert shared_references(container) == {f"starter STARTER-{i:04d}" for i in range(1, 8)}


def test_a_starter_example_an_admin_deleted_does_not_come_back(container: Container) -> None:
    seed = container.use(SeedSharedExamples)
    seed.execute(SeedExamplesCommand(starters(4)))
    deleted = next(
        e
        for e in container.use(ListExamples).execute(ListExamplesQuery(None, shared_only=True, limit=10)).items
        if e.reference == "starter STARTER-0002"
    )
    container.use(DeleteExample).execute(DeleteExampleCommand(deleted.id, caller_owner_id=None))
    assert seed.execute(SeedExamplesCommand(starters(5))) == 1
    assert "starter STARTER-0002" not in shared_references(container)


def test_the_shipped_starter_file_is_numbered_in_order_so_a_grown_file_only_appends() -> None:
    ids = [t.external_id for t in read_labelled(starter_examples_path())]
    assert ids == [f"STARTER-{i:04d}" for i in range(1, len(ids) + 1)]
