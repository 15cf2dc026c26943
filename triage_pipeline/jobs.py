"""Dagster jobs: the triage job (batch -> fan-out -> triage -> finish) and the health-check job."""

from dagster import AssetSelection, in_process_executor, job

from triage_pipeline.assets import triage_job_logs
from triage_pipeline.ops import finish_batch, plan_batch, triage_chunk


# In process: a step per chunk costs far less than a process per step on small machines; the
# parallelism is the bounded pool of LLM calls inside each chunk (see the README's benchmark).
@job(executor_def=in_process_executor, tags={"app": "ticket-triage"})
def triage_job() -> None:
    """Triage one batch: plan it, triage its chunks in parallel, finish it and report its logs."""
    batch, chunks = plan_batch()
    counts = chunks.map(triage_chunk)
    finish_batch(batch, counts.collect())


triage_health_checks_selection = AssetSelection.checks_for_assets(triage_job_logs)
