"""The `triage_job_logs` asset: a report of triage attempts, with its health checks and their schedule."""

from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
    asset_check,
    define_asset_job,
    in_process_executor,
)

from triage_pipeline.application.log_queries import BatchLogsQuery, GetBatchLogs
from triage_pipeline.application.recovery import CountExpiredLeases, ExpiredLeasesQuery
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.defs.triage.llm_hosts import llm_hosts
from triage_pipeline.defs.triage.log_report import report_metadata, review_share_rows, review_share_table
from triage_pipeline.defs.triage.ops import TRIAGE_LOGS_ASSET

RECENT_BATCHES = 10
"""Batches in the review-share table of a materialization."""


@asset(
    name=TRIAGE_LOGS_ASSET,
    group_name="triage",
    description=(
        "The audit log of triage attempts (table triage_job_logs). Each triage run records a materialization "
        "for its batch (review_share: the share of its stored answers sent to a person); materializing it here "
        "reports the batch that finished last, with a table of the review share of the recent batches."
    ),
)
def triage_job_logs(context: AssetExecutionContext, services: TriageServices) -> MaterializeResult[None]:
    """Report the attempts of the batch that finished last, and the review share of the recent batches."""
    report = services.use(GetBatchLogs).execute(BatchLogsQuery())
    metadata = report_metadata(report.batch, report.logs)
    rows = review_share_rows([metadata, *_recorded_batch_reports(context.instance)], RECENT_BATCHES)
    metadata["recent_review_share"] = MetadataValue.md(review_share_table(rows))
    return MaterializeResult(metadata=metadata)


def _recorded_batch_reports(instance: DagsterInstance) -> list[dict[str, object]]:
    """The metadata of the asset's recent materializations, newest first: one per batch a triage run finished
    (a batch closed by recovery records none), and those of this asset's own materializations."""
    records = instance.fetch_materializations(AssetKey(TRIAGE_LOGS_ASSET), limit=3 * RECENT_BATCHES).records
    return [
        dict(record.asset_materialization.metadata) for record in records if record.asset_materialization is not None
    ]


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


@asset_check(
    asset=triage_job_logs,
    description="The share of the last finished batch's answers sent to review is at most REVIEW_SHARE_WARN.",
)
def last_batch_review_share(services: TriageServices) -> AssetCheckResult:
    """Warns when more than REVIEW_SHARE_WARN of the last batch's stored answers wait for a person: the
    prompt's review threshold, its examples or the model need a look before the review queue does."""
    bound = services.settings.review_share_warn
    report = services.use(GetBatchLogs).execute(BatchLogsQuery())
    review = report.review_share
    return AssetCheckResult(
        passed=review.share <= bound,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{review.needs_review} of {review.succeeded} stored answers need review ({review.share:.1%}); "
            f"warns above REVIEW_SHARE_WARN={bound:g}"
        ),
        metadata={
            "batch_id": str(report.batch.id) if report.batch else "none",
            "review_share": MetadataValue.float(round(review.share, 4)),
            "bound": MetadataValue.float(bound),
            "stored_answers": review.succeeded,
            "needs_review": review.needs_review,
            "auto_applied": review.auto_applied,
            "unrated": review.unrated,
        },
    )


# One light step: in process whatever TRIAGE_EXECUTOR is (it needs no worker). With the LLM hosts' check.
triage_health_checks = define_asset_job(
    "triage_health_checks",
    selection=AssetSelection.checks_for_assets(triage_job_logs, llm_hosts.key),
    executor_def=in_process_executor,
)
triage_health_checks_schedule = ScheduleDefinition(
    name="triage_health_checks_schedule", job=triage_health_checks, cron_schedule="*/15 * * * *"
)
