"""The LLM hosts in Dagster: the `llm_hosts_reachable` check, run by the `triage_health_checks` job, shows each
host's state and warns while one is down; the schedule and the backlog sensor create no batch while no host
answers."""

from collections.abc import Iterator

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
)
from sqlalchemy import Engine, text

from tests.support.fake_ollama import OLLAMA_VERSION, FakeOllama
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.llm_hosts import llm_hosts, llm_hosts_reachable
from triage_pipeline.defs.triage.logs_asset import (
    last_batch_failure_rate,
    last_batch_review_share,
    no_job_running_past_lease,
    triage_health_checks,
    triage_job_logs,
)
from triage_pipeline.defs.triage.schedules import build_triage_schedule
from triage_pipeline.defs.triage.sensors import build_sensors
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.clock import SystemClock
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory
from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


def run_health_checks(base_url: str, database_url: str, instance: DagsterInstance) -> AssetCheckEvaluation:
    """Run the real `triage_health_checks` job on these LLM hosts; the evaluation of `llm_hosts_reachable`."""
    services = TriageServices(
        database=DatabaseResource(url=database_url),
        llm=LlmResource(base_url=base_url, model="fake-model", read_timeout_s=2.0),
    )
    defs = Definitions(
        assets=[triage_job_logs, llm_hosts],
        asset_checks=[no_job_running_past_lease, last_batch_failure_rate, last_batch_review_share, llm_hosts_reachable],
        jobs=[triage_health_checks],
        resources={"services": services},
    )
    result = defs.resolve_job_def("triage_health_checks").execute_in_process(instance=instance)
    assert result.success
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "llm_hosts_reachable"]
    return evaluation


def test_check_passes_when_every_host_answers(
    database_url: str, clean_db: object, fake_ollama: FakeOllama, instance: DagsterInstance
) -> None:
    second = FakeOllama().start()
    try:
        evaluation = run_health_checks(f"{fake_ollama.url}#4,{second.url}", database_url, instance)
    finally:
        second.stop()

    assert evaluation.passed
    metadata = {key: value.value for key, value in evaluation.metadata.items()}
    assert (metadata["hosts_up"], metadata["hosts_total"]) == (2, 2)
    assert str(metadata[fake_ollama.url]).startswith(f"up (Ollama {OLLAMA_VERSION}, ")
    assert str(metadata[fake_ollama.url]).endswith("4 at once)")


def test_check_warns_naming_the_host_that_is_down(
    database_url: str, clean_db: object, fake_ollama: FakeOllama, instance: DagsterInstance
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"

    evaluation = run_health_checks(f"{fake_ollama.url}#4,{dead}#2", database_url, instance)

    assert not evaluation.passed
    assert evaluation.severity is AssetCheckSeverity.WARN
    assert evaluation.description == f"1 of 2 LLM hosts up; down: {dead}"
    metadata = {key: value.value for key, value in evaluation.metadata.items()}
    assert (metadata["hosts_up"], metadata["hosts_total"]) == (1, 2)
    assert str(metadata[dead]).startswith("down (ConnectError")
    table = str(metadata["hosts"])
    assert f"| {fake_ollama.url} | up | 4 |" in table and f"| {dead} | down | 2 |" in table


def test_the_check_is_in_the_code_location_and_its_health_checks_job() -> None:
    from triage_pipeline.definitions import defs

    job = defs.resolve_job_def("triage_health_checks")
    assert "llm_hosts_llm_hosts_reachable" in [node.name for node in job.graph.nodes]
    assert defs.resolve_assets_def("llm_hosts") is not None


# -- the batch creators wait while no LLM host answers -------------------------------------------------------

NO_HOST_SKIP = "no LLM host answers: {urls}; jobs wait instead of using up runs"


def stopped_ollama_url() -> str:
    """The base URL of a fake Ollama that was started and stopped: nothing listens there any more."""
    with FakeOllama() as fake:
        url = fake.url
    return url


def tick_services(database_url: str, base_url: str) -> TriageServices:
    return TriageServices(
        database=DatabaseResource(url=database_url),
        llm=LlmResource(base_url=base_url, model="fake-model", read_timeout_s=2.0),
    )


def post_tickets(uow: SqlUnitOfWorkFactory, n: int) -> None:
    items = [NewTicket(DEFAULT_OWNER_ID, f"H-{i}", f"Checkout broken {i}", "The pay button fails.") for i in range(n)]
    CreateTickets(uow, SystemClock()).execute(CreateTicketsCommand(items))


def batches_and_items(engine: Engine) -> tuple[int, int]:
    """How many batches exist and how many jobs they hold."""
    with engine.connect() as connection:
        batches = connection.execute(text("SELECT count(*) FROM triage_job_batches")).scalar_one()
        items = connection.execute(text("SELECT count(*) FROM triage_job_batch_items")).scalar_one()
    return int(batches), int(items)


def test_backlog_sensor_creates_no_batch_while_no_llm_host_answers(
    database_url: str, clean_db: Engine, uow_factory: SqlUnitOfWorkFactory, instance: DagsterInstance
) -> None:
    first, second = stopped_ollama_url(), stopped_ollama_url()
    sensor = next(s for s in build_sensors(Settings(backlog_min_jobs=2)) if s.name == "backlog_sensor")
    post_tickets(uow_factory, 3)

    with build_sensor_context(
        instance=instance, resources={"services": tick_services(database_url, f"{first},{second}#2")}
    ) as context:
        result = sensor.evaluate_tick(context)

    assert not result.run_requests
    assert result.skip_message == NO_HOST_SKIP.format(urls=f"{first}, {second}")
    assert batches_and_items(clean_db) == (0, 0)  # no job claimed: they wait


def test_backlog_sensor_creates_a_batch_once_one_llm_host_answers(
    database_url: str,
    clean_db: Engine,
    uow_factory: SqlUnitOfWorkFactory,
    instance: DagsterInstance,
    fake_ollama: FakeOllama,
) -> None:
    sensor = next(s for s in build_sensors(Settings(backlog_min_jobs=2)) if s.name == "backlog_sensor")
    post_tickets(uow_factory, 3)
    services = tick_services(database_url, f"{stopped_ollama_url()},{fake_ollama.url}")

    with build_sensor_context(instance=instance, resources={"services": services}) as context:
        result = sensor.evaluate_tick(context)

    [request] = result.run_requests or []
    assert isinstance(request, RunRequest) and request.tags["triage/origin"] == "backlog_sensor"
    assert batches_and_items(clean_db) == (1, 3)
    assert fake_ollama.request_count == 1  # the probe: one GET /api/version, no triage call


@pytest.mark.parametrize("host", ["stopped", "running"])
def test_schedule_creates_a_batch_only_while_an_llm_host_answers(
    database_url: str,
    clean_db: Engine,
    uow_factory: SqlUnitOfWorkFactory,
    instance: DagsterInstance,
    fake_ollama: FakeOllama,
    host: str,
) -> None:
    url = stopped_ollama_url() if host == "stopped" else fake_ollama.url
    post_tickets(uow_factory, 3)
    schedule = build_triage_schedule(Settings())

    with build_schedule_context(instance=instance, resources={"services": tick_services(database_url, url)}) as context:
        result = schedule.evaluate_tick(context)

    if host == "stopped":
        assert not result.run_requests
        assert result.skip_message == NO_HOST_SKIP.format(urls=url)
        assert batches_and_items(clean_db) == (0, 0)
    else:
        [request] = result.run_requests or []
        assert isinstance(request, RunRequest) and request.tags["triage/origin"] == "schedule"
        assert batches_and_items(clean_db) == (1, 3)
