"""`triage worker`: a Celery worker that runs the triage job's chunk steps (TRIAGE_EXECUTOR=celery).

Start as many as the LLM hosts can keep busy, on any machine that reaches the broker, the database and the
LLM hosts (README "Scaling out"). Each worker process runs one step at a time (`--pool solo`: a chunk's
parallelism is its own pool of LLM calls); a worker killed mid-chunk loses nothing: the chunk is acknowledged
only once it has run, so the broker hands it to another worker after CELERY_VISIBILITY_TIMEOUT_S, and the
chunk, run again, takes over the dead worker's jobs. SIGTERM finishes the running chunk first.

The worker reads the same settings as the rest of the service. With no DATABASE_URL / DB_* it uses the
embedded server of `triage run` on this machine, and exports the DB_* variables Dagster's instance
(dagster.yaml) reads, as `triage run` does for its run workers.
"""

import argparse
import os
import socket
from pathlib import Path

from triage_pipeline.defs.triage.executors import CELERY_QUEUE
from triage_pipeline.infrastructure.database import resolve_database_url
from triage_pipeline.infrastructure.settings import PROJECT_ROOT, Settings
from triage_pipeline.infrastructure.url_parts import database_env


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run a Celery worker in the foreground until Ctrl-C / SIGTERM (it finishes its step first)."""
    if not settings.celery_broker_url:
        raise ValueError("CELERY_BROKER_URL is not set: a worker needs the broker the Celery executor sends to")
    os.environ.update(database_env(resolve_database_url(settings), settings.dagster_db_name))
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    # The module's app (built on import from the same settings): a second app would register the
    # step task twice.
    from triage_pipeline.defs.triage.celery_app import app

    name = args.name or f"triage-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            f"--queues={CELERY_QUEUE}",
            "--prefetch-multiplier=1",
            f"--hostname={name}",
            f"--loglevel={args.loglevel or settings.log_level}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    worker = sub.add_parser(
        "worker", help="run a Celery worker for the triage job's chunks (TRIAGE_EXECUTOR=celery, CELERY_BROKER_URL)"
    )
    worker.add_argument("--name", help="the worker's node name (default triage-PID@HOST)")
    worker.add_argument("--loglevel", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default LOG_LEVEL")
    worker.set_defaults(handler=cmd_worker)
