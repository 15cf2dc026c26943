"""Corrections, re-triage and prompt versions over the API."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.e2e.conftest import ticket_body
from tests.e2e.test_api_tickets import assert_problem
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.evaluation import EvaluationRun
from triage_pipeline.domain.ports import UnitOfWorkFactory
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME


def triaged(client: TestClient, container: Container, external_id: str = "Q-1", **fields: Any) -> str:
    """A new ticket (`fields` override the body's), triaged at once by the container's fake LLM."""
    ticket_id = client.post("/tickets", json=ticket_body(external_id, **fields)).json()["id"]
    with container.uow() as uow:
        job = uow.jobs.latest_for_ticket(UUID(ticket_id))
    assert job is not None
    container.use(TriageOneJob).execute(TriageJobCommand(job.id))
    return str(ticket_id)


def test_correction_is_stored_beside_the_unchanged_model_answer(client: TestClient, container: Container) -> None:
    ticket_id = triaged(client, container)
    before = client.get(f"/tickets/{ticket_id}").json()["triage"]
    response = client.put(
        f"/tickets/{ticket_id}/triage",
        json={"category": "billing", "priority": "urgent", "reason": "payments down", "corrected_by": "agent-1"},
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["category"], body["model_category"], body["prompt_version"]) == ("billing", before["category"], 1)
    assert client.get(f"/tickets/{ticket_id}").json()["triage"] == before


def test_correction_with_a_label_outside_the_vocabulary_is_422(client: TestClient, container: Container) -> None:
    ticket_id = triaged(client, container)
    response = client.put(f"/tickets/{ticket_id}/triage", json={"category": "weather", "priority": "low"})
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_label"


def test_correcting_an_untriaged_ticket_is_409_and_unknown_ticket_404(client: TestClient) -> None:
    ticket_id = client.post("/tickets", json=ticket_body()).json()["id"]
    assert client.put(f"/tickets/{ticket_id}/triage", json={"category": "bug", "priority": "low"}).status_code == 409
    missing = "00000000-0000-0000-0000-0000000000ff"
    assert client.put(f"/tickets/{missing}/triage", json={"category": "bug", "priority": "low"}).status_code == 404


def test_retriage_queues_a_new_job_and_keeps_the_old_logs(client: TestClient, container: Container) -> None:
    ticket_id = triaged(client, container)
    response = client.post(f"/tickets/{ticket_id}/retriage")
    assert response.status_code == 202
    assert response.json()["triage_status"] == "PENDING" and response.json()["job_status"] == "PENDING"
    assert len(client.get(f"/tickets/{ticket_id}/logs").json()) == 1
    again = client.post(f"/tickets/{ticket_id}/retriage")
    assert again.status_code == 409 and again.json()["code"] == "retriage_not_allowed"
    queued = client.post("/triage-jobs/batch").json()
    assert queued["status"] == "QUEUED" and queued["batch"]["total_items"] == 1


def test_prompt_versions_can_be_added_and_activated(client: TestClient) -> None:
    assert [p["version"] for p in client.get("/prompts").json()] == [1]
    created = client.post("/prompts", json={"system_text": "Be brief.", "description": "brief"})
    assert created.status_code == 201 and created.json()["version"] == 2 and not created.json()["is_active"]
    bad = client.post("/prompts", json={"user_template": "no placeholder"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_prompt"
    activated = client.post("/prompts/2/activate")
    assert activated.status_code == 200 and activated.json()["is_active"]
    assert [(p["version"], p["is_active"]) for p in client.get("/prompts").json()] == [(1, False), (2, True)]
    assert client.post("/prompts/9/activate").status_code == 404


def test_prompt_versions_carry_their_few_shot_k_review_threshold_and_example_bank(client: TestClient) -> None:
    def options(p: dict[str, Any]) -> tuple[int, float, bool]:
        return p["few_shot_k"], p["review_threshold"], p["example_bank"]

    assert [options(p) for p in client.get("/prompts").json()] == [(0, 0.0, False)]
    created = client.post("/prompts", json={"few_shot_k": 5, "review_threshold": 0.7, "example_bank": True})
    assert created.status_code == 201
    assert options(created.json()) == (5, 0.7, True)
    copied = client.post("/prompts", json={"description": "copies the active version's"}).json()
    assert options(copied) == (0, 0.0, False)
    bad_inputs: tuple[dict[str, Any], ...] = (
        {"few_shot_k": 21},
        {"few_shot_k": -1},
        {"review_threshold": 1.5},
        {"review_threshold": -0.1},
        {"example_bank": "sometimes"},
        {"example_bank": "yes"},
        {"example_bank": 1},
    )
    for bad in bad_inputs:
        assert_problem(client.post("/prompts", json=bad), 422, "validation_error")
    # the active version shows no examples, beside which the bank would settle
    assert_problem(client.post("/prompts", json={"example_bank": True}), 422, "invalid_prompt")


def store_evaluation(
    uow_factory: UnitOfWorkFactory, version: int, category: float, priority: float, sha: str = "a" * 64
) -> None:
    """An evaluation run of a version of the triage prompt on a labelled file (its sha256), with these accuracies."""
    with uow_factory() as uow:
        prompt = uow.prompts.by_version(DEFAULT_PROMPT_NAME, version)
        assert prompt is not None
        uow.evaluations.add(
            EvaluationRun(
                id=uuid4(),
                prompt_id=prompt.id,
                prompt_name=DEFAULT_PROMPT_NAME,
                prompt_version=version,
                model="fake-model",
                dataset=f"labelled-{sha[:6]}.jsonl",
                dataset_sha256=sha,
                report={"fields": {"category": {"accuracy": category}, "priority": {"accuracy": priority}}},
                created_at=datetime.now(UTC),
            )
        )
        uow.commit()


def activations(engine: Engine) -> list[tuple[int, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT version, forced FROM prompt_activations ORDER BY created_at, version"))
        return [(int(version), bool(forced)) for version, forced in rows]


def test_promotion_gate_refuses_a_worse_version_with_the_figures_and_force_overrides_it(
    client: TestClient, container: Container, clean_db: Engine
) -> None:
    client.post("/prompts", json={"description": "candidate"})
    store_evaluation(container.uow, 1, category=0.8, priority=0.6)
    store_evaluation(container.uow, 2, category=0.5, priority=0.7)
    store_evaluation(container.uow, 2, category=0.9, priority=0.9, sha="b" * 64)  # a file v1 was never run on

    body = assert_problem(client.post("/prompts/2/activate"), 409, "promotion_refused")
    assert "category_accuracy 0.500 < 0.800" in body["detail"] and "force" in body["detail"]
    assert [(c["figure"], c["candidate"], c["active"], c["worse"]) for c in body["comparisons"]] == [
        ("category_accuracy", 0.5, 0.8, True),
        ("priority_accuracy", 0.7, 0.6, False),
    ]
    assert {c["dataset_sha256"] for c in body["comparisons"]} == {"a" * 64}
    assert [(p["version"], p["is_active"]) for p in client.get("/prompts").json()] == [(1, True), (2, False)]
    assert activations(clean_db) == []

    forced = client.post("/prompts/2/activate", params={"force": "true"})
    assert forced.status_code == 200 and forced.json()["is_active"] and forced.json()["version"] == 2
    assert activations(clean_db) == [(2, True)]


def test_promotion_gate_lets_a_version_that_is_not_worse_through(client: TestClient, container: Container) -> None:
    client.post("/prompts", json={"description": "better"})
    client.post("/prompts", json={"description": "never evaluated"})
    store_evaluation(container.uow, 1, category=0.8, priority=0.6)
    store_evaluation(container.uow, 2, category=0.8, priority=0.7)
    assert client.post("/prompts/2/activate").status_code == 200
    assert client.post("/prompts/3/activate").status_code == 200  # no figures to compare: nothing refuses
