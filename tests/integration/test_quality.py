"""Prompt versions, corrections, re-triage and evaluation on the real PostgreSQL and the fake Ollama."""

import hashlib

import pytest
from sqlalchemy import text

from tests.support.fake_ollama import Behaviour, FakeOllama
from triage_pipeline.application.corrections import (
    CorrectionsAsLabelsQuery,
    CorrectTriage,
    CorrectTriageCommand,
    ExportCorrectionsAsLabels,
    RetriageCommand,
    RetriageTicket,
)
from triage_pipeline.application.evaluation import (
    EvaluateCommand,
    EvaluatePrompts,
    ListEvaluations,
    ListEvaluationsQuery,
)
from triage_pipeline.application.intake import CreateTicket, NewTicket
from triage_pipeline.application.prompts import (
    ActivatePrompt,
    ActivatePromptCommand,
    AddPromptCommand,
    AddPromptVersion,
    ListPrompts,
    ListPromptsQuery,
)
from triage_pipeline.application.ticket_queries import GetTicket, GetTicketQuery
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.evaluation import LabelledTicket
from triage_pipeline.domain.exceptions import InvalidPrompt, NotCorrectable, RetriageNotAllowed, UnknownLabel
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.statuses import TicketStatus
from triage_pipeline.domain.triage_answer import Priority


def triaged_ticket(container: Container, external_id: str = "Q-1") -> NewTicket:
    item = NewTicket(DEFAULT_OWNER_ID, external_id, "Refund not received", "I was charged twice for my plan.")
    ticket = container.use(CreateTicket).execute(item)
    job = container.use(GetTicket).execute(GetTicketQuery(ticket.id)).job
    assert job is not None
    container.use(TriageOneJob).execute(TriageJobCommand(job.id))
    return item


def test_new_prompt_version_is_a_new_row_and_activation_is_audited(container: Container) -> None:
    v2 = container.use(AddPromptVersion).execute(AddPromptCommand(system_text="Be terse.", description="terse"))
    assert (v2.version, v2.is_active) == (2, False)
    versions = container.use(ListPrompts).execute(ListPromptsQuery())
    assert [(p.version, p.is_active) for p in versions] == [(1, True), (2, False)]
    assert versions[0].system_text != "Be terse." and versions[1].categories == versions[0].categories
    container.use(ActivatePrompt).execute(ActivatePromptCommand(version=2, actor="alice"))
    assert [(p.version, p.is_active) for p in container.use(ListPrompts).execute(ListPromptsQuery())] == [
        (1, False),
        (2, True),
    ]
    with container.uow() as uow:
        row = uow.session.execute(text("SELECT version, previous_version, activated_by FROM prompt_activations")).one()
    assert tuple(row) == (2, 1, "alice")


def test_prompt_without_ticket_placeholder_is_refused(container: Container) -> None:
    with pytest.raises(InvalidPrompt):
        container.use(AddPromptVersion).execute(AddPromptCommand(user_template="no placeholder here"))


def test_correction_is_kept_beside_the_model_answer(container: Container) -> None:
    item = triaged_ticket(container)
    with container.uow() as uow:
        ticket = uow.tickets.find_by_external_id(item.owner_id, item.external_id)
    assert ticket is not None and ticket.answer is not None
    model_answer = ticket.answer
    correction = container.use(CorrectTriage).execute(
        CorrectTriageCommand(ticket.id, "billing", Priority.HIGH, reason="double charge", actor="agent-7")
    )
    assert (correction.model_category, correction.prompt_version) == (model_answer.category, 1)
    with container.uow() as uow:
        assert uow.tickets.get(ticket.id).answer == model_answer  # type: ignore[union-attr]
        assert len(uow.corrections.for_ticket(ticket.id)) == 1
    [labelled] = container.use(ExportCorrectionsAsLabels).execute(CorrectionsAsLabelsQuery())
    assert labelled.labels["category"] == "billing" and labelled.external_id == "Q-1"
    with pytest.raises(UnknownLabel):
        container.use(CorrectTriage).execute(CorrectTriageCommand(ticket.id, "not-a-category", Priority.LOW))


def test_untriaged_ticket_cannot_be_corrected_nor_retriaged(container: Container) -> None:
    ticket = container.use(CreateTicket).execute(NewTicket(DEFAULT_OWNER_ID, "Q-2", "t", "d"))
    with pytest.raises(NotCorrectable):
        container.use(CorrectTriage).execute(CorrectTriageCommand(ticket.id, "bug", Priority.LOW))
    with pytest.raises(RetriageNotAllowed):
        container.use(RetriageTicket).execute(RetriageCommand(ticket.id))


def test_retriage_adds_a_new_job_and_keeps_the_old_job_and_logs(container: Container) -> None:
    item = triaged_ticket(container)
    with container.uow() as uow:
        ticket = uow.tickets.find_by_external_id(item.owner_id, item.external_id)
    assert ticket is not None
    requeued, job = container.use(RetriageTicket).execute(RetriageCommand(ticket.id))
    assert requeued.status is TicketStatus.PENDING and job.attempts == 0
    container.use(TriageOneJob).execute(TriageJobCommand(job.id))
    with container.uow() as uow:
        jobs = uow.session.execute(text("SELECT status FROM triage_jobs WHERE ticket_id=:t"), {"t": ticket.id}).all()
        assert sorted(j[0] for j in jobs) == ["DONE", "DONE"]
        assert len(uow.logs.for_ticket(ticket.id)) == 2
        assert uow.tickets.get(ticket.id).status is TicketStatus.COMPLETED  # type: ignore[union-attr]


def test_evaluation_scores_versions_side_by_side_and_survives_llm_faults(
    container: Container, fake_ollama: FakeOllama
) -> None:
    items = [
        LabelledTicket(
            f"E-{i}",
            f"Invoice wrong {i}",
            "I was charged twice",
            {"category": "billing", "priority": "high", "sentiment": "negative", "language": "en"},
        )
        for i in range(6)
    ]
    fake_ollama.when_ticket_contains("Invoice wrong 3", Behaviour.HTTP_500)
    container.use(AddPromptVersion).execute(AddPromptCommand(system_text="Second version."))
    seen: list[tuple[int, int]] = []
    results = container.use(EvaluatePrompts).execute(
        EvaluateCommand(
            items=items,
            dataset="inline",
            dataset_sha256=hashlib.sha256(b"inline").hexdigest(),
            versions=[1, 2],
            concurrency=3,
            on_progress=lambda done, total: seen.append((done, total)),
        )
    )
    assert [r.prompt.version for r in results] == [1, 2]
    for result in results:
        assert result.report.items == 6 and result.report.invalid == 1
        assert result.report.errors == {"http_error": 1}
        assert "category" in result.report.fields
    assert seen[-1] == (12, 12)
    stored = container.use(ListEvaluations).execute(ListEvaluationsQuery())
    assert sorted(r.prompt_version for r in stored) == [1, 2]
