"""Batches whose Dagster run has ended without finishing them, as the recovery sensor tells the recovery.

A run is FAILURE when a step fails for good, or when Dagster's run monitoring finds its run worker dead (with
a launcher that can tell, such as the Helm chart's K8sRunLauncher; the local DefaultRunLauncher cannot); a run
can also be CANCELED. Its RUNNING jobs then have nobody to record them, and its batch nobody to close it: the
recovery fails those jobs and closes the batch at once (`RecoverCommand.ended_runs`), so they are retried by
the next batch within a recovery interval. A batch with another run queued or in progress is left to it.
"""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

BATCH_TAG = "triage/batch_id"
"""The run tag naming the batch a triage run processes (set at launch, or by `plan_batch` on a batch it made)."""
# Runs that ended longer ago than this were dealt with by earlier ticks.
LOOK_BACK = timedelta(hours=1)
_ENDED = [DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
_ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def batches_of_ended_runs(instance: DagsterInstance, job_name: str, limit: int = 100) -> frozenset[UUID]:
    """Batches of `job_name` runs that failed or were canceled lately and have no run queued or in progress."""
    ended = instance.get_runs(
        filters=RunsFilter(job_name=job_name, statuses=_ENDED, updated_after=datetime.now(UTC) - LOOK_BACK),
        limit=limit,
    )
    batches: set[UUID] = set()
    for run in ended:
        raw = run.tags.get(BATCH_TAG)
        try:
            batch_id = UUID(raw) if raw else None
        except ValueError:
            continue
        if batch_id is None:
            continue
        active = instance.get_runs(filters=RunsFilter(tags={BATCH_TAG: str(batch_id)}, statuses=_ACTIVE), limit=1)
        if not active:
            batches.add(batch_id)
    return frozenset(batches)
