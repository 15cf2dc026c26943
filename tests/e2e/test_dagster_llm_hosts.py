"""The LLM hosts in Dagster: the `llm_hosts_reachable` check, run by the `triage_health_checks` job, shows each
host's state and warns while one is down."""

from collections.abc import Iterator

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
)

from tests.support.fake_ollama import OLLAMA_VERSION, FakeOllama
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.llm_hosts import llm_hosts, llm_hosts_reachable
from triage_pipeline.defs.triage.logs_asset import (
    last_batch_failure_rate,
    last_batch_review_share,
    no_job_running_past_lease,
    triage_health_checks,
    triage_job_logs,
)
from triage_pipeline.infrastructure.embedded_postgres import free_port


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
