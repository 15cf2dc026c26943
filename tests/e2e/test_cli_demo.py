"""`triage demo` against a real uvicorn serving the API, with batches processed as the sensor would."""

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from api.main import create_app
from tests.support.auth import ADMIN_API_KEY
from tests.support.fake_ollama import FakeOllama
from tests.support.live_server import serving
from triage_pipeline.application.batches import (
    CreateBatch,
    CreateBatchCommand,
    FinishBatch,
    FinishBatchCommand,
    LaunchableBatchesQuery,
    ListBatchItems,
    ListLaunchableBatches,
)
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.triage import TriageJobs, TriageJobsCommand
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.main import main
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def api_url(database_url: str, clean_db: object, fake_ollama: FakeOllama) -> Iterator[str]:
    """The API on a free loopback port, plus a thread that processes every queued batch."""
    llm = OllamaClient(base_url=fake_ollama.url, model="fake-model")
    container = Container(Settings(admin_api_key=ADMIN_API_KEY), database_url=database_url, llm=llm)
    stop = threading.Event()

    def process_queued_batches() -> None:
        while not stop.is_set():
            for batch in container.use(ListLaunchableBatches).execute(LaunchableBatchesQuery()):
                job_ids = [item.job_id for item in container.use(ListBatchItems).execute(batch.id)]
                container.use(TriageJobs).execute(TriageJobsCommand(job_ids=job_ids, batch_id=batch.id))
                container.use(FinishBatch).execute(FinishBatchCommand(batch.id))
            time.sleep(0.2)

    processor = threading.Thread(target=process_queued_batches)
    with serving(create_app(container)) as (url, _):
        processor.start()
        yield url
        stop.set()
        processor.join(timeout=10)
    container.close()


def test_demo_posts_the_samples_follows_progress_and_prints_results(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--api-url", api_url, "--api-key", ADMIN_API_KEY, "--limit", "12", "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "posted 12 sample tickets" in out
    assert "triage results" in out and "tickets by status" in out
    assert "COMPLETED" in out and "EVAL-0001" in out


def test_demo_says_clearly_when_the_api_is_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--api-url", f"http://127.0.0.1:{free_port()}", "--limit", "1"]) == 2
    assert "start it with `make run`" in capsys.readouterr().err


@pytest.fixture
def api_without_pipeline(database_url: str, clean_db: object) -> Iterator[tuple[str, Container, uvicorn.Server]]:
    """The API on a free loopback port with nothing processing its batches (a busy or stopped pipeline)."""
    container = Container(Settings(admin_api_key=ADMIN_API_KEY), database_url=database_url)
    with serving(create_app(container)) as (url, server):
        yield url, container, server
    container.close()


def _backlog(container: Container, jobs: int) -> None:
    """`jobs` tickets queued in an earlier batch that nothing processes."""
    container.use(CreateTickets).execute(
        CreateTicketsCommand([NewTicket(DEFAULT_OWNER_ID, f"backlog-{i}", f"Backlog {i}", "") for i in range(jobs)])
    )
    assert container.use(CreateBatch).execute(CreateBatchCommand(max_items=jobs)) is not None


def test_demo_says_how_many_jobs_are_queued_ahead_of_its_batch(
    api_without_pipeline: tuple[str, Container, uvicorn.Server], capsys: pytest.CaptureFixture[str]
) -> None:
    api_url, container, _ = api_without_pipeline
    _backlog(container, 7)
    code = main(["demo", "--api-url", api_url, "--api-key", ADMIN_API_KEY, "--limit", "2", "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 1  # nothing triaged them within the timeout
    assert "7 jobs of earlier batches are queued ahead of it" in out


def test_demo_ends_with_one_error_line_when_the_api_stops_while_it_waits(
    api_without_pipeline: tuple[str, Container, uvicorn.Server], capsys: pytest.CaptureFixture[str]
) -> None:
    api_url, container, server = api_without_pipeline
    codes: list[int] = []
    demo = threading.Thread(
        target=lambda: codes.append(
            main(["demo", "--api-url", api_url, "--api-key", ADMIN_API_KEY, "--limit", "2", "--timeout", "60"])
        )
    )
    demo.start()
    deadline = time.monotonic() + 30
    while not container.use(ListLaunchableBatches).execute(LaunchableBatchesQuery()) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.should_exit = True  # the API stops while the demo follows its batch
    demo.join(timeout=60)
    err = capsys.readouterr().err.strip()  # the progress bar, then the error
    assert codes == [2]
    last = err.splitlines()[-1]
    assert last.startswith("triage: error: the API at") and "stopped answering" in last
    assert "Traceback" not in err and err.count("triage: error:") == 1
