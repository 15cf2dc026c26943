"""LLM_BASE_URL as a host list: one URL or several, each with an optional `#N`; a bad entry is named."""

import pytest

from triage_pipeline.infrastructure.llm.host_spec import (
    HostSpecError,
    LlmHostSpec,
    normalise_llm_hosts,
    parse_llm_hosts,
)
from triage_pipeline.infrastructure.settings import Settings, SettingsError, load_settings


def test_a_list_gives_each_host_its_concurrency_or_the_default() -> None:
    hosts = parse_llm_hosts("http://gpu-a:11434#8, http://gpu-b:11434/ ,https://gpu-c/ollama#4", default_concurrency=16)

    assert hosts == [
        LlmHostSpec("http://gpu-a:11434", 8),
        LlmHostSpec("http://gpu-b:11434", 16),
        LlmHostSpec("https://gpu-c/ollama", 4),
    ]


def test_the_canonical_form_keeps_only_the_concurrencies_given() -> None:
    assert (
        normalise_llm_hosts(" http://gpu-a:11434/#8 ,http://gpu-b:11434") == "http://gpu-a:11434#8,http://gpu-b:11434"
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("ftp://gpu-a:11434", "must start with http:// or https://"),
        ("gpu-a:11434", "must start with http:// or https://"),
        ("http://gpu-a:11434,,http://gpu-b:11434", "entry 2 is empty"),
        ("http://gpu-a:11434,", "entry 2 is empty"),
        ("http://gpu-a:11434#0", "got '0'"),
        ("http://gpu-a:11434#abc", "got 'abc'"),
        ("http://gpu-a:11434#257", "got '257'"),
        ("http://gpu-a:11434#", "got ''"),
        ("http://gpu-a:11434,http://GPU-A:11434/#4", "host http://GPU-A:11434 is listed twice (entries 1 and 2)"),
        ("http://gpu-a,http://gpu-a:80", "listed twice"),
        ("http://", "has no host name"),
        ("http://gpu-a:99999", "not a valid URL"),
        ("http://gpu-a:11434?x=1", "must be a base URL"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(text: str, named: str) -> None:
    with pytest.raises(HostSpecError) as caught:
        parse_llm_hosts(text, default_concurrency=16)
    assert named in str(caught.value)


def test_the_same_host_name_on_other_ports_or_schemes_is_not_a_duplicate() -> None:
    hosts = parse_llm_hosts("http://gpu:11434,http://gpu:11435,https://gpu:11434", default_concurrency=2)
    assert [host.url for host in hosts] == ["http://gpu:11434", "http://gpu:11435", "https://gpu:11434"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("http://gpu-a:11434#0", "the concurrency after # must be a whole number from 1 to 256, got '0'"),
        ("http://gpu-a:11434#abc", "got 'abc'"),
        ("http://gpu-a:11434,,http://gpu-b:11434", "entry 2 is empty"),
        ("http://gpu-a:11434,ftp://gpu-b", "entry 2 ('ftp://gpu-b') must start with http:// or https://"),
        ("http://gpu-a:11434,http://gpu-a:11434", "listed twice"),
    ],
)
def test_settings_refuse_a_bad_host_list_in_one_line_naming_llm_base_url_and_the_entry(
    monkeypatch: pytest.MonkeyPatch, value: str, named: str
) -> None:
    monkeypatch.setenv("LLM_BASE_URL", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("invalid configuration: LLM_BASE_URL: ")
    assert named in message
    assert "\n" not in message


def test_settings_hosts_without_a_concurrency_take_llm_concurrency() -> None:
    settings = Settings(llm_base_url="http://gpu-a:11434#8,http://gpu-b:11434", llm_concurrency=12)

    assert settings.llm_hosts() == [LlmHostSpec("http://gpu-a:11434", 8), LlmHostSpec("http://gpu-b:11434", 12)]
    assert settings.effective_llm_base_url() == "http://gpu-a:11434#8,http://gpu-b:11434"


def test_a_single_url_keeps_working_as_one_host() -> None:
    settings = Settings(llm_base_url="http://localhost:11434/", llm_concurrency=16)

    assert settings.effective_llm_base_url() == "http://localhost:11434"
    assert settings.llm_hosts() == [LlmHostSpec("http://localhost:11434", 16)]


def test_no_llm_base_url_means_the_offline_server_as_the_one_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    settings = Settings(_env_file=None, offline_llm_port=11999, llm_concurrency=1)  # type: ignore[call-arg]

    assert settings.llm_hosts() == [LlmHostSpec("http://127.0.0.1:11999", 1)]
