"""The triage job (batch -> fan-out -> triage -> finish) and the run that processes one batch."""

from dagster import RunRequest, job

from triage_pipeline.defs.triage.ended_runs import BATCH_TAG
from triage_pipeline.defs.triage.ops import finish_batch, plan_batch, triage_chunk
from triage_pipeline.domain.batch import TriageJobBatch
from triage_pipeline.infrastructure.settings import Settings


# No executor of its own: it runs on the Definitions' executor, the one TRIAGE_EXECUTOR names
# (`executors.triage_executor`; in process by default, where the parallelism is the bounded pool of LLM
# calls inside each chunk).
@job(tags={"app": "ticket-triage"})
def triage_job() -> None:
    """Triage one batch: plan it, triage its chunks in parallel, finish it and report its logs."""
    batch, chunks = plan_batch()
    counts = chunks.map(triage_chunk)
    finish_batch(batch, counts.collect())


def run_request_for(batch: TriageJobBatch, settings: Settings) -> RunRequest:
    """The run of `triage_job` for this batch; the batch id is the run key, so no launcher runs it twice."""
    return RunRequest(
        run_key=str(batch.id),
        run_config={
            "ops": {
                op_name: {
                    "config": {
                        "batch_id": str(batch.id),
                        "jobs_per_chunk": settings.jobs_per_chunk,
                        "workers": settings.triage_workers,
                        "llm_concurrency": settings.llm_concurrency,
                    }
                }
                for op_name in ("plan_batch", "triage_chunk")
            }
        },
        tags={BATCH_TAG: str(batch.id), "triage/origin": batch.origin.value},
    )
