"""Corrections, re-triage and prompt versions over the API."""

from uuid import UUID

from fastapi.testclient import TestClient

from tests.e2e.conftest import ticket_body
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.bootstrap import Container


def triaged(client: TestClient, container: Container, external_id: str = "Q-1") -> str:
    ticket_id = client.post("/tickets", json=ticket_body(external_id)).json()["id"]
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
