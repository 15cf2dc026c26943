"""The `triage_job_logs` asset: a report of triage attempts, with its health checks and their schedule."""

from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetSelection,
    MaterializeResult,
    ScheduleDefinition,
    asset,
    asset_check,
    define_asset_job,
)

from triage_pipeline.application.log_queries import BatchLogsQuery, GetBatchLogs
from triage_pipeline.application.recovery import CountExpiredLeases, ExpiredLeasesQuery
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.defs.triage.log_report import report_metadata


@asset(
    name="triage_job_logs",
    group_name="triage",
    description=(
        "The audit log of triage attempts (table triage_job_logs). Each triage run records a materialization "
        "for its batch; materializing it here reports the batch that finished last."
    ),
)
def triage_job_logs(services: TriageServices) -> MaterializeResult[None]:
    """Report the attempts of the batch that finished last."""
    report = services.use(GetBatchLogs).execute(BatchLogsQuery())
    return MaterializeResult(metadata=report_metadata(report.batch, report.logs))


@asset_check(asset=triage_job_logs, description="No triage job is RUNNING past its lease (a crashed worker).")
def no_job_running_past_lease(services: TriageServices) -> AssetCheckResult:
    """Fails while a job is RUNNING longer than JOB_LEASE_S (recovery will pick it up)."""
    settings = services.settings
    stuck = services.use(CountExpiredLeases).execute(ExpiredLeasesQuery(lease=timedelta(seconds=settings.job_lease_s)))
    return AssetCheckResult(
        passed=stuck == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={"jobs_past_lease": stuck, "lease_s": settings.job_lease_s},
    )


@asset_check(asset=triage_job_logs, description="The failure rate of the last finished batch is under the threshold.")
def last_batch_failure_rate(services: TriageServices) -> AssetCheckResult:
    """Fails when more than FAILURE_RATE_THRESHOLD of the last batch's attempts failed."""
    threshold = services.settings.failure_rate_threshold
    report = services.use(GetBatchLogs).execute(BatchLogsQuery())
    total = len(report.logs)
    failed = sum(1 for log in report.logs if log.error_class is not None)
    rate = failed / total if total else 0.0
    return AssetCheckResult(
        passed=rate <= threshold,
        metadata={
            "batch_id": str(report.batch.id) if report.batch else "none",
            "failure_rate": rate,
            "threshold": threshold,
            "attempts": total,
        },
    )


triage_health_checks = define_asset_job(
    "triage_health_checks", selection=AssetSelection.checks_for_assets(triage_job_logs)
)
triage_health_checks_schedule = ScheduleDefinition(
    name="triage_health_checks_schedule", job=triage_health_checks, cron_schedule="*/15 * * * *"
)
