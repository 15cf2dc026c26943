"""POST /triage-jobs/batch and GET /triage-jobs/batches/{id}."""

from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.e2e.conftest import ticket_body
from tests.e2e.test_api_tickets import assert_problem, triage
from tests.unit.fakes import FakeLlm
from triage_pipeline.application.batches import FinishBatch, FinishBatchCommand, ListBatchItems
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.bootstrap import Container


def test_no_eligible_job_answers_202_empty_and_creates_no_batch(client: TestClient) -> None:
    response = client.post("/triage-jobs/batch")
    assert response.status_code == 202
    assert response.json() == {"status": "EMPTY", "batch": None, "total_items": 0}


def test_eligible_jobs_are_queued_into_a_batch(client: TestClient) -> None:
    client.post("/tickets/batch", json=[ticket_body(f"T{i}") for i in range(3)])
    response = client.post("/triage-jobs/batch")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "QUEUED"
    assert set(body["batch"]) == {"id", "total_items"}
    assert body["batch"]["total_items"] == 3
    assert response.headers["location"] == f"/triage-jobs/batches/{body['batch']['id']}"
    assert client.post("/triage-jobs/batch").json()["status"] == "EMPTY"  # every job is held by the first batch


def test_max_items_bounds_the_batch(client: TestClient) -> None:
    client.post("/tickets/batch", json=[ticket_body(f"T{i}") for i in range(5)])
    first = client.post("/triage-jobs/batch", json={"max_items": 2}).json()
    second = client.post("/triage-jobs/batch", json={}).json()
    assert (first["batch"]["total_items"], second["batch"]["total_items"]) == (2, 3)


@pytest.mark.parametrize(
    "payload", [{"max_items": 0}, {"max_items": 10_001}, {"max_items": "many"}, {"size": 3}, [1], "x"]
)
def test_invalid_batch_request_answers_422(client: TestClient, payload: object) -> None:
    assert_problem(client.post("/triage-jobs/batch", json=payload), 422, "validation_error")


def test_batch_progress_counts_items_by_status(client: TestClient) -> None:
    client.post("/tickets/batch", json=[ticket_body(f"T{i}") for i in range(2)])
    batch_id = client.post("/triage-jobs/batch").json()["batch"]["id"]
    running = client.get(f"/triage-jobs/batches/{batch_id}")
    assert running.status_code == 200
    body = running.json()
    assert set(body) == {"id", "status", "total_items", "counts", "started_at", "finished_at", "queued_ahead"}
    assert (body["id"], body["status"], body["total_items"]) == (batch_id, "RUNNING", 2)
    assert body["counts"] == {"PENDING": 2, "RUNNING": 0, "DONE": 0, "FAILED": 0}
    assert body["finished_at"] is None


def test_batch_progress_counts_the_open_jobs_of_earlier_running_batches_as_queued_ahead(
    client: TestClient, container: Container
) -> None:
    client.post("/tickets/batch", json=[ticket_body(f"A{i}") for i in range(3)])
    first = client.post("/triage-jobs/batch").json()["batch"]["id"]
    client.post("/tickets/batch", json=[ticket_body(f"B{i}") for i in range(2)])
    second = client.post("/triage-jobs/batch").json()["batch"]["id"]
    assert client.get(f"/triage-jobs/batches/{first}").json()["queued_ahead"] == 0
    assert client.get(f"/triage-jobs/batches/{second}").json()["queued_ahead"] == 3
    use_case = TriageOneJob(container.uow, FakeLlm(), container.clock)
    for item in container.use(ListBatchItems).execute(UUID(first)):
        use_case.execute(TriageJobCommand(item.job_id, UUID(first)))
    container.use(FinishBatch).execute(FinishBatchCommand(UUID(first)))
    assert client.get(f"/triage-jobs/batches/{second}").json()["queued_ahead"] == 0  # the first one is DONE


def test_finished_batch_reports_done_items_and_its_end(client: TestClient, container: Container) -> None:
    client.post("/tickets/batch", json=[ticket_body(f"T{i}") for i in range(2)])
    triage(container)
    [batch_id] = _batch_ids(container)
    body = client.get(f"/triage-jobs/batches/{batch_id}").json()
    assert body["status"] == "DONE"
    assert body["counts"] == {"PENDING": 0, "RUNNING": 0, "DONE": 2, "FAILED": 0}
    assert body["finished_at"] is not None


def _batch_ids(container: Container) -> list[str]:
    with container.engine.connect() as conn:
        return [str(row[0]) for row in conn.execute(text("SELECT id FROM triage_job_batches"))]


def test_unknown_batch_answers_404(client: TestClient) -> None:
    assert_problem(client.get(f"/triage-jobs/batches/{uuid4()}"), 404, "not_found")
