"""The example bank classifier's counts (migration 0015's triggers) on a real PostgreSQL: they follow every way
an example comes and goes, keep to their owner, leave a ticket's own example out in evaluation, and the
migration counts the examples already there. The invariant checked: the count tables hold exactly what
counting `triage_examples` from scratch gives."""

from uuid import uuid4

import pytest
from alembic import command
from sqlalchemy import Connection, create_engine, pool, text

from tests.integration.test_examples_and_review import REFUND, add_examples, other_owner, triage
from triage_pipeline.application.corrections import CorrectTriage, CorrectTriageCommand
from triage_pipeline.application.evaluation import EvaluateCommand, EvaluatePrompts
from triage_pipeline.application.examples import DeleteExample, DeleteExampleCommand
from triage_pipeline.application.prompts import AddPromptCommand, AddPromptVersion
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.evaluation import LabelledTicket
from triage_pipeline.domain.example_classifier import classifier_terms, terms_text
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.ports import ExampleQuery
from triage_pipeline.domain.triage_answer import Priority
from triage_pipeline.infrastructure.db import example_backfill
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres
from triage_pipeline.infrastructure.migrations import alembic_config

RECOUNT_TERMS = text(
    r"""
    SELECT t.term, e.owner_id, f.field, f.label, count(*) AS examples
      FROM triage_examples e
     CROSS JOIN LATERAL (VALUES ('category', e.category), ('priority', e.priority)) AS f(field, label)
     CROSS JOIN LATERAL unnest(string_to_array(e.classifier_terms, E'\n')) AS t(term)
     GROUP BY 1, 2, 3, 4
    """
)
RECOUNT_LABELS = text(
    r"""
    SELECT e.owner_id, f.field, f.label, count(*) AS examples,
           sum(cardinality(string_to_array(e.classifier_terms, E'\n'))) AS terms
      FROM triage_examples e
     CROSS JOIN LATERAL (VALUES ('category', e.category), ('priority', e.priority)) AS f(field, label)
     GROUP BY 1, 2, 3
    """
)


def assert_counts_match_the_examples(conn: Connection) -> None:
    kept_terms = {
        (r.term, r.owner_id, r.field, r.label): r.examples
        for r in conn.execute(text("SELECT * FROM example_term_counts WHERE examples <> 0"))
    }
    kept_labels = {
        (r.owner_id, r.field, r.label): (r.examples, r.terms)
        for r in conn.execute(text("SELECT * FROM example_label_counts WHERE examples <> 0 OR terms <> 0"))
    }
    assert kept_terms == {(r.term, r.owner_id, r.field, r.label): r.examples for r in conn.execute(RECOUNT_TERMS)}
    assert kept_labels == {(r.owner_id, r.field, r.label): (r.examples, r.terms) for r in conn.execute(RECOUNT_LABELS)}


def with_bank(container: Container, *, example_bank: bool = True) -> None:
    """A few-shot version (k = 2, threshold 0.5) settled with the example bank or not, active."""
    container.use(AddPromptVersion).execute(
        AddPromptCommand(few_shot_k=2, review_threshold=0.5, example_bank=example_bank, activate=True)
    )


def check(container: Container) -> None:
    with container.engine.connect() as conn:
        assert_counts_match_the_examples(conn)


def test_counts_follow_imports_corrections_deletions_and_cascades(container: Container) -> None:
    other = other_owner(container)
    add_examples(container, None, ("Refund missing", "billing"), ("Card charged twice", "billing"))
    [theirs, _] = add_examples(container, other, ("Refund late", "bug"), ("Checkout down", "outage"))
    check(container)
    with container.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM example_term_counts")).scalar_one() > 0

    ticket = triage(container, "BANK-1", "Refund for my order")
    container.use(CorrectTriage).execute(CorrectTriageCommand(ticket.id, "billing", Priority.HIGH, actor="agent"))
    check(container)  # the correction's example inserted
    container.use(CorrectTriage).execute(CorrectTriageCommand(ticket.id, "other", Priority.LOW, actor="agent"))
    check(container)  # and updated to the new labels

    container.use(DeleteExample).execute(DeleteExampleCommand(theirs, caller_owner_id=None))
    check(container)
    with container.engine.begin() as conn:
        conn.execute(text("DELETE FROM tickets WHERE id = :id"), {"id": ticket.id})  # cascades to its example
        conn.execute(text("DELETE FROM owners WHERE id = :id"), {"id": other})  # cascades to its examples
    check(container)
    with container.engine.begin() as conn:
        conn.execute(text("TRUNCATE triage_examples CASCADE"))
        assert conn.execute(text("SELECT count(*) FROM example_term_counts")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM example_label_counts")).scalar_one() == 0


def test_statements_on_many_rows_sharing_terms_and_updates_of_terms_or_owner_keep_the_counts(
    container: Container,
) -> None:
    other = other_owner(container)
    add_examples(container, None, ("Refund missing", "billing"), ("Refund late", "bug"), ("Refund again", "billing"))
    with container.engine.begin() as conn:
        conn.execute(text("UPDATE triage_examples SET classifier_terms = 'refund' WHERE title = 'Refund late'"))
        assert_counts_match_the_examples(conn)  # only the terms changed
        conn.execute(text("UPDATE triage_examples SET owner_id = :o WHERE title = 'Refund again'"), {"o": other})
        assert_counts_match_the_examples(conn)  # moved to another owner's bank
        conn.execute(text("DELETE FROM triage_examples WHERE title LIKE 'Refund%'"))  # many rows, shared terms
        assert_counts_match_the_examples(conn)
        # and nothing is left behind: counts that reach zero are deleted
        assert conn.execute(text("SELECT count(*) FROM example_term_counts")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM example_label_counts")).scalar_one() == 0


def test_an_owners_examples_never_reach_another_owners_bank(container: Container) -> None:
    other = other_owner(container)
    add_examples(container, other, ("Zebra widget flickers", "bug"))
    add_examples(container, None, ("Refund missing", "billing"))
    mine = ExampleQuery(uuid4(), DEFAULT_OWNER_ID, "Zebra widget flickers", REFUND)
    theirs = ExampleQuery(uuid4(), other, "Zebra widget flickers", REFUND)
    with container.uow() as uow:
        found = uow.examples.bank_counts([mine, theirs], exclude_same_text=False)
    assert set(found[mine.key].category.labels) == {"billing"}
    assert "zebra" not in found[mine.key].category.term_examples
    assert set(found[theirs.key].category.labels) == {"billing", "bug"}
    assert found[theirs.key].category.term_examples["zebra"] == {"bug": 1}


def test_leaving_out_the_same_text_never_touches_another_owners_example(container: Container) -> None:
    other = other_owner(container)
    add_examples(container, other, ("Zebra widget flickers", "bug"))
    add_examples(container, DEFAULT_OWNER_ID, ("Zebra widget flickers", "outage"), ("Refund missing", "billing"))
    mine = ExampleQuery(uuid4(), DEFAULT_OWNER_ID, "Zebra widget flickers", REFUND)
    with container.uow() as uow:
        found = uow.examples.bank_counts([mine], exclude_same_text=True)[mine.key]
    assert {label: c.examples for label, c in found.category.labels.items()} == {"outage": 0, "billing": 1}
    assert found.category.term_examples["zebra"] == {"outage": 0}


def test_evaluation_counts_never_learn_from_the_tickets_own_example(container: Container) -> None:
    add_examples(container, None, ("Refund missing", "billing"), ("Zebra widget flickers", "bug"))
    same_text = ExampleQuery(uuid4(), None, "ZEBRA widget   flickers", REFUND)  # same normalised text
    with container.uow() as uow:
        seen = uow.examples.bank_counts([same_text], exclude_same_text=False)[same_text.key]
        unseen = uow.examples.bank_counts([same_text], exclude_same_text=True)[same_text.key]
    assert seen.category.labels["bug"].examples == 1
    assert unseen.category.labels["bug"].examples == 0
    assert unseen.category.term_examples["zebra"] == {"bug": 0}
    assert unseen.priority.labels["high"].examples == 1  # only the other example is left


def test_a_version_settled_with_the_bank_logs_what_it_said_and_older_versions_settle_as_before(
    container: Container,
) -> None:
    add_examples(container, None, ("Refund missing", "billing"), ("Card charged twice", "billing"))
    add_examples(container, None, ("Checkout down", "outage"))
    with_bank(container)
    settled_with_bank = triage(container, "BANK-2", "Refund please")
    with_bank(container, example_bank=False)
    settled_without = triage(container, "BANK-3", "Refund please again")
    with container.uow() as uow:
        [log] = uow.logs.for_ticket(settled_with_bank.id)
        [before] = uow.logs.for_ticket(settled_without.id)
    assert log.confidence is not None and before.confidence is not None
    bank = log.confidence["bank_category"]
    assert set(bank) == {"billing", "outage"} and 0.5 < bank["billing"] < 1.0
    assert "example_bank" in log.confidence["signals"]
    assert before.confidence["bank_category"] is None
    assert "example_bank" not in before.confidence["signals"]


@pytest.mark.parametrize("owner", [None, DEFAULT_OWNER_ID], ids=["shared", "owned"])
def test_the_migration_gives_existing_examples_their_terms_and_counts(
    pg_server: EmbeddedPostgres, owner: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(example_backfill, "PAGE", 2)  # three examples: two pages
    url = pg_server.ensure_database(f"triage_bank_counts_{'shared' if owner is None else 'owned'}")
    config = alembic_config(url)
    command.upgrade(config, "0014")
    engine = create_engine(url, poolclass=pool.NullPool)
    titles = ("Refund missing", "Refund late", "Checkout down")
    with engine.begin() as conn:
        for title in titles:
            conn.execute(
                text(
                    "INSERT INTO triage_examples (id, owner_id, title, description, category, priority, source,"
                    " search_text, text_key, created_at, updated_at) VALUES (:id, :owner, :t, :d,"
                    " 'billing', 'high', 'import', 's', :t, now(), now())"
                ),
                {"id": uuid4(), "owner": owner, "t": title, "d": REFUND},
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        stored: dict[str, str] = dict(conn.execute(text("SELECT title, classifier_terms FROM triage_examples")).all())
        assert stored == {title: terms_text(classifier_terms(title, REFUND)) for title in titles}
        assert_counts_match_the_examples(conn)
        assert conn.execute(text("SELECT count(*) FROM example_label_counts")).scalar_one() == 2
    with engine.begin() as conn:  # and the triggers are in place from then on
        conn.execute(text("DELETE FROM triage_examples"))
        assert_counts_match_the_examples(conn)
    command.downgrade(config, "0014")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('example_term_counts')")).scalar_one() is None
    engine.dispose()


def test_evaluation_reports_the_bank_alone_and_never_lets_it_learn_from_the_ticket_itself(
    container: Container,
) -> None:
    with_bank(container)
    add_examples(
        container, None, ("Refund missing", "billing"), ("Card charged twice", "billing"), ("Zebra flickers", "bug")
    )
    ticket = LabelledTicket("Z-1", "Zebra flickers", REFUND, {"category": "bug", "priority": "high"})
    [result] = container.use(EvaluatePrompts).execute(
        EvaluateCommand(items=[ticket], dataset="self.jsonl", dataset_sha256="x" * 64, concurrency=1)
    )
    [answer] = result.run.report["answers"]
    assert answer["bank"]["category"] == "billing"  # its own example, the only "bug", left out
    assert answer["settled"]["bank_category"]["billing"] > 0.5
    assert result.run.report["floors"]["category"]["bank_accuracy"] == 0.0
