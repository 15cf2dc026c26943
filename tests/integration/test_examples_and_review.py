"""Examples per owner found by similarity in PostgreSQL, confidence from the fake Ollama's logprobs and the
neighbours, review routing at the prompt's threshold, corrections that change the next answer, and an
evaluation that never shows a ticket its own answer (real PostgreSQL, fake Ollama over HTTP)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from tests.support.fake_ollama import FakeOllama
from triage_pipeline.application.corrections import (
    AcceptTriage,
    AcceptTriageCommand,
    CorrectTriage,
    CorrectTriageCommand,
    RetriageCommand,
    RetriageTicket,
)
from triage_pipeline.application.evaluation import EvaluateCommand, EvaluatePrompts
from triage_pipeline.application.examples import (
    DeleteExample,
    DeleteExampleCommand,
    ExampleItemStatus,
    ImportExamples,
    ImportExamplesCommand,
    ListExamples,
    ListExamplesQuery,
    NewExample,
)
from triage_pipeline.application.intake import CreateTicket, NewTicket
from triage_pipeline.application.prompts import AddPromptCommand, AddPromptVersion
from triage_pipeline.application.ticket_queries import GetTicket, GetTicketQuery
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.evaluation import EvaluationRun, LabelledTicket
from triage_pipeline.domain.exceptions import NotCorrectable, NotFound
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.domain.ports import ExampleQuery
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import DEFAULT_CATEGORIES, Priority

REFUND = "I was charged twice for my plan and the refund never arrived"


def few_shot(container: Container, k: int = 3, threshold: float = 0.5) -> None:
    container.use(AddPromptVersion).execute(AddPromptCommand(few_shot_k=k, review_threshold=threshold, activate=True))


def other_owner(container: Container) -> UUID:
    now = container.clock.now()
    owner = Owner(id=uuid4(), name="other tenant", created_at=now, updated_at=now)
    with container.uow() as uow:
        uow.owners.add(owner)
        uow.commit()
    return owner.id


def add_examples(container: Container, owner: UUID | None, *items: tuple[str, str]) -> list[UUID]:
    results = container.use(ImportExamples).execute(
        ImportExamplesCommand([NewExample(title, REFUND, category, "high") for title, category in items], owner)
    )
    assert all(r.status is ExampleItemStatus.CREATED for r in results), results
    return [r.example_id for r in results if r.example_id]


def triage(container: Container, external_id: str, title: str, owner: UUID = DEFAULT_OWNER_ID) -> Ticket:
    ticket = container.use(CreateTicket).execute(NewTicket(owner, external_id, title, REFUND))
    job = container.use(GetTicket).execute(GetTicketQuery(ticket.id)).job
    assert job is not None
    container.use(TriageOneJob).execute(TriageJobCommand(job.id))
    with container.uow() as uow:
        stored = uow.tickets.get(ticket.id)
    assert stored is not None
    return stored


def test_an_owners_examples_never_reach_another_owners_tickets(container: Container) -> None:
    other = other_owner(container)
    [mine] = add_examples(container, DEFAULT_OWNER_ID, ("Refund missing", "billing"))
    [theirs] = add_examples(container, other, ("Refund missing!", "bug"))
    [shared] = add_examples(container, None, ("Refund missing?", "other"))
    query = [ExampleQuery(uuid4(), DEFAULT_OWNER_ID, "Refund missing", REFUND)]
    with container.uow() as uow:
        found = next(iter(uow.examples.nearest(query, 10, DEFAULT_CATEGORIES, exclude_same_text=False).values()))
        as_other = uow.examples.nearest(
            [ExampleQuery(uuid4(), other, "Refund missing", REFUND)], 10, DEFAULT_CATEGORIES, exclude_same_text=False
        )
    assert {e.id for e in found} == {mine, shared}
    assert {e.id for e in next(iter(as_other.values()))} == {theirs, shared}
    listed = container.use(ListExamples).execute(ListExamplesQuery(owner_id=other)).items
    assert {e.id for e in listed} == {theirs, shared}
    with pytest.raises(NotFound):
        container.use(DeleteExample).execute(DeleteExampleCommand(mine, caller_owner_id=other))
    with pytest.raises(NotFound):
        container.use(DeleteExample).execute(DeleteExampleCommand(shared, caller_owner_id=other))


def test_retrieval_keeps_to_the_vocabulary_ranks_by_similarity_and_can_exclude_the_same_text(
    container: Container,
) -> None:
    add_examples(container, None, ("Refund missing", "billing"), ("Printer on fire", "outage"))
    query = ExampleQuery(uuid4(), DEFAULT_OWNER_ID, "Refund missing", REFUND)
    with container.uow() as uow:
        ranked = uow.examples.nearest([query], 5, DEFAULT_CATEGORIES, exclude_same_text=False)[query.key]
        billing_only = uow.examples.nearest([query], 5, ("billing",), exclude_same_text=False)[query.key]
        without_itself = uow.examples.nearest([query], 5, DEFAULT_CATEGORIES, exclude_same_text=True)[query.key]
    assert [e.category for e in ranked] == ["billing", "outage"]
    assert ranked[0].similarity == pytest.approx(1.0) and (ranked[1].similarity or 0) < 1.0
    assert [e.category for e in billing_only] == ["billing"]
    assert [e.category for e in without_itself] == ["outage"]


def test_import_reports_each_item_and_keeps_the_valid_ones(container: Container) -> None:
    results = container.use(ImportExamples).execute(
        ImportExamplesCommand(
            [
                NewExample("ok", "d", "billing", "high"),
                NewExample("bad label", "d", "not_a_category", "high"),
                NewExample("bad priority", "d", "bug", "whenever"),
                NewExample("", "", "bug", "low"),
                NewExample("OK", "d ", "billing", "high"),  # the same text as the first
            ],
            None,
        )
    )
    assert [r.status for r in results] == ["CREATED", "INVALID", "INVALID", "INVALID", "DUPLICATE"]
    assert results[1].field == "category" and "not_a_category" in (results[1].error or "")
    assert results[4].example_id == results[0].example_id
    with container.uow() as uow:
        assert uow.examples.count() == 1


def test_confidence_comes_from_logprobs_and_the_threshold_routes_doubtful_answers_to_review(
    container: Container, fake_ollama: FakeOllama
) -> None:
    few_shot(container, k=3, threshold=0.5)
    fake_ollama.answer_probabilities(category=0.95, priority=0.9, when_ticket_contains="sure")
    fake_ollama.answer_probabilities(category=0.2, priority=0.9, when_ticket_contains="doubtful")
    sure = triage(container, "R-1", "A sure refund case")
    doubtful = triage(container, "R-2", "A doubtful refund case")
    assert sure.answer is not None and sure.answer.confidence == pytest.approx(0.95, abs=1e-3)
    assert sure.review_status is ReviewStatus.AUTO_APPLIED
    assert doubtful.answer is not None and doubtful.answer.confidence == pytest.approx(0.2, abs=1e-3)
    assert doubtful.review_status is ReviewStatus.NEEDS_REVIEW
    with container.uow() as uow:
        [log] = uow.logs.for_ticket(doubtful.id)
    assert log.confidence is not None
    assert log.confidence["signals"] == ["logprobs"] and log.confidence["review_status"] == "NEEDS_REVIEW"
    assert log.confidence["stated_confidence"] != log.confidence["confidence"]
    reviewed = container.use(AcceptTriage).execute(AcceptTriageCommand(doubtful.id, actor="agent"))
    assert reviewed.review_status is ReviewStatus.REVIEWED


def test_a_server_without_logprobs_still_gives_a_confidence_from_the_neighbours(
    container: Container, fake_ollama: FakeOllama
) -> None:
    few_shot(container, k=3, threshold=0.5)
    fake_ollama.logprobs_supported = False
    ids = add_examples(container, None, ("Refund missing", "billing"), ("Refund late", "billing"))
    ticket = triage(container, "R-3", "Refund missing")
    assert ticket.answer is not None and ticket.answer.category == "billing"  # the keyword model's answer
    assert ticket.answer.confidence == pytest.approx(1.0)
    with container.uow() as uow:
        [log] = uow.logs.for_ticket(ticket.id)
    assert log.confidence is not None and log.confidence["signals"] == ["neighbours"]
    assert log.confidence["category_probability"] is None
    assert set(log.example_ids) == set(ids)


def test_a_correction_becomes_an_example_that_changes_the_next_similar_answer(
    container: Container, fake_ollama: FakeOllama
) -> None:
    few_shot(container, k=3, threshold=0.5)
    fake_ollama.answer_probabilities(category=0.3, priority=0.9)
    first = triage(container, "C-1", "Refund missing")
    assert first.answer is not None and first.answer.category == "billing"
    container.use(CorrectTriage).execute(CorrectTriageCommand(first.id, "security", Priority.URGENT, actor="lead"))
    container.use(CorrectTriage).execute(CorrectTriageCommand(first.id, "security", Priority.HIGH, actor="lead"))
    with container.uow() as uow:
        corrected = uow.tickets.get(first.id)
        examples = container.use(ListExamples).execute(ListExamplesQuery(owner_id=DEFAULT_OWNER_ID)).items
    assert corrected is not None and corrected.review_status is ReviewStatus.REVIEWED
    assert [(e.category, e.priority, e.source, e.ticket_id) for e in examples] == [
        ("security", Priority.HIGH, "correction", first.id)
    ]
    second = triage(container, "C-2", "Refund missing again")
    assert second.answer is not None and second.answer.category == "security"
    with container.uow() as uow:
        [log] = uow.logs.for_ticket(second.id)
    assert log.example_ids == (examples[0].id,)
    assert log.confidence is not None and log.confidence["overruled"] is True
    assert log.confidence["model_category"] == "billing"


def test_evaluation_never_shows_a_ticket_its_own_example(container: Container, fake_ollama: FakeOllama) -> None:
    few_shot(container, k=3, threshold=0.5)
    tickets = [
        LabelledTicket(f"E-{i}", f"Refund case {i}", f"{REFUND} order {i}", {"category": "billing", "priority": "high"})
        for i in range(4)
    ]
    container.use(ImportExamples).execute(
        ImportExamplesCommand([NewExample(t.title, t.description, "billing", "high") for t in tickets], None)
    )
    [result] = container.use(EvaluatePrompts).execute(
        EvaluateCommand(items=tickets, dataset="self.jsonl", dataset_sha256="x" * 64, concurrency=1)
    )
    prompts = [r["messages"][-1]["content"] for r in fake_ollama.chat_requests]
    assert len(prompts) == 4
    for ticket in tickets:
        [own] = [p for p in prompts if f'"title": "{ticket.title}"' in p.split("<ticket>")[1]]
        shown = own.split("<solved_tickets>")[1].split("</solved_tickets>")[0]
        assert ticket.title not in shown
        assert shown.count('"title"') == 3
    assert result.run.report["floors"]["category"]["neighbour_vote_accuracy"] == 1.0
    assert result.run.report["calibration"]["ece"] >= 0.0


def test_triage_applies_the_calibration_of_the_prompt_versions_latest_evaluation(
    container: Container, fake_ollama: FakeOllama
) -> None:
    few_shot(container, k=3, threshold=0.5)
    with container.uow() as uow:
        prompt = uow.prompts.active("triage")
        assert prompt is not None
        runs = (
            (3, "fake-model", [[1.0, 0.11]]),  # older
            (2, "fake-model", [[0.5, 0.3], [1.0, 0.77]]),  # the one that applies
            (1, "another-model", [[1.0, 0.01]]),  # newer, but fitted on another model's answers
        )
        for age, model, steps in runs:
            report = {"calibration": {"map": {"steps": steps, "fitted_on": 160}}}
            at = container.clock.now() - timedelta(hours=age)
            uow.evaluations.add(
                EvaluationRun(uuid4(), prompt.id, "triage", prompt.version, model, "f", "s", report, at)
            )
        uow.commit()
    fake_ollama.answer_probabilities(category=0.9, priority=0.9)
    ticket = triage(container, "K-1", "Refund missing")
    assert ticket.answer is not None and ticket.answer.confidence == pytest.approx(0.77)
    with container.uow() as uow:
        [log] = uow.logs.for_ticket(ticket.id)
    assert log.confidence is not None
    assert log.confidence["raw_confidence"] == pytest.approx(0.9, abs=1e-3)
    assert log.confidence["calibrated_on"] == 160


def test_accepting_or_correcting_a_ticket_being_triaged_again_never_rewrites_its_state(
    container: Container,
) -> None:
    first = triage(container, "A-1", "Refund missing")
    container.use(RetriageTicket).execute(RetriageCommand(first.id))
    with pytest.raises(NotCorrectable):
        container.use(AcceptTriage).execute(AcceptTriageCommand(first.id))
    container.use(CorrectTriage).execute(CorrectTriageCommand(first.id, "security", Priority.HIGH))
    with container.uow() as uow:
        now = uow.tickets.get(first.id)
        examples = uow.examples.page(owner_id=DEFAULT_OWNER_ID, shared_only=False, limit=10, cursor=None)[0]
    assert now is not None and now.status is TicketStatus.PENDING  # not written back to COMPLETED
    assert now.review_status is first.review_status  # the next answer brings its own
    assert [e.category for e in examples] == ["security"]  # the correction and its example are kept


def test_two_imports_of_the_same_texts_at_once_store_each_text_once(container: Container) -> None:
    items = [NewExample(f"Refund case {i}", REFUND, "billing", "high") for i in range(50)]
    barrier = threading.Barrier(2)

    def run() -> list[ExampleItemStatus]:
        barrier.wait()
        results = container.use(ImportExamples).execute(ImportExamplesCommand(items, None))
        return [r.status for r in results]

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: run(), range(2)))
    with container.uow() as uow:
        assert uow.examples.count() == 50
    created = sum(status is ExampleItemStatus.CREATED for statuses in outcomes for status in statuses)
    assert created == 50  # every text reported CREATED exactly once, DUPLICATE by the other import
