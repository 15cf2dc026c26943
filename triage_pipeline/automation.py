"""Schedules and sensors that keep triage going with nobody clicking.

Who launches a batch is decided by its origin: the API's batches are launched by
`queued_batches_sensor`; the schedule and the backlog sensor launch the batches they create; a run
started without a batch creates and processes its own. Every run request uses the batch id as its
run key, so a batch is never run twice by the same launcher.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from triage_pipeline.application.batches import BacklogQuery, CreateBatchCommand, LaunchableBatchesQuery
from triage_pipeline.application.recovery import RecoverCommand
from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch
from triage_pipeline.infrastructure.settings import Settings
from triage_pipeline.jobs import triage_job
from triage_pipeline.resources import TriageServices

# Batches committed out of created_at order are still seen: each tick re-reads this far back and
# the run key drops the ones already launched.
CURSOR_OVERLAP = timedelta(seconds=60)


@dataclass(frozen=True)
class QueuedCursor:
    """Newest batch seen, plus the ids launched inside the overlap window (so none is requested twice)."""

    newest: datetime | None = None
    launched: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, raw: str | None) -> "QueuedCursor":
        """Read a cursor written by `dump` (an unreadable one starts afresh; run keys still dedupe)."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(datetime.fromisoformat(data["newest"]), frozenset(data["launched"]))
        except (ValueError, KeyError, TypeError):
            return cls()

    def advance(self, batches: list[TriageJobBatch]) -> "QueuedCursor":
        """The cursor after launching `batches`: ids older than the overlap window are forgotten."""
        if not batches:
            return self
        newest = max([b.created_at for b in batches] + ([self.newest] if self.newest else []))
        horizon = newest - CURSOR_OVERLAP
        launched = {str(b.id) for b in batches if b.created_at > horizon}
        return QueuedCursor(newest, frozenset(launched))

    def dump(self) -> str | None:
        """The cursor as JSON."""
        if self.newest is None:
            return None
        return json.dumps({"newest": self.newest.isoformat(), "launched": sorted(self.launched)})


def run_request_for(batch: TriageJobBatch, settings: Settings) -> RunRequest:
    """The run that processes this batch."""
    return RunRequest(
        run_key=str(batch.id),
        run_config={
            "ops": {
                op_name: {
                    "config": {
                        "batch_id": str(batch.id),
                        "jobs_per_chunk": settings.jobs_per_chunk,
                        "llm_concurrency": settings.llm_concurrency,
                    }
                }
                for op_name in ("plan_batch", "triage_chunk")
            }
        },
        tags={"triage/batch_id": str(batch.id), "triage/origin": batch.origin.value},
    )


def build_automation(settings: Settings) -> tuple[list[ScheduleDefinition], list[SensorDefinition]]:
    """The schedules and sensors, parameterised by the settings."""

    @sensor(
        job=triage_job,
        minimum_interval_seconds=settings.queued_sensor_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches one run per batch queued through POST /triage-jobs/batch.",
    )
    def queued_batches_sensor(context: SensorEvaluationContext, services: TriageServices) -> SensorResult:
        cursor = QueuedCursor.parse(context.cursor)
        since = cursor.newest - CURSOR_OVERLAP if cursor.newest else None
        batches = services.container.launchable_batches.execute(LaunchableBatchesQuery(since=since))
        fresh = [b for b in batches if str(b.id) not in cursor.launched]
        next_cursor = cursor.advance(batches).dump()
        if not fresh:
            return SensorResult(skip_reason=SkipReason("no newly queued batch"), cursor=next_cursor)
        return SensorResult(run_requests=[run_request_for(b, settings) for b in fresh], cursor=next_cursor)

    @schedule(
        job=triage_job,
        cron_schedule=settings.triage_schedule_cron,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Creates a batch of eligible jobs (new ones and FAILED ones with attempts left).",
    )
    def triage_schedule(context: ScheduleEvaluationContext, services: TriageServices) -> RunRequest | SkipReason:
        created = services.container.create_batch.execute(
            CreateBatchCommand(max_items=settings.batch_max_items, origin=BatchOrigin.SCHEDULE)
        )
        if created is None:
            return SkipReason("no eligible triage job")
        return run_request_for(created.batch, settings)

    @sensor(
        job=triage_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Creates a batch when at least {settings.backlog_min_jobs} jobs wait, or the oldest has waited "
            f"{settings.backlog_max_age_s} s."
        ),
    )
    def backlog_sensor(context: SensorEvaluationContext, services: TriageServices) -> RunRequest | SkipReason:
        backlog = services.container.backlog.execute(BacklogQuery())
        too_old = backlog.oldest_age is not None and backlog.oldest_age >= timedelta(seconds=settings.backlog_max_age_s)
        if backlog.eligible < settings.backlog_min_jobs and not too_old:
            return SkipReason(f"{backlog.eligible} eligible job(s), under the thresholds")
        created = services.container.create_batch.execute(
            CreateBatchCommand(max_items=settings.batch_max_items, origin=BatchOrigin.BACKLOG_SENSOR)
        )
        if created is None:
            return SkipReason("the eligible jobs were claimed by another batch meanwhile")
        return run_request_for(created.batch, settings)

    @sensor(
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Fails jobs RUNNING past their lease (a crashed run) so they are retried; closes ended batches.",
    )
    def stuck_jobs_sensor(context: SensorEvaluationContext, services: TriageServices) -> SkipReason:
        report = services.container.recover.execute(RecoverCommand(lease=timedelta(seconds=settings.job_lease_s)))
        if report.jobs_recovered or report.batches_finished:
            context.log.warning(
                f"recovered {report.jobs_recovered} job(s), finished {report.batches_finished} batch(es)"
            )
        return SkipReason(
            f"recovered {report.jobs_recovered} job(s) and finished {report.batches_finished} batch(es) "
            f"at {datetime.now(UTC).isoformat(timespec='seconds')}"
        )

    return [triage_schedule], [queued_batches_sensor, backlog_sensor, stuck_jobs_sensor]
