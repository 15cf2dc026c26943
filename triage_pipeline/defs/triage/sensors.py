"""Sensors that keep triage going with nobody clicking (the schedule is in `schedules.py`).

Who launches a batch is decided by its origin: the API's batches are launched by
`queued_batches_sensor`; the schedule and the backlog sensor launch the batches they create; a run
started without a batch creates and processes its own. Every run request uses the batch id as its
run key, so a batch is never run twice by the same launcher.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from triage_pipeline.application.batches import (
    BacklogQuery,
    CreateBatch,
    CreateBatchCommand,
    GetBacklog,
    LaunchableBatchesQuery,
    ListLaunchableBatches,
)
from triage_pipeline.application.recovery import RecoverCommand, RecoverStuckWork
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.defs.triage.ended_runs import batches_of_ended_runs
from triage_pipeline.defs.triage.job import run_request_for, triage_job
from triage_pipeline.defs.triage.llm_hosts import skip_unless_an_llm_host_answers
from triage_pipeline.domain.batch import BatchOrigin, TriageJobBatch
from triage_pipeline.infrastructure.settings import Settings

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
        """What `parse` reads back; None until a batch has been seen, so Dagster stores no cursor yet."""
        if self.newest is None:
            return None
        return json.dumps({"newest": self.newest.isoformat(), "launched": sorted(self.launched)})


def build_sensors(settings: Settings) -> list[SensorDefinition]:
    """The sensors; their intervals and thresholds come from the settings."""

    @sensor(
        job=triage_job,
        minimum_interval_seconds=settings.queued_sensor_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches one run per batch queued through POST /triage-jobs/batch.",
    )
    def queued_batches_sensor(context: SensorEvaluationContext, services: TriageServices) -> SensorResult:
        cursor = QueuedCursor.parse(context.cursor)
        since = cursor.newest - CURSOR_OVERLAP if cursor.newest else None
        batches = services.use(ListLaunchableBatches).execute(LaunchableBatchesQuery(since=since))
        fresh = [b for b in batches if str(b.id) not in cursor.launched]
        next_cursor = cursor.advance(batches).dump()
        if not fresh:
            return SensorResult(skip_reason=SkipReason("no newly queued batch"), cursor=next_cursor)
        return SensorResult(run_requests=[run_request_for(b, settings) for b in fresh], cursor=next_cursor)

    @sensor(
        job=triage_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Creates a batch when at least {settings.backlog_min_jobs} jobs wait, or the oldest has waited "
            f"{settings.backlog_max_age_s} s; skips while no LLM host answers."
        ),
    )
    def backlog_sensor(context: SensorEvaluationContext, services: TriageServices) -> RunRequest | SkipReason:
        backlog = services.use(GetBacklog).execute(BacklogQuery())
        too_old = backlog.oldest_age is not None and backlog.oldest_age >= timedelta(seconds=settings.backlog_max_age_s)
        if backlog.eligible < settings.backlog_min_jobs and not too_old:
            return SkipReason(f"{backlog.eligible} eligible job(s), under the thresholds")
        if (no_host := skip_unless_an_llm_host_answers(services)) is not None:
            return no_host
        created = services.use(CreateBatch).execute(
            CreateBatchCommand(max_items=settings.batch_max_items, origin=BatchOrigin.BACKLOG_SENSOR)
        )
        if created is None:
            return SkipReason("the eligible jobs were claimed by another batch meanwhile")
        return run_request_for(created.batch, settings)

    @sensor(
        minimum_interval_seconds=settings.recovery_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Fails jobs whose worker is presumed dead (RUNNING past JOB_LEASE_S, no heartbeat for "
            "JOB_HEARTBEAT_TIMEOUT_S, or their run failed or was canceled) so they are retried; closes ended "
            "batches."
        ),
    )
    def stuck_jobs_sensor(context: SensorEvaluationContext, services: TriageServices) -> SkipReason:
        report = services.use(RecoverStuckWork).execute(
            RecoverCommand(
                lease=timedelta(seconds=settings.job_lease_s),
                heartbeat_timeout=timedelta(seconds=settings.job_heartbeat_timeout_s),
                dead_worker_ends_run=settings.triage_executor == "in_process",
                ended_runs=batches_of_ended_runs(context.instance, triage_job.name),
            )
        )
        if report.jobs_recovered or report.batches_finished:
            context.log.warning(
                f"recovered {report.jobs_recovered} job(s), finished {report.batches_finished} batch(es)"
            )
        return SkipReason(
            f"recovered {report.jobs_recovered} job(s) and finished {report.batches_finished} batch(es) "
            f"at {datetime.now(UTC).isoformat(timespec='seconds')}"
        )

    return [queued_batches_sensor, backlog_sensor, stuck_jobs_sensor]
