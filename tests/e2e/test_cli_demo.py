"""`triage demo` against a real uvicorn serving the API, with batches processed as the sensor would."""

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from api.main import create_app
from tests.support.auth import ADMIN_API_KEY
from tests.support.fake_ollama import FakeOllama
from triage_pipeline.application.batches import FinishBatchCommand, LaunchableBatchesQuery
from triage_pipeline.application.triage import TriageJobsCommand
from triage_pipeline.cli.main import main
from triage_pipeline.infrastructure.container import Container
from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def api_url(database_url: str, clean_db: object, fake_ollama: FakeOllama) -> Iterator[str]:
    """The API on a free loopback port, plus a thread that processes every queued batch."""
    llm = OllamaClient(base_url=fake_ollama.url, model="fake-model")
    container = Container(Settings(admin_api_key=ADMIN_API_KEY), database_url=database_url, llm=llm)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning"))
    stop = threading.Event()

    def process_queued_batches() -> None:
        while not stop.is_set():
            for batch in container.launchable_batches.execute(LaunchableBatchesQuery()):
                job_ids = [item.job_id for item in container.batch_job_ids.execute(batch.id)]
                container.triage_jobs.execute(TriageJobsCommand(job_ids=job_ids, batch_id=batch.id))
                container.finish_batch.execute(FinishBatchCommand(batch.id))
            time.sleep(0.2)

    threads = [threading.Thread(target=server.run), threading.Thread(target=process_queued_batches)]
    for thread in threads:
        thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    stop.set()
    server.should_exit = True
    for thread in threads:
        thread.join(timeout=10)
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
