"""Security settings are validated at start, and a configuration error never repeats a secret."""

import pytest

from triage_pipeline.infrastructure.settings import Settings, SettingsError, load_settings

SECRET = "s3cr3t-pa55word"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADMIN_API_KEY", "too-short"),
        ("ADMIN_API_KEY", " padded-admin-key-0123456789abcdef "),
        ("AUTH_ENABLED", "perhaps"),
    ],
)
def test_bad_auth_setting_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", f"mysql://user:{SECRET}@db/triage"),
        ("DATABASE_URL", f"postgresql://user:{SECRET}@db:notaport/triage"),
        ("ADMIN_API_KEY", SECRET),
    ],
)
def test_configuration_error_does_not_repeat_a_secret_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert variable in str(error.value) and SECRET not in str(error.value)
    assert "\n" not in str(error.value)


def test_admin_key_is_a_secret_that_repr_and_dumps_hide() -> None:
    settings = Settings(_env_file=None, admin_api_key="admin-key-0123456789abcdefghij")  # type: ignore[call-arg]
    assert "admin-key-0123" not in repr(settings) and "admin-key-0123" not in settings.model_dump_json()
    assert settings.admin_api_key is not None
    assert settings.admin_api_key.get_secret_value() == "admin-key-0123456789abcdefghij"


def test_empty_admin_key_means_none_and_auth_defaults_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", "")
    monkeypatch.delenv("AUTH_ENABLED", raising=False)
    settings = load_settings()
    assert settings.admin_api_key is None and settings.auth_enabled is True


def test_job_lease_shorter_than_a_bounded_llm_call_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_READ_TIMEOUT_S", "60")
    monkeypatch.setenv("LLM_CONNECT_TIMEOUT_S", "5")
    monkeypatch.setenv("JOB_LEASE_S", "120")
    with pytest.raises(SettingsError, match=r"JOB_LEASE_S: .*130 s"):
        load_settings()
    monkeypatch.setenv("JOB_LEASE_S", "131")
    assert load_settings().job_lease_s == 131
