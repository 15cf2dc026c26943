"""The `triage` command against the real PostgreSQL and the fake Ollama: every command, and its errors."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.e2e.test_api_quality import activations, store_evaluation
from tests.support.fake_ollama import FakeOllama
from triage_pipeline.cli.main import main
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.triage_answer import Priority, Sentiment, TriageAnswer
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

SAMPLE = Path(__file__).resolve().parents[2] / "triage_pipeline" / "data" / "tickets_labelled.jsonl"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str, clean_db: object, fake_ollama: FakeOllama) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LLM_BASE_URL", fake_ollama.url)
    monkeypatch.setenv("LLM_MODEL", "fake-model")


def test_db_status_reports_the_schema_revision(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "status"]) == 0
    assert "schema revision: 00" in capsys.readouterr().out


def test_db_up_refuses_when_an_external_database_is_configured(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "up"]) == 2
    assert "embedded server is not used" in capsys.readouterr().err


def test_import_jsonl_and_csv_reports_created_duplicate_and_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tickets", "import", str(SAMPLE)]) == 0
    assert "CREATED" in capsys.readouterr().out
    csv = tmp_path / "more.csv"
    csv.write_text("external_id,title,description\nEVAL-0001,dup,again\nNEW-1,New one,body\n,missing id,x\n")
    assert main(["tickets", "import", str(csv)]) == 0
    captured = capsys.readouterr()
    for outcome in ("CREATED", "DUPLICATE", "INVALID"):
        assert outcome in captured.out
    assert "line 3: INVALID: external_id is missing" in captured.err


def test_export_writes_every_ticket_with_triage_fields_as_csv_and_jsonl(tmp_path: Path) -> None:
    assert main(["tickets", "import", str(SAMPLE)]) == 0
    assert main(["batch", "create"]) == 0
    out_jsonl = tmp_path / "t.jsonl"
    out_csv = tmp_path / "t.csv"
    assert main(["tickets", "export", "--format", "jsonl", "-o", str(out_jsonl)]) == 0
    assert main(["tickets", "export", "--format", "csv", "-o", str(out_csv)]) == 0
    rows = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert len(rows) == 160 and {"category", "priority", "status", "external_id"} <= set(rows[0])
    assert out_csv.read_text().count("\n") >= 161


def test_export_filters_on_the_review_status(tmp_path: Path, uow_factory: SqlUnitOfWorkFactory) -> None:
    assert main(["tickets", "import", str(SAMPLE)]) == 0
    answer = TriageAnswer("bug", Priority.HIGH, Sentiment.NEGATIVE, "en", "Checkout fails.", 0.3)
    now = datetime.now(UTC)
    with uow_factory() as uow:
        tickets = list(uow.tickets.list(status=None, owner_id=None, limit=4, cursor=None).items)
        for ticket, review in zip(tickets, [ReviewStatus.NEEDS_REVIEW] * 3 + [ReviewStatus.AUTO_APPLIED], strict=True):
            uow.tickets.update(ticket.start_triage(now).complete(answer, now, review))
        uow.commit()
    out = tmp_path / "queue.jsonl"
    assert main(["tickets", "export", "--review-status", "NEEDS_REVIEW", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {row["id"] for row in rows} == {str(t.id) for t in tickets[:3]}
    assert {(row["review_status"], row["confidence"]) for row in rows} == {("NEEDS_REVIEW", 0.3)}
    with pytest.raises(SystemExit):
        main(["tickets", "export", "--review-status", "LATER"])


def test_batch_create_then_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "create"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "EMPTY"
    main(["tickets", "import", str(SAMPLE)])
    capsys.readouterr()
    assert main(["batch", "create", "--max-items", "10"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["batch"]["total_items"] == 10
    assert main(["batch", "status", created["batch"]["id"]]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["status"], status["items"]["PENDING"]) == ("RUNNING", 10)


def test_prompts_add_list_activate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system = tmp_path / "system.txt"
    system.write_text("You triage tickets. Answer in JSON.")
    assert main(["prompts", "add", "--system-file", str(system), "--options", '{"temperature": 0.1}']) == 0
    assert "version 2" in capsys.readouterr().out
    assert main(["prompts", "activate", "2"]) == 0
    assert main(["prompts", "list"]) == 0
    listing = capsys.readouterr().out
    assert "0.1" in listing and "yes" in listing


def test_prompts_add_takes_few_shot_k_and_review_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "add", "--few-shot-k", "4", "--review-threshold", "0.65"]) == 0
    capsys.readouterr()
    assert main(["prompts", "list"]) == 0
    listing = capsys.readouterr().out
    assert "0.65" in listing and "4" in listing
    for bad in (["--few-shot-k", "21"], ["--review-threshold", "1.5"], ["--review-threshold", "nan"]):
        with pytest.raises(SystemExit):
            main(["prompts", "add", *bad])
        assert "must be between" in capsys.readouterr().err


def test_prompts_add_switches_the_example_bank_on_and_off_and_copies_it_otherwise(
    capsys: pytest.CaptureFixture[str], uow_factory: SqlUnitOfWorkFactory
) -> None:
    assert main(["prompts", "add", "--example-bank"]) == 2  # the active version shows no examples
    assert "example_bank needs few_shot_k > 0" in capsys.readouterr().err
    for args in (["--example-bank", "--few-shot-k", "3", "--activate"], ["--activate"], ["--no-example-bank"]):
        assert main(["prompts", "add", *args]) == 0
    capsys.readouterr()
    with uow_factory() as uow:
        versions = uow.prompts.versions("triage")
    assert [(p.version, p.example_bank) for p in versions][-3:] == [(2, True), (3, True), (4, False)]
    with pytest.raises(SystemExit):
        main(["prompts", "add", "--example-bank=yes"])
    assert "--example-bank" in capsys.readouterr().err


def test_prompts_activate_is_refused_with_the_figures_unless_forced(
    capsys: pytest.CaptureFixture[str], uow_factory: SqlUnitOfWorkFactory, clean_db: Engine
) -> None:
    assert main(["prompts", "add", "--description", "candidate"]) == 0
    store_evaluation(uow_factory, 1, category=0.8, priority=0.6)
    store_evaluation(uow_factory, 2, category=0.8, priority=0.45)
    capsys.readouterr()
    assert main(["prompts", "activate", "2"]) == 2
    captured = capsys.readouterr()
    assert "promotion gate" in captured.out and "0.450" in captured.out and "WORSE" in captured.out
    err = captured.err.strip()
    assert err.startswith("triage: error: version 2 evaluated worse than the active version 1:") and "\n" not in err
    assert "priority_accuracy 0.450 < 0.600" in err and "--force" in err
    assert activations(clean_db) == []
    assert main(["prompts", "activate", "2", "--force"]) == 0
    assert "version 2 is now active" in capsys.readouterr().out
    assert activations(clean_db) == [(2, True)]


def test_eval_compares_two_prompt_versions_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "add", "--description", "second"]) == 0
    assert main(["eval", str(SAMPLE), "--limit", "12", "--prompt-version", "1", "--prompt-version", "2"]) == 0
    out = capsys.readouterr().out
    assert "triage v1" in out and "triage v2" in out
    assert "category accuracy" in out and "macro-F1" in out and "category confusion" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tickets", "import", "/nonexistent.jsonl"], "no such file"),
        (["prompts", "add", "--options", "{nope"], "--options is not JSON"),
        (["prompts", "activate", "99"], "not found"),
        (["batch", "status", "00000000-0000-0000-0000-0000000000aa"], "not found"),
        (["eval", "/etc/hostname"], "unsupported format"),
        (["examples", "delete", "00000000-0000-0000-0000-0000000000aa"], "not found"),
    ],
)
def test_failing_commands_exit_non_zero_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("triage: error:") and message in err and "\n" not in err
