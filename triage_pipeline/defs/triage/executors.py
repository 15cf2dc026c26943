"""Where the triage job's steps run, chosen by TRIAGE_EXECUTOR (README "Scaling out").

- `in_process`: every step in the run worker's own process, one after another (the default: cheapest
  on a small machine, where the LLM calls inside a chunk are the parallelism).
- `multiprocess`: one process per step on this machine, TRIAGE_WORKERS at once.
- `celery`: each step is a Celery task on the broker CELERY_BROKER_URL, run by `triage worker`
  processes on any machine that reaches the broker and the database.
- `k8s`: each step in its own Kubernetes job (Dagster's `k8s_job_executor`, under the Helm chart's
  `K8sRunLauncher`, whose image, config maps and secrets the step jobs inherit).

Dagster's step retries are on for the parallel executors: a chunk whose step failed is run again and
skips the jobs already ended (see `ops.triage_chunk`).
"""

from typing import Any

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from triage_pipeline.infrastructure.settings import Settings

# The Celery queue the triage steps go to and `triage worker` listens on (dagster-celery's default).
CELERY_QUEUE = "dagster"


def triage_executor(settings: Settings) -> ExecutorDefinition:
    """The executor TRIAGE_EXECUTOR names, configured for TRIAGE_WORKERS."""
    kind = settings.triage_executor
    if kind == "in_process":
        return in_process_executor
    if kind == "multiprocess":
        return multiprocess_executor.configured(
            {"max_concurrent": settings.triage_workers, "retries": {"enabled": {}}}, name="multiprocess"
        )
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {
                "broker": settings.celery_broker_url,
                "backend": settings.celery_backend(),
                "config_source": celery_config(settings),
                "retries": {"enabled": {}},
            },
            name="celery",
        )
    from dagster_k8s import k8s_job_executor

    config: dict[str, Any] = {"max_concurrent": settings.triage_workers, "retries": {"enabled": {}}}
    if settings.k8s_job_image:
        config["image"] = settings.k8s_job_image
    return k8s_job_executor.configured(config, name="k8s")


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings shared by the executor (which submits) and `triage worker` (which runs).

    A step's task is acknowledged only once it has run (`task_acks_late`): a worker killed mid-chunk (SIGKILL,
    out of memory, its machine lost) loses no chunk; the broker hands the task to another worker after its
    visibility timeout. (`task_reject_on_worker_lost` gives it back at once when a prefork child dies under a
    live worker; `triage worker` runs the solo pool, where the worker is the process that dies.) One task at a
    time per worker process (`prefetch 1`): a chunk waits in the queue for a free worker instead of behind a
    busy one.
    """
    visibility = settings.celery_visibility_timeout_s
    transport = {
        "visibility_timeout": visibility,
        # Redis: how often a worker looks for tasks held past the visibility timeout (kombu's default sweep
        # is 10 s x every 10th look = 100 s, which would add up to 100 s to a dead worker's hand-over).
        "unacked_restore_interval": max(1, min(10, visibility // 4)),
        "unacked_restore_throttle": 1,
    }
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "broker_connection_retry_on_startup": True,
    }
