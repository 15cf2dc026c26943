"""The composition root wires every use case by its class, once, without a database until one is used."""

import importlib
import inspect
import pkgutil

import pytest

import triage_pipeline.application as application
from tests.unit.fakes import FakeLlm
from triage_pipeline.application.api_keys import Authenticate
from triage_pipeline.bootstrap import Container, WiringError
from triage_pipeline.cli.supervisor import describe_llm_hosts
from triage_pipeline.infrastructure.llm.host_pool import LlmHostPool
from triage_pipeline.infrastructure.llm.host_spec import LlmHostSpec
from triage_pipeline.infrastructure.settings import Settings

UNREACHABLE_DB = "postgresql+psycopg://nobody@127.0.0.1:9/none"


def _use_case_classes() -> list[type]:
    """Every class of the application layer with an `execute` method (the use cases)."""
    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(application.__path__, application.__name__ + "."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and callable(getattr(value, "execute", None))
                and not name.startswith("_")
            ):
                found[f"{value.__module__}.{name}"] = value
    return list(found.values())


@pytest.mark.parametrize("use_case", _use_case_classes(), ids=lambda c: c.__name__)
def test_every_use_case_of_the_application_layer_is_wired_by_its_class(use_case: type) -> None:
    container = Container(Settings(), database_url=UNREACHABLE_DB, llm=FakeLlm())
    built = container.use(use_case)
    assert isinstance(built, use_case)
    assert container.use(use_case) is built  # built once, then shared


class Inner:
    def execute(self, command: object) -> None: ...


class Outer:
    def __init__(self, inner: Inner) -> None:
        self.inner = inner

    def execute(self, command: object) -> None: ...


def test_a_use_case_that_needs_another_gets_the_shared_one() -> None:
    container = Container(Settings(), database_url=UNREACHABLE_DB)
    assert container.use(Outer).inner is container.use(Inner)


def test_the_admin_key_setting_reaches_authenticate() -> None:
    container = Container(Settings(admin_api_key="an-admin-key-long-enough-0123"), database_url=UNREACHABLE_DB)
    assert vars(container.use(Authenticate))["_admin_token"] == "an-admin-key-long-enough-0123"


def test_a_constructor_parameter_nobody_provides_is_named_in_the_error() -> None:
    class NeedsAStranger:
        def __init__(self, stranger: int) -> None:
            self.stranger = stranger

        def execute(self, command: object) -> None: ...

    container = Container(Settings(), database_url=UNREACHABLE_DB)
    with pytest.raises(WiringError, match="NeedsAStranger needs `stranger`"):
        container.use(NeedsAStranger)


def test_the_default_llm_is_a_host_pool_over_llm_base_url() -> None:
    settings = Settings(llm_base_url="http://gpu-a:11434#8,http://gpu-b:11434", llm_concurrency=4, llm_model="m:1")
    container = Container(settings, database_url=UNREACHABLE_DB)
    try:
        llm = container.llm
        assert isinstance(llm, LlmHostPool)
        assert llm.model == "m:1"
        assert llm.hosts == [LlmHostSpec("http://gpu-a:11434", 8), LlmHostSpec("http://gpu-b:11434", 4)]
        assert container.llm_hosts == llm.hosts
    finally:
        container.close()
    assert describe_llm_hosts(settings) == "2 hosts: http://gpu-a:11434 (8 at once), http://gpu-b:11434 (4 at once)"
