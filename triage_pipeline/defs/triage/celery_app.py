"""The Celery app of `triage worker`: it runs the triage job's steps that Dagster's Celery executor sends.

It is built from the same settings as the executor (`executors.celery_config`), so the broker, the result
backend, late acknowledgement and the visibility timeout agree on both sides. `celery -A
triage_pipeline.defs.triage.celery_app worker -Q dagster` works as well as `triage worker`.
"""

from celery import Celery
from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from triage_pipeline.defs.triage.executors import celery_config
from triage_pipeline.infrastructure.settings import Settings, load_settings


def build_app(settings: Settings) -> Celery:
    """A Celery app on CELERY_BROKER_URL with the task that executes one Dagster step."""
    if not settings.celery_broker_url:
        raise ValueError("CELERY_BROKER_URL is not set: a worker needs the broker the Celery executor sends to")
    celery_app: Celery = make_app(
        {
            "broker": settings.celery_broker_url,
            "backend": settings.celery_backend(),
            "include": [],
            "config_source": dict_wrapper(dict(DEFAULT_CONFIG, **celery_config(settings))),
        }
    )
    create_task(celery_app)
    return celery_app


app = build_app(load_settings())
