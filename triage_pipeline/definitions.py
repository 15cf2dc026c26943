"""The one Dagster `Definitions` of the project (the code location workspace.yaml loads).

Read this file as the table of contents of the Dagster driver: each group's assets, jobs, schedules
and sensors are declared once under `defs/`; the settings are read here, once, for what Dagster needs
when it loads the code (sensor intervals, the cron); everything else reads them through the resource.
"""

import warnings

from dagster import BetaWarning, Definitions, colored_console_logger

from triage_pipeline.defs.io_manager import PostgresOutputsIOManager
from triage_pipeline.defs.quality.prompt_evaluation import prompt_evaluation, prompt_evaluation_job
from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
from triage_pipeline.defs.triage.executors import triage_executor
from triage_pipeline.defs.triage.job import triage_job
from triage_pipeline.defs.triage.llm_hosts import llm_hosts, llm_hosts_reachable
from triage_pipeline.defs.triage.logs_asset import (
    last_batch_failure_rate,
    last_batch_review_share,
    no_job_running_past_lease,
    triage_health_checks,
    triage_health_checks_schedule,
    triage_job_logs,
)
from triage_pipeline.defs.triage.schedules import build_triage_schedule
from triage_pipeline.defs.triage.sensors import build_sensors
from triage_pipeline.defs.webhooks.sensors import build_webhook_sensor, webhook_outbox
from triage_pipeline.infrastructure.settings import Settings, load_settings


def build_definitions(settings: Settings) -> Definitions:
    """Jobs, assets, checks, schedules, sensors and resources, wired from the settings."""
    return Definitions(
        assets=[triage_job_logs, prompt_evaluation, webhook_outbox, llm_hosts],
        asset_checks=[no_job_running_past_lease, last_batch_failure_rate, last_batch_review_share, llm_hosts_reachable],
        jobs=[triage_job, triage_health_checks, prompt_evaluation_job],
        # The triage job's executor (the other jobs name their own): TRIAGE_EXECUTOR, README "Scaling out".
        executor=triage_executor(settings),
        schedules=[build_triage_schedule(settings), triage_health_checks_schedule],
        sensors=[*build_sensors(settings), build_webhook_sensor(settings)],
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
            ),
            # Steps on other machines (Celery workers, Kubernetes jobs) pass their outputs through PostgreSQL.
            **({"io_manager": PostgresOutputsIOManager()} if settings.triage_executor in ("celery", "k8s") else {}),
        },
    )


# Dagster's own sensor code passes its beta `owners` parameter (as None) when it binds resources, and
# warns about it at every load of the code location: nothing a user can act on.
warnings.filterwarnings("ignore", message="Parameter `owners`", category=BetaWarning)

defs = build_definitions(load_settings())
