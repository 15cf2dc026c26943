"""The review queue over the API: review status and confidence on tickets, accepting an answer, the filter."""

from fastapi.testclient import TestClient

from tests.e2e.conftest import ticket_body
from tests.e2e.test_api_quality import triaged
from tests.e2e.test_api_tickets import assert_problem
from tests.e2e.test_auth_api import new_owner
from triage_pipeline.bootstrap import Container

MISSING = "00000000-0000-4000-8000-00000000abcd"


def review_statuses(client: TestClient, status: str, headers: dict[str, str] | None = None) -> set[str]:
    response = client.get("/tickets", params={"review_status": status}, headers=headers or {})
    assert response.status_code == 200, response.text
    return {t["id"] for t in response.json()["items"]}


def test_tickets_show_their_review_status_and_the_answers_confidence(client: TestClient, container: Container) -> None:
    pending = client.post("/tickets", json=ticket_body("NEW")).json()
    assert (pending["review_status"], pending["confidence"]) == (None, None)
    ticket_id = triaged(client, container, "AUTO")
    detail = client.get(f"/tickets/{ticket_id}").json()
    # The seeded prompt's review threshold is 0: every answer is applied. The fake LLM is 90% sure of its
    # category (its log-probabilities) and no example was found, so that is the computed confidence.
    assert (detail["review_status"], detail["confidence"]) == ("AUTO_APPLIED", 0.9)
    assert detail["triage"]["confidence"] == detail["confidence"]
    [listed] = [t for t in client.get("/tickets").json()["items"] if t["id"] == ticket_id]
    assert (listed["review_status"], listed["confidence"]) == ("AUTO_APPLIED", 0.9)
    [attempt] = client.get(f"/tickets/{ticket_id}/logs").json()
    assert attempt["example_ids"] == []
    assert attempt["confidence"]["confidence"] == 0.9 and attempt["confidence"]["signals"] == ["logprobs"]


def test_an_answer_below_the_threshold_waits_for_review_until_accepted(
    client: TestClient, container: Container
) -> None:
    applied = triaged(client, container, "APPLIED")
    created = client.post("/prompts", json={"review_threshold": 0.95, "activate": True})
    assert created.status_code == 201 and created.json()["review_threshold"] == 0.95
    waiting = triaged(client, container, "WAITING")
    untriaged = client.post("/tickets", json=ticket_body("UNTRIAGED")).json()["id"]
    assert review_statuses(client, "NEEDS_REVIEW") == {waiting}
    assert review_statuses(client, "AUTO_APPLIED") == {applied}
    assert review_statuses(client, "REVIEWED") == set()

    accepted = client.post(f"/tickets/{waiting}/review", json={"reviewed_by": "agent-7"})
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert (body["id"], body["review_status"], body["triage_status"]) == (waiting, "REVIEWED", "COMPLETED")
    assert client.get(f"/tickets/{waiting}").json()["triage"]["category"] == "bug"  # the answer is unchanged
    assert review_statuses(client, "NEEDS_REVIEW") == set()
    assert review_statuses(client, "REVIEWED") == {waiting}
    assert client.post(f"/tickets/{waiting}/review").status_code == 200  # accepting again is harmless

    assert_problem(client.post(f"/tickets/{untriaged}/review"), 409, "not_correctable")
    assert_problem(client.post(f"/tickets/{MISSING}/review"), 404, "not_found")
    assert_problem(client.get("/tickets", params={"review_status": "LATER"}), 422, "validation_error")


def test_the_review_filter_stays_within_an_owners_tickets(client: TestClient, container: Container) -> None:
    client.post("/prompts", json={"review_threshold": 1, "activate": True})
    alice_id, alice = new_owner(client, "Alice")
    mine = triaged(client, container, "A-1", owner_id=alice_id)
    theirs = triaged(client, container, "B-1")
    assert review_statuses(client, "NEEDS_REVIEW", alice) == {mine}
    assert review_statuses(client, "NEEDS_REVIEW") == {mine, theirs}
    # Accepting is an admin's decision, like a correction.
    assert_problem(client.post(f"/tickets/{mine}/review", headers=alice), 403, "forbidden")
