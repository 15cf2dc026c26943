"""The shipped starter examples reach the shared bank once each: a grown file adds only its new ones, and an
example an admin deleted does not come back, even the file's last (real PostgreSQL)."""

from uuid import UUID

from triage_pipeline.application.examples import (
    DeleteExample,
    DeleteExampleCommand,
    ImportExamples,
    ImportExamplesCommand,
    ListExamples,
    ListExamplesQuery,
    NewExample,
    SeedExamplesCommand,
    SeedSharedExamples,
)
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.labelled_file import read_labelled, starter_examples_path

SOURCE = "starter_examples.jsonl"
TOPICS = ["refund never arrived", "checkout spins forever", "cannot log in after reset", "export orders to csv"]


def starters(count: int, reference: str = "starter STARTER-{:04d}") -> list[NewExample]:
    return [
        NewExample(
            f"Starter {i}: {TOPICS[i % len(TOPICS)]}",
            f"case {i} of the shipped file",
            "bug",
            "normal",
            reference=reference.format(i),
        )
        for i in range(1, count + 1)
    ]


def seed(container: Container, count: int) -> int:
    return container.use(SeedSharedExamples).execute(SeedExamplesCommand(SOURCE, starters(count)))


def shared(container: Container) -> dict[str, UUID]:
    listed = container.use(ListExamples).execute(ListExamplesQuery(None, shared_only=True, limit=1000))
    return {e.title.split(":")[0]: e.id for e in listed.items}


def delete(container: Container, *titles: str) -> None:
    ids = shared(container)
    for title in titles:
        container.use(DeleteExample).execute(DeleteExampleCommand(ids[title], caller_owner_id=None))


def test_a_start_imports_the_starter_examples_then_only_those_a_grown_file_adds(container: Container) -> None:
    assert seed(container, 4) == 4
    assert seed(container, 4) == 0
    assert seed(container, 7) == 3
    assert set(shared(container)) == {f"Starter {i}" for i in range(1, 8)}


def test_starter_examples_an_admin_deleted_do_not_come_back_even_the_files_last(container: Container) -> None:
    seed(container, 4)
    delete(container, "Starter 2", "Starter 4")
    assert seed(container, 4) == 0
    assert seed(container, 5) == 1
    assert set(shared(container)) == {"Starter 1", "Starter 3", "Starter 5"}


def test_a_bank_loaded_by_the_cli_before_is_placed_by_text_and_only_gets_the_new_examples(
    container: Container,
) -> None:
    cli_form = starters(4, reference=SOURCE + "#STARTER-{:04d}")
    container.use(ImportExamples).execute(ImportExamplesCommand(cli_form, None))
    assert seed(container, 6) == 2
    assert len(shared(container)) == 6


def test_the_shipped_starter_file_is_numbered_in_order_so_a_grown_file_only_appends() -> None:
    ids = [t.external_id for t in read_labelled(starter_examples_path())]
    assert ids == [f"STARTER-{i:04d}" for i in range(1, len(ids) + 1)]
