"""The review share of triage batches in Dagster: on each batch's report of the `triage_job_logs` asset, in a
table of the recent batches, and the `last_batch_review_share` check, which warns above REVIEW_SHARE_WARN."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from dagster import AssetCheckEvaluation, AssetCheckSeverity, DagsterInstance, ExecuteInProcessResult, materialize

from tests.support.fake_ollama import FakeOllama
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.job import triage_job
from triage_pipeline.defs.triage.logs_asset import last_batch_review_share, triage_job_logs
from triage_pipeline.defs.triage.ops import TRIAGE_LOGS_ASSET
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import AttemptOutcome
from triage_pipeline.domain.triage_job_log import TriageJobLog
from triage_pipeline.infrastructure.clock import SystemClock
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory
from triage_pipeline.infrastructure.settings import SettingsError, load_settings

CLOCK = SystemClock()
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def services(database_url: str, fake_ollama: FakeOllama, clean_db: object) -> TriageServices:
    return TriageServices(
        database=DatabaseResource(url=database_url),
        llm=LlmResource(base_url=fake_ollama.url, model="fake-model", read_timeout_s=2.0),
    )


def finished_batch(
    uow: SqlUnitOfWorkFactory, *, needs_review: int, auto_applied: int, failed: int = 0, finished_at: datetime
) -> UUID:
    """A DONE batch whose attempts are logged through the repositories: stored answers with these review
    statuses, and failed attempts."""
    outcomes = (
        [(AttemptOutcome.SUCCEEDED, ReviewStatus.NEEDS_REVIEW)] * needs_review
        + [(AttemptOutcome.SUCCEEDED, ReviewStatus.AUTO_APPLIED)] * auto_applied
        + [(AttemptOutcome.FAILED, None)] * failed
    )
    tag = uuid4().hex[:8]
    CreateTickets(uow, CLOCK).execute(
        CreateTicketsCommand(
            [NewTicket(DEFAULT_OWNER_ID, f"{tag}-{i}", f"Ticket {i}", "Something") for i in range(len(outcomes))]
        )
    )
    created = CreateBatch(uow, CLOCK).execute(CreateBatchCommand(max_items=len(outcomes)))
    assert created is not None and len(created.job_ids) == len(outcomes)
    with uow() as w:
        jobs = w.jobs.get_many_with_tickets(created.job_ids)
        started = finished_at - timedelta(minutes=1)
        w.logs.add_many(
            [
                TriageJobLog(
                    id=uuid4(),
                    job_id=job.id,
                    ticket_id=ticket.id,
                    batch_id=created.batch.id,
                    attempt=1,
                    outcome=outcome,
                    prompt_id=None,
                    prompt_version=1,
                    model="fake-model",
                    started_at=started,
                    finished_at=started + timedelta(seconds=1),
                    latency_ms=1000,
                    answer={"category": "bug", "priority": "high", "confidence": 0.5} if review else None,
                    error_class=None if review else "http_error",
                    confidence={"confidence": 0.5, "signals": [], "review_status": review.value} if review else None,
                )
                for (job, ticket), (outcome, review) in zip(jobs, outcomes, strict=True)
            ]
        )
        batch = w.batches.get(created.batch.id)
        assert batch is not None
        w.batches.update(batch.abandon(w.batches.items(batch.id), finished_at))
        w.commit()
    return created.batch.id


def run_asset_and_check(services: TriageServices, instance: DagsterInstance) -> ExecuteInProcessResult:
    result = materialize(
        [triage_job_logs, last_batch_review_share], resources={"services": services}, instance=instance
    )
    assert result.success
    return result


def check_of(result: ExecuteInProcessResult) -> AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "last_batch_review_share"]
    return evaluation


def test_review_share_at_the_bound_passes(
    services: TriageServices,
    instance: DagsterInstance,
    uow_factory: SqlUnitOfWorkFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REVIEW_SHARE_WARN", "0.5")
    batch_id = finished_batch(uow_factory, needs_review=2, auto_applied=2, failed=1, finished_at=T0)
    evaluation = check_of(run_asset_and_check(services, instance))
    assert evaluation.passed
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["batch_id"] == str(batch_id)
    assert metadata["review_share"] == 0.5  # failed attempts are no answers: 2 of 4, not of 5
    assert (metadata["stored_answers"], metadata["needs_review"], metadata["auto_applied"]) == (4, 2, 2)
    assert metadata["bound"] == 0.5


def test_review_share_above_the_bound_warns(
    services: TriageServices,
    instance: DagsterInstance,
    uow_factory: SqlUnitOfWorkFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REVIEW_SHARE_WARN", "0.5")
    finished_batch(uow_factory, needs_review=3, auto_applied=2, finished_at=T0)
    evaluation = check_of(run_asset_and_check(services, instance))
    assert not evaluation.passed
    assert evaluation.severity is AssetCheckSeverity.WARN
    assert evaluation.metadata["review_share"].value == 0.6
    assert evaluation.description is not None and "REVIEW_SHARE_WARN=0.5" in evaluation.description


def test_the_bound_comes_from_the_setting(
    services: TriageServices,
    instance: DagsterInstance,
    uow_factory: SqlUnitOfWorkFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finished_batch(uow_factory, needs_review=3, auto_applied=2, finished_at=T0)
    monkeypatch.setenv("REVIEW_SHARE_WARN", "0.6")
    assert check_of(run_asset_and_check(services, instance)).passed
    monkeypatch.setenv("REVIEW_SHARE_WARN", "0.59")
    assert not check_of(run_asset_and_check(services, instance)).passed


def test_only_the_last_finished_batch_counts_and_the_table_lists_recent_batches(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    first = finished_batch(uow_factory, needs_review=4, auto_applied=0, finished_at=T0)
    assert not check_of(run_asset_and_check(services, instance)).passed
    second = finished_batch(uow_factory, needs_review=1, auto_applied=3, finished_at=T0 + timedelta(hours=1))
    result = run_asset_and_check(services, instance)
    assert check_of(result).passed
    [materialization] = result.asset_materializations_for_node(TRIAGE_LOGS_ASSET)
    metadata = materialization.metadata
    assert metadata["batch_id"].value == str(second)
    assert metadata["review_share"].value == 0.25
    assert (metadata["needs_review"].value, metadata["auto_applied"].value) == (1, 3)
    table = metadata["recent_review_share"].value
    assert isinstance(table, str)
    lines = table.splitlines()
    assert lines[0] == "| batch | finished (UTC) | stored answers | needs review | review share | failure rate |"
    # Newest first: this batch, then the one the previous materialization reported.
    assert lines[2] == f"| {str(second)[:8]} | 2025-03-01 13:00 | 4 | 1 | 25.0% | 0.0% |"
    assert lines[3] == f"| {str(first)[:8]} | 2025-03-01 12:00 | 4 | 4 | 100.0% | 0.0% |"
    assert len(lines) == 4


def test_no_finished_batch_passes(services: TriageServices, instance: DagsterInstance) -> None:
    result = run_asset_and_check(services, instance)
    evaluation = check_of(result)
    assert evaluation.passed and evaluation.metadata["batch_id"].value == "none"
    [materialization] = result.asset_materializations_for_node(TRIAGE_LOGS_ASSET)
    assert materialization.metadata["recent_review_share"].value == "_no finished batch_"


def test_a_triage_run_reports_the_review_share_of_its_batch(
    services: TriageServices, instance: DagsterInstance, uow_factory: SqlUnitOfWorkFactory
) -> None:
    CreateTickets(uow_factory, CLOCK).execute(
        CreateTicketsCommand([NewTicket(DEFAULT_OWNER_ID, f"R-{i}", f"Checkout {i}", "Fails.") for i in range(3)])
    )
    config = {"jobs_per_chunk": 10, "llm_concurrency": 4}
    result = triage_job.execute_in_process(
        run_config={"ops": {"plan_batch": {"config": config}, "triage_chunk": {"config": config}}},
        resources={"services": services},
        instance=instance,
    )
    assert result.success
    [materialization] = [
        m
        for m in result.asset_materializations_for_node("finish_batch")
        if m.asset_key.to_user_string() == TRIAGE_LOGS_ASSET
    ]
    metadata = materialization.metadata
    assert metadata["needs_review"].value + metadata["auto_applied"].value == 3
    assert metadata["review_share"].value == pytest.approx(metadata["needs_review"].value / 3, abs=1e-4)
    assert " review " in str(metadata["preview"].value).splitlines()[0]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "half"])
def test_review_share_warn_outside_0_to_1_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REVIEW_SHARE_WARN", value)
    with pytest.raises(SettingsError, match="REVIEW_SHARE_WARN"):
        load_settings()
