"""Labelled examples over the API: bulk import with one result per item, tenant isolation, corrections as examples."""

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from api.middleware import MAX_BODY_BYTES
from api.schemas.example import MAX_EXAMPLE_ITEMS
from tests.e2e.test_api_quality import triaged
from tests.e2e.test_api_tickets import assert_problem
from tests.e2e.test_auth_api import new_owner
from triage_pipeline.bootstrap import Container

MISSING = "00000000-0000-4000-8000-00000000abcd"


def example(title: str = "Charged twice", **overrides: Any) -> dict[str, Any]:
    """A valid example item (labels in the seeded prompt's vocabulary)."""
    item: dict[str, Any] = {
        "title": title,
        "description": "My card shows two charges for March.",
        "category": "billing",
        "priority": "high",
    }
    item.update(overrides)
    return item


def post_examples(
    client: TestClient, items: list[Any], headers: dict[str, str] | None = None, **body: Any
) -> list[dict[str, Any]]:
    response = client.post("/examples", json={"items": items, **body}, headers=headers or {})
    assert response.status_code == 207, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def listed(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/examples", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# --- bulk import ------------------------------------------------------------------------------------------------


def test_import_reports_created_duplicate_and_invalid_items_in_request_order(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    [old] = post_examples(client, [example("Already there")])
    items: list[Any] = [
        example("A"),
        example("Already there"),
        example("B", category="weather"),
        example("C", priority="whenever"),
        example("", description="  "),
        {"title": 42, "category": "billing", "priority": "high"},
        "not an object",
        example("A ", description="MY CARD shows two charges   for march."),  # the same text as item 0
        example("D", sentiment="furious"),
        example("E", language="english"),
        example("F", colour="red"),
        example("x" * 301),
        example("G", sentiment="negative", language="en", reference="ZD-7"),
    ]
    response = client.post("/examples", json={"items": items})
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["owner_id"] is None  # an admin without owner_id adds to the shared bank
    results = body["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "CREATED"),
        (1, "DUPLICATE"),
        (2, "INVALID"),
        (3, "INVALID"),
        (4, "INVALID"),
        (5, "INVALID"),
        (6, "INVALID"),
        (7, "DUPLICATE"),
        (8, "INVALID"),
        (9, "INVALID"),
        (10, "INVALID"),
        (11, "INVALID"),
        (12, "CREATED"),
    ]
    assert results[1]["example_id"] == old["example_id"]
    assert results[7]["example_id"] == results[0]["example_id"]

    def errors(index: int) -> list[tuple[str, str]]:
        return [(e["field"], e["type"]) for e in results[index]["errors"]]

    assert errors(2) == [("category", "unknown_label")]
    assert "'weather' is not one of bug, outage, billing" in results[2]["errors"][0]["message"]
    assert errors(3) == [("priority", "unknown_label")]
    assert "low, normal, high, urgent" in results[3]["errors"][0]["message"]
    assert errors(4) == [("title", "empty_text")]
    assert errors(5) == [("title", "string_type")]
    assert [e["field"] for e in results[6]["errors"]] == ["item"]
    assert errors(8) == [("sentiment", "unknown_label")]
    assert errors(9) == [("language", "invalid_language")]
    assert errors(10) == [("colour", "extra_forbidden")]
    assert errors(11) == [("title", "string_too_long")]
    assert count_rows("triage_examples") == 3
    stored = client.get(f"/examples/{results[12]['example_id']}").json()
    assert (stored["sentiment"], stored["language"], stored["reference"], stored["source"]) == (
        "negative",
        "en",
        "ZD-7",
        "import",
    )


def test_all_invalid_import_stores_nothing_and_an_empty_one_answers_no_results(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    assert [r["status"] for r in post_examples(client, [{}, example(category="")])] == ["INVALID", "INVALID"]
    assert post_examples(client, []) == []
    assert count_rows("triage_examples") == 0


def test_too_many_items_answer_413_and_store_nothing(client: TestClient, count_rows: Callable[[str], int]) -> None:
    items = [example(f"t{i}") for i in range(MAX_EXAMPLE_ITEMS + 1)]
    body = assert_problem(client.post("/examples", json={"items": items}), 413, "too_many_items")
    assert body["max_items"] == MAX_EXAMPLE_ITEMS
    assert count_rows("triage_examples") == 0


def test_a_body_over_the_size_limit_answers_413_before_it_is_parsed(
    client: TestClient, count_rows: Callable[[str], int]
) -> None:
    item = example(description="x" * 19_000)
    items = [item] * (MAX_BODY_BYTES // 19_000 + 1)
    assert_problem(client.post("/examples", json={"items": items}), 413, "payload_too_large")
    assert count_rows("triage_examples") == 0


def test_a_malformed_request_is_refused_as_a_whole(client: TestClient) -> None:
    assert_problem(client.post("/examples", json=[example()]), 422, "validation_error")
    assert_problem(client.post("/examples", json={"items": [], "owner_id": "nope"}), 422, "validation_error")
    unknown = client.post("/examples", json={"items": [example()], "owner_id": MISSING})
    body = assert_problem(unknown, 422, "unknown_owner")
    assert body["errors"][0]["field"] == "owner_id"


# --- tenant isolation -------------------------------------------------------------------------------------------


def test_owners_see_their_own_and_the_shared_examples_never_another_owners(client: TestClient) -> None:
    alice_id, alice = new_owner(client, "Alice")
    bob_id, bob = new_owner(client, "Bob")
    [shared] = post_examples(client, [example("Shared one")])
    [mine] = post_examples(client, [example("Alice's")], alice)
    [theirs] = post_examples(client, [example("Bob's")], bob)
    [by_admin] = post_examples(client, [example("For Bob by the admin")], owner_id=bob_id)
    assert client.post("/examples", json={"items": []}, headers=alice).json()["owner_id"] == alice_id

    assert {e["id"] for e in listed(client, alice)} == {shared["example_id"], mine["example_id"]}
    assert {e["id"] for e in listed(client, bob)} == {
        shared["example_id"],
        theirs["example_id"],
        by_admin["example_id"],
    }
    assert listed(client, alice, owner_id=bob_id) == []
    assert [e["id"] for e in listed(client, alice, shared="true")] == [shared["example_id"]]
    assert {e["owner_id"] for e in listed(client, alice)} == {alice_id, None}

    assert len(listed(client)) == 4  # the admin sees every bank
    assert [e["id"] for e in listed(client, shared="true")] == [shared["example_id"]]
    assert {e["id"] for e in listed(client, owner_id=alice_id)} == {shared["example_id"], mine["example_id"]}
    assert_problem(client.get("/examples", params={"shared": "true", "owner_id": alice_id}), 422, "validation_error")

    assert client.get(f"/examples/{mine['example_id']}", headers=alice).json()["title"] == "Alice's"
    assert client.get(f"/examples/{shared['example_id']}", headers=alice).status_code == 200
    assert_problem(client.get(f"/examples/{theirs['example_id']}", headers=alice), 404, "not_found")
    assert_problem(client.get(f"/examples/{MISSING}", headers=alice), 404, "not_found")

    # A duplicate is judged within one bank: Bob's text is new to Alice's bank.
    assert post_examples(client, [example("Bob's")], alice)[0]["status"] == "CREATED"


def test_an_owner_key_adds_only_to_its_own_bank(client: TestClient, count_rows: Callable[[str], int]) -> None:
    alice_id, alice = new_owner(client, "Alice")
    bob_id, _ = new_owner(client, "Bob")
    refused_shared = client.post("/examples", json={"items": [example()], "owner_id": None}, headers=alice)
    assert_problem(refused_shared, 403, "forbidden")
    refused_other = client.post("/examples", json={"items": [example()], "owner_id": bob_id}, headers=alice)
    assert_problem(refused_other, 403, "forbidden")
    assert count_rows("triage_examples") == 0
    own = client.post("/examples", json={"items": [example()], "owner_id": alice_id}, headers=alice)
    assert own.status_code == 207 and own.json()["results"][0]["status"] == "CREATED"


def test_deleting_is_scoped_to_the_callers_bank(client: TestClient) -> None:
    _, alice = new_owner(client, "Alice")
    _, bob = new_owner(client, "Bob")
    [shared] = post_examples(client, [example("Shared one")])
    [mine] = post_examples(client, [example("Alice's")], alice)
    [theirs] = post_examples(client, [example("Bob's")], bob)
    assert_problem(client.delete(f"/examples/{theirs['example_id']}", headers=alice), 404, "not_found")
    assert_problem(client.delete(f"/examples/{shared['example_id']}", headers=alice), 404, "not_found")
    assert_problem(client.delete(f"/examples/{MISSING}", headers=alice), 404, "not_found")
    deleted = client.delete(f"/examples/{mine['example_id']}", headers=alice)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(client.get(f"/examples/{mine['example_id']}", headers=alice), 404, "not_found")
    assert client.get(f"/examples/{theirs['example_id']}", headers=bob).status_code == 200
    assert client.delete(f"/examples/{shared['example_id']}").status_code == 204  # the admin may
    assert client.delete(f"/examples/{theirs['example_id']}").status_code == 204
    assert listed(client) == []


def test_the_list_pages_with_a_cursor(client: TestClient) -> None:
    post_examples(client, [example(f"ticket {i}") for i in range(5)])
    first = client.get("/examples", params={"limit": 2}).json()
    second = client.get("/examples", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get("/examples", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    ids = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert len(ids) == len(set(ids)) == 5 and third["next_cursor"] is None
    assert_problem(client.get("/examples", params={"cursor": "bogus"}), 400, "invalid_cursor")
    assert_problem(client.get("/examples", params={"limit": 0}), 422, "validation_error")
    assert_problem(client.get("/examples", params={"sahred": "true"}), 422, "validation_error")


# --- corrections become examples ----------------------------------------------------------------------------------


def test_a_correction_becomes_the_tickets_example_and_a_second_one_updates_it(
    client: TestClient, container: Container
) -> None:
    owner_id, owner = new_owner(client, "Acme")
    ticket_id = triaged(client, container, "CORR-1", owner_id=owner_id)
    assert (
        client.put(f"/tickets/{ticket_id}/triage", json={"category": "billing", "priority": "low"}).status_code == 201
    )
    [corrected] = listed(client, owner)
    assert (corrected["source"], corrected["ticket_id"], corrected["owner_id"]) == ("correction", ticket_id, owner_id)
    assert (corrected["category"], corrected["priority"]) == ("billing", "low")
    assert client.get(f"/tickets/{ticket_id}").json()["review_status"] == "REVIEWED"

    assert (
        client.put(f"/tickets/{ticket_id}/triage", json={"category": "outage", "priority": "urgent"}).status_code == 201
    )
    [updated] = listed(client, owner)
    assert updated["id"] == corrected["id"]
    assert (updated["category"], updated["priority"]) == ("outage", "urgent")
    assert len(listed(client)) == 1
    _, other = new_owner(client, "Other")
    assert listed(client, other) == []  # another owner's prompts never see it
