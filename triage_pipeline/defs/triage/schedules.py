"""The schedule that triages eligible work on a clock, whether or not anybody queued it."""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.defs.triage.job import run_request_for, triage_job
from triage_pipeline.defs.triage.llm_hosts import skip_unless_an_llm_host_answers
from triage_pipeline.domain.batch import BatchOrigin
from triage_pipeline.infrastructure.settings import Settings


def build_triage_schedule(settings: Settings) -> ScheduleDefinition:
    """`triage_schedule` on TRIAGE_SCHEDULE_CRON."""

    @schedule(
        job=triage_job,
        cron_schedule=settings.triage_schedule_cron,
        default_status=DefaultScheduleStatus.RUNNING,
        description=(
            "Creates a batch of eligible jobs (new ones and FAILED ones with attempts left); skips while no LLM "
            "host answers."
        ),
    )
    def triage_schedule(context: ScheduleEvaluationContext, services: TriageServices) -> RunRequest | SkipReason:
        if (no_host := skip_unless_an_llm_host_answers(services)) is not None:
            return no_host
        created = services.use(CreateBatch).execute(
            CreateBatchCommand(max_items=settings.batch_max_items, origin=BatchOrigin.SCHEDULE)
        )
        if created is None:
            return SkipReason("no eligible triage job")
        return run_request_for(created.batch, settings)

    return triage_schedule
