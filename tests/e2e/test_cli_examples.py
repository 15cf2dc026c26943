"""`triage examples import|list|delete` against the real PostgreSQL: per-row reports, file-level refusals, banks."""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy.exc import OperationalError

from tests.support.fake_ollama import FakeOllama
from triage_pipeline.application.examples import ImportExamples, ImportExamplesCommand
from triage_pipeline.cli.examples import IMPORT_CHUNK, MAX_FILE_BYTES
from triage_pipeline.cli.main import main
from triage_pipeline.domain.example import ExampleSource
from triage_pipeline.domain.owner import Owner
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory

SAMPLE = Path(__file__).resolve().parents[2] / "triage_pipeline" / "data" / "tickets_labelled.jsonl"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str, clean_db: object, fake_ollama: FakeOllama) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LLM_BASE_URL", fake_ollama.url)
    monkeypatch.setenv("LLM_MODEL", "fake-model")


def jsonl(**fields: Any) -> str:
    row = {"title": "Charged twice", "description": "Two charges for March.", "category": "billing", "priority": "high"}
    row.update(fields)
    return json.dumps(row)


def listed(capsys: pytest.CaptureFixture[str], *flags: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["examples", "list", "--json", *flags]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def invalid_lines(err: str) -> dict[int, str]:
    """line number -> reason of every `line N: INVALID: reason` report."""
    found = {}
    for line in err.splitlines():
        if ": INVALID: " in line:
            where, reason = line.split(": INVALID: ", 1)
            found[int(where.removeprefix("line "))] = reason
    return found


def new_owner(uow_factory: SqlUnitOfWorkFactory) -> UUID:
    now = datetime.now(UTC)
    owner = Owner(id=uuid4(), name="Acme", created_at=now, updated_at=now)
    with uow_factory() as uow:
        uow.owners.add(owner)
        uow.commit()
    return owner.id


def test_jsonl_import_reports_each_bad_row_with_its_line_and_keeps_the_good_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        jsonl(title="One", reference="ZD-1"),  # 1
        jsonl(title="One", reference="again"),  # 2: the same text
        jsonl(title="Two", category="weather"),  # 3
        jsonl(title="Three", priority="whenever"),  # 4
        '{"title": "broken", ',  # 5
        "",  # 6: blank lines are skipped
        '["not", "an", "object"]',  # 7
        jsonl(title="Four", category=None),  # 8
        jsonl(title=42),  # 9
        jsonl(title="", description=" "),  # 10
        jsonl(title="Five", sentiment="negative", language="en", external_id="T-5"),  # 11
        jsonl(title="x" * 301),  # 12
        jsonl(title="Six\x00"),  # 13
        '{"title": "Seven \\ud800", "category": "bug", "priority": "low"}',  # 14
    ]
    path = tmp_path / "examples.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["examples", "import", str(path), "--shared"]) == 0
    captured = capsys.readouterr()
    assert f"{path}: 13 row(s) into the shared bank: 2 created, 1 duplicate, 10 invalid" in captured.out
    reasons = invalid_lines(captured.err)
    assert sorted(reasons) == [3, 4, 5, 7, 8, 9, 10, 12, 13, 14]
    assert reasons[3].startswith("category 'weather' is not one of bug, outage, billing")
    assert reasons[4].startswith("priority 'whenever' is not one of low, normal, high, urgent")
    assert reasons[5].startswith("not valid JSON")
    assert reasons[7] == "not a JSON object but list"
    assert reasons[8] == "category is missing"
    assert reasons[9] == "title must be text, not int"
    assert reasons[10] == "an example needs a title or a description"
    assert reasons[12] == "title is longer than 300 characters"
    assert reasons[13] == "title holds a NUL character, which cannot be stored"
    assert reasons[14].startswith("title holds an unpaired surrogate")
    assert "Traceback" not in captured.err
    examples = listed(capsys, "--shared")
    assert sorted((e["title"], e["reference"], e["owner_id"], e["source"]) for e in examples) == [
        ("Five", "examples.jsonl#T-5", None, "import"),
        ("One", "ZD-1", None, "import"),
    ]


def test_csv_import_reports_physical_line_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "examples.csv"
    path.write_text(
        "Title,Description,Category,Priority,Sentiment\n"  # 1
        'Login loop,"Every login\nsends me back\nto the start",account_access,urgent,negative\n'  # 2-4
        "Wrong count,only,three\n"  # 5
        "\n"  # 6
        "Invoice,Missing VAT,billing,low,\n"  # 7
        "Rain,Too much,weather,low,\n",  # 8
        encoding="utf-8",
    )
    assert main(["examples", "import", str(path), "--shared"]) == 0
    captured = capsys.readouterr()
    assert "4 row(s) into the shared bank: 2 created, 0 duplicate, 2 invalid" in captured.out
    reasons = invalid_lines(captured.err)
    assert reasons == {
        5: "has 3 fields, the header has 5",
        8: reasons[8],
    }
    assert reasons[8].startswith("category 'weather' is not one of")
    [login] = [e for e in listed(capsys, "--shared") if e["title"] == "Login loop"]
    assert login["description"] == "Every login\nsends me back\nto the start"
    assert (login["category"], login["priority"], login["sentiment"]) == ("account_access", "urgent", "negative")
    assert login["reference"] == "examples.csv#line 2"


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("export.txt", jsonl(title="From JSONL") + "\r\n", "jsonl"),
        ("export", "title,description,category,priority\r\nFrom CSV,body,bug,low\r\n", "csv"),
    ],
)
def test_a_file_without_a_known_extension_is_read_by_its_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, kind: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())  # with a byte order mark, as some tools write
    assert main(["examples", "import", str(path), "--shared"]) == 0
    captured = capsys.readouterr()
    assert "1 created, 0 duplicate, 0 invalid" in captured.out and f"({kind})" in captured.err


def test_the_shipped_labelled_sample_imports_as_examples_of_an_owner(
    uow_factory: SqlUnitOfWorkFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    owner_id = new_owner(uow_factory)
    assert main(["examples", "import", str(SAMPLE), "--owner", str(owner_id)]) == 0
    out = capsys.readouterr().out
    assert f"160 row(s) into the bank of owner {owner_id}: 160 created, 0 duplicate, 0 invalid" in out
    assert main(["examples", "import", str(SAMPLE), "--owner-id", str(owner_id)]) == 0
    assert "0 created, 160 duplicate" in capsys.readouterr().out
    assert {e["owner_id"] for e in listed(capsys, "--owner", str(owner_id))} == {str(owner_id)}
    assert listed(capsys, "--shared") == []


def test_a_file_over_the_size_limit_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: as large as the limit says, written in no time
    started = time.perf_counter()
    assert main(["examples", "import", str(path), "--shared"]) == 2
    assert time.perf_counter() - started < 2
    err = capsys.readouterr().err.strip()
    assert err == f"triage: error: {path} is 50.0 MiB, over the 50 MiB limit of one import; split it into smaller files"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", b"", "is empty: there is no example to import"),
        ("blank.csv", b"\n  \n", "is empty: there is no example to import"),
        ("header.csv", b"title,description,category,priority\n", "has a header line but no rows"),
        ("columns.csv", b"title,category\nx,bug\n", "missing column(s) priority in the header line"),
        ("array.json", b'[{"title": "x"}]', "holds a JSON array: write one JSON object per line"),
        ("latin1.csv", "title,description,category,priority\ncaf\u00e9,x,bug,low\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_gives_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["examples", "import", str(path), "--shared"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("triage: error:") and message in err and "\n" not in err, err


def test_missing_paths_and_unknown_owners_give_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], count_rows: Callable[[str], int]
) -> None:
    assert main(["examples", "import", str(tmp_path / "nope.jsonl"), "--shared"]) == 2
    assert "triage: error: no such file" in capsys.readouterr().err
    assert main(["examples", "import", str(tmp_path), "--shared"]) == 2
    assert "is not a regular file" in capsys.readouterr().err
    path = tmp_path / "one.jsonl"
    path.write_text(jsonl() + "\n")
    unknown = "00000000-0000-4000-8000-00000000abcd"
    assert main(["examples", "import", str(path), "--owner", unknown]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert last == f"triage: error: owner {unknown} not found; nothing was stored"
    assert count_rows("triage_examples") == 0
    with pytest.raises(SystemExit) as exited:  # the bank must be named
        main(["examples", "import", str(path)])
    assert exited.value.code == 2
    assert "one of the arguments --owner/--owner-id --shared is required" in capsys.readouterr().err


def test_a_failure_part_way_keeps_the_chunks_already_stored(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    count_rows: Callable[[str], int],
) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(jsonl(title=f"ticket {i}") + "\n" for i in range(IMPORT_CHUNK * 2 + 10)))
    calls = []
    original = ImportExamples.execute

    def failing_second_chunk(self: ImportExamples, command: ImportExamplesCommand) -> Any:
        calls.append(len(command.items))
        if len(calls) == 2:
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return original(self, command)

    monkeypatch.setattr(ImportExamples, "execute", failing_second_chunk)
    assert main(["examples", "import", str(path), "--shared"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"triage: error: {path}: stopped at line {IMPORT_CHUNK + 1}: (builtins.Exception) server")
    assert last.endswith(f"the {IMPORT_CHUNK} example(s) created before it are stored")
    assert "Traceback" not in err
    assert count_rows("triage_examples") == IMPORT_CHUNK


def test_list_and_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str], uow_factory: SqlUnitOfWorkFactory) -> None:
    owner_id = new_owner(uow_factory)
    path = tmp_path / "e.jsonl"
    path.write_text(jsonl(title="Shared one") + "\n")
    assert main(["examples", "import", str(path), "--shared"]) == 0
    path.write_text(jsonl(title="Acme's") + "\n")
    assert main(["examples", "import", str(path), "--owner", str(owner_id)]) == 0
    everything = listed(capsys)
    assert {e["title"] for e in everything} == {"Shared one", "Acme's"}
    assert {e["source"] for e in everything} == {ExampleSource.IMPORT.value}
    assert {e["title"] for e in listed(capsys, "--shared")} == {"Shared one"}
    capsys.readouterr()
    assert main(["examples", "list"]) == 0
    table = capsys.readouterr().out
    assert "Acme's" in table and "shared" in table
    [acme] = [e for e in everything if e["title"] == "Acme's"]
    assert main(["examples", "delete", acme["id"]]) == 0
    assert f"deleted example {acme['id']}" in capsys.readouterr().out
    assert {e["title"] for e in listed(capsys)} == {"Shared one"}
    assert main(["examples", "delete", acme["id"]]) == 2
    assert capsys.readouterr().err.strip() == f"triage: error: example {acme['id']} not found"
