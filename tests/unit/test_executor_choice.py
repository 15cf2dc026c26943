"""TRIAGE_EXECUTOR picks where the triage job's steps run; its settings are checked with one clear line."""

import pytest

from triage_pipeline.cli.main import main
from triage_pipeline.definitions import build_definitions
from triage_pipeline.defs.triage.executors import celery_config
from triage_pipeline.infrastructure.settings import Settings, SettingsError, load_settings

BROKER = "redis://127.0.0.1:6399/0"


@pytest.mark.parametrize("kind", ["in_process", "multiprocess", "celery", "k8s"])
def test_the_definitions_load_with_every_executor_and_only_the_triage_job_uses_it(kind: str) -> None:
    settings = Settings(triage_executor=kind, celery_broker_url=BROKER, triage_workers=4)
    definitions = build_definitions(settings)
    assert definitions.resolve_job_def("triage_job").executor_def.name == kind
    # The one-step jobs need no worker: they stay in process whatever the choice.
    assert definitions.resolve_job_def("triage_health_checks").executor_def.name == "in_process"
    assert definitions.resolve_job_def("prompt_evaluation_job").executor_def.name == "in_process"


def test_celery_acknowledges_late_and_sweeps_unacked_tasks_within_the_visibility_timeout() -> None:
    config = celery_config(Settings(celery_broker_url=BROKER, celery_visibility_timeout_s=40))
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    transport = config["broker_transport_options"]
    assert transport["visibility_timeout"] == 40
    assert transport["unacked_restore_interval"] * transport["unacked_restore_throttle"] <= 10


def test_the_celery_backend_defaults_to_the_broker() -> None:
    assert Settings(celery_broker_url=BROKER).celery_backend() == BROKER
    assert Settings(celery_broker_url=BROKER, celery_backend_url="redis://h:6379/1").celery_backend() == (
        "redis://h:6379/1"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRIAGE_EXECUTOR": "celery"}, "TRIAGE_EXECUTOR=celery needs CELERY_BROKER_URL"),
        ({"TRIAGE_EXECUTOR": "threads"}, "TRIAGE_EXECUTOR:"),
        ({"CELERY_BROKER_URL": "localhost:6379"}, "CELERY_BROKER_URL: must be a broker URL"),
        ({"TRIAGE_WORKERS": "0"}, "TRIAGE_WORKERS:"),
        ({"JOB_HEARTBEAT_TIMEOUT_S": "1"}, "JOB_HEARTBEAT_TIMEOUT_S:"),
    ],
)
def test_a_bad_scale_out_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()


def test_triage_worker_without_a_broker_is_one_line_and_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    assert main(["worker"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "triage: error: CELERY_BROKER_URL is not set: a worker needs the broker the Celery executor sends to"
    ]
