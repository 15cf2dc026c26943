"""The one Dagster `Definitions` of the project (loaded by workspace.yaml)."""

import warnings

from dagster import BetaWarning, Definitions, ScheduleDefinition, colored_console_logger, define_asset_job

from triage_pipeline.assets import last_batch_failure_rate, no_job_running_past_lease, triage_job_logs
from triage_pipeline.automation import build_automation
from triage_pipeline.evaluation_asset import prompt_evaluation
from triage_pipeline.infrastructure.settings import Settings, load_settings
from triage_pipeline.jobs import triage_health_checks_selection, triage_job
from triage_pipeline.resources import DatabaseResource, LlmResource, TriageServices


def build_definitions(settings: Settings) -> Definitions:
    """Jobs, assets, checks, schedules, sensors and resources, wired from the settings."""
    health_checks_job = define_asset_job("triage_health_checks", selection=triage_health_checks_selection)
    evaluation_job = define_asset_job("prompt_evaluation_job", selection=[prompt_evaluation])
    schedules, sensors = build_automation(settings)
    health_schedule = ScheduleDefinition(
        name="triage_health_checks_schedule", job=health_checks_job, cron_schedule="*/15 * * * *"
    )
    return Definitions(
        assets=[triage_job_logs, prompt_evaluation],
        asset_checks=[no_job_running_past_lease, last_batch_failure_rate],
        jobs=[triage_job, health_checks_job, evaluation_job],
        schedules=[*schedules, health_schedule],
        sensors=sensors,
        # A run's console output reaches the terminal of `triage run`: only its warnings and errors do.
        # Every event, INFO and DEBUG included, is still in the run's event log in the UI. (The few
        # events a run worker logs before the job's loggers exist are filtered by `triage run`.)
        loggers={"console": colored_console_logger.configured({"log_level": "WARNING", "name": "dagster"})},
        resources={
            "services": TriageServices(
                database=DatabaseResource(),
                llm=LlmResource(
                    connect_timeout_s=settings.llm_connect_timeout_s, read_timeout_s=settings.llm_read_timeout_s
                ),
            )
        },
    )


# Dagster's own sensor code passes its beta `owners` parameter (as None) when it binds resources, and
# warns about it at every load of the code location: nothing a user can act on.
warnings.filterwarnings("ignore", message="Parameter `owners`", category=BetaWarning)

defs = build_definitions(load_settings())
