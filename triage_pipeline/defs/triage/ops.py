"""Ops of the triage job: a thin driver of the application use cases (no SQL, no triage rule here)."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

from dagster import (
    AssetMaterialization,
    Backoff,
    Config,
    DynamicOut,
    DynamicOutput,
    OpExecutionContext,
    Out,
    Output,
    RetryPolicy,
    op,
)
from pydantic import Field

from triage_pipeline.application.batches import (
    BatchStatusQuery,
    CreateBatch,
    CreateBatchCommand,
    FinishBatch,
    FinishBatchCommand,
    GetBatchProgress,
    ListBatchItems,
)
from triage_pipeline.application.log_queries import BatchLogsQuery, GetBatchLogs
from triage_pipeline.application.triage import TriageJobs, TriageJobsCommand, TriageOutcome, WorkerLiveness
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.defs.triage.ended_runs import BATCH_TAG
from triage_pipeline.defs.triage.log_report import report_metadata
from triage_pipeline.domain.batch import BatchOrigin
from triage_pipeline.domain.chunking import split_into_chunks
from triage_pipeline.domain.statuses import BatchStatus

TRIAGE_LOGS_ASSET = "triage_job_logs"


class TriageRunConfig(Config):
    """How a run picks and splits its work."""

    batch_id: str | None = Field(
        default=None, description="Process this batch (queued by the API); empty: create one from eligible jobs."
    )
    max_items: int = Field(default=1000, ge=1, le=10_000, description="Largest batch a run creates.")
    # With the in-process executor steps run one after another and each drains the LLM slots as it ends, so
    # fewer, larger chunks keep the slots busier; a retried chunk skips the jobs it already finished.
    jobs_per_chunk: int = Field(
        default=1000, ge=1, le=10_000, description="Most jobs per dynamic output (1 = one Dagster step per job)."
    )
    workers: int = Field(
        default=1, ge=1, le=256, description="Workers running chunks at once: the batch gets at least this many chunks."
    )
    llm_concurrency: int = Field(default=16, ge=1, le=256, description="LLM calls in flight inside one step.")


@op(
    out={"batch": Out(dict), "chunks": DynamicOut(dict, is_required=False)},
    description="Load the queued batch, or create one from eligible jobs, and split its jobs into chunks.",
)
def plan_batch(
    context: OpExecutionContext, config: TriageRunConfig, services: TriageServices
) -> Iterator[Output[dict[str, Any]] | DynamicOutput[dict[str, Any]]]:
    """Yield the batch summary, then one dynamic output per chunk of job ids."""
    if config.batch_id:
        batch_id = UUID(config.batch_id)
        progress = services.use(GetBatchProgress).execute(BatchStatusQuery(batch_id))
        if progress.batch.status is not BatchStatus.RUNNING:
            # A late or repeated run of a batch that recovery already closed: its jobs belong to others now.
            yield Output(
                {"batch_id": None, "total_items": 0},
                "batch",
                metadata={"status": "ALREADY_DONE", "batch_id": str(batch_id), "total_items": 0},
            )
            return
        job_ids = [str(item.job_id) for item in services.use(ListBatchItems).execute(batch_id)]
        origin = "queued"
    else:
        created = services.use(CreateBatch).execute(
            CreateBatchCommand(max_items=config.max_items, origin=BatchOrigin.RUN)
        )
        if created is None:
            yield Output(
                {"batch_id": None, "total_items": 0},
                "batch",
                metadata={"status": "EMPTY", "total_items": 0, "reason": "no eligible job"},
            )
            return
        batch_id = created.batch.id
        job_ids = [str(j) for j in created.job_ids]
        origin = "created"
    context.instance.add_run_tags(context.run_id, {BATCH_TAG: str(batch_id)})
    yield Output(
        {"batch_id": str(batch_id), "total_items": len(job_ids)},
        "batch",
        metadata={"status": "QUEUED", "batch_id": str(batch_id), "total_items": len(job_ids), "origin": origin},
    )
    for index, chunk in enumerate(split_into_chunks(job_ids, config.jobs_per_chunk, config.workers)):
        yield DynamicOutput(
            {"batch_id": str(batch_id), "job_ids": chunk}, output_name="chunks", mapping_key=f"chunk_{index:05d}"
        )


@op(
    retry_policy=RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL),
    description="Triage one chunk of jobs with bounded LLM concurrency; every attempt is logged in Postgres.",
)
def triage_chunk(
    context: OpExecutionContext, config: TriageRunConfig, services: TriageServices, chunk: dict[str, Any]
) -> dict[str, int]:
    """Counts of DONE / FAILED / SKIPPED jobs in the chunk (a retried step skips jobs already ended)."""
    settings = services.settings
    results = services.use(TriageJobs).execute(
        TriageJobsCommand(
            job_ids=[UUID(j) for j in chunk["job_ids"]],
            batch_id=UUID(chunk["batch_id"]),
            concurrency=config.llm_concurrency,
            # Heartbeats: a worker that dies mid-chunk has its jobs taken over within about a minute (by the
            # recovery sensor, or by this chunk run again on another worker), not after the whole lease.
            liveness=WorkerLiveness(
                heartbeat_timeout=timedelta(seconds=settings.job_heartbeat_timeout_s),
                lease=timedelta(seconds=settings.job_lease_s),
            ),
        )
    )
    counts = {outcome.value: 0 for outcome in TriageOutcome}
    for result in results:
        counts[result.outcome.value] += 1
    context.add_output_metadata(counts)
    return counts


@op(description="Finish the batch (RUNNING -> DONE) and materialize its attempt logs.")
def finish_batch(
    context: OpExecutionContext, services: TriageServices, batch: dict[str, Any], chunk_counts: list[dict[str, int]]
) -> Iterator[AssetMaterialization | Output[dict[str, Any]]]:
    """Close the batch, then record the report of its logs on the `triage_job_logs` asset."""
    batch_id = UUID(batch["batch_id"])
    finished = services.use(FinishBatch).execute(FinishBatchCommand(batch_id))
    report = services.use(GetBatchLogs).execute(BatchLogsQuery(batch_id))
    yield AssetMaterialization(
        asset_key=TRIAGE_LOGS_ASSET,
        description=f"Attempts of batch {batch_id}",
        metadata=report_metadata(report.batch, report.logs),
    )
    totals = {key: sum(c.get(key, 0) for c in chunk_counts) for key in ("DONE", "FAILED", "SKIPPED")}
    yield Output(
        {"batch_id": str(batch_id), "status": finished.status.value, **totals},
        metadata={"status": finished.status.value, **totals},
    )
