"""The composition root: the one place where adapters are built and use cases are wired.

Every driver (the API, the Dagster resources, the CLI) asks for a use case by its class:
`container.use(CreateTicket)`. The container builds it once from its constructor's parameters, by
name: `uow`, `clock`, `llm` and the few settings-derived values below, or another use case by its
annotated class (`TriageJobs` takes a `TriageOneJob`). A new use case needs no wiring code at all.
"""

import inspect
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any, cast, get_type_hints

from sqlalchemy import Engine, text

from triage_pipeline.application.webhooks.options import WebhookOptions
from triage_pipeline.domain.ports import Clock, LlmGateway, LlmHostsHealth
from triage_pipeline.domain.webhook_ports import SecretBox
from triage_pipeline.infrastructure.clock import SystemClock
from triage_pipeline.infrastructure.database import resolve_database_url
from triage_pipeline.infrastructure.db.engine import make_engine
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory
from triage_pipeline.infrastructure.llm.answer_model import answer_json_schema
from triage_pipeline.infrastructure.llm.host_pool import LlmHostPool
from triage_pipeline.infrastructure.llm.host_probe import LlmHostsProbe
from triage_pipeline.infrastructure.llm.host_spec import LlmHostSpec
from triage_pipeline.infrastructure.settings import Settings
from triage_pipeline.infrastructure.webhooks.outbox_listener import PgOutboxListener
from triage_pipeline.infrastructure.webhooks.secret_box import FernetSecretBox
from triage_pipeline.infrastructure.webhooks.sender import HttpxWebhookSender
from triage_pipeline.infrastructure.webhooks.target_policy import ResolvingTargetPolicy


class WiringError(TypeError):
    """A use case asks for a constructor parameter the container does not provide."""


class Container:
    """Every adapter and use case of the service, wired from one Settings object."""

    def __init__(
        self,
        settings: Settings,
        *,
        database_url: str | None = None,
        llm: LlmGateway | None = None,
        llm_hosts: Sequence[LlmHostSpec] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`llm_hosts`: the LLM hosts the health views probe and the default `llm` spreads calls over, when
        not those of the settings (LLM_BASE_URL)."""
        self.settings = settings
        self._database_url = database_url
        self._llm = llm
        self._llm_hosts = list(llm_hosts) if llm_hosts is not None else None
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._engine: Engine | None = None
        self._use_cases: dict[type[Any], object] = {}

    @cached_property
    def database_url(self) -> str:
        """The database in use (starting the embedded server when none is configured)."""
        return self._database_url or resolve_database_url(self.settings)

    @property
    def engine(self) -> Engine:
        """The process's connection pool (built once, even when first used by two threads at once)."""
        with self._lock:
            if self._engine is None:
                self._engine = make_engine(self.database_url)
            return self._engine

    @cached_property
    def uow(self) -> SqlUnitOfWorkFactory:
        return SqlUnitOfWorkFactory(self.engine)

    @cached_property
    def llm_hosts(self) -> list[LlmHostSpec]:
        """The LLM hosts and their concurrency (LLM_BASE_URL unless given)."""
        return self._llm_hosts if self._llm_hosts is not None else self.settings.llm_hosts()

    @cached_property
    def llm(self) -> LlmGateway:
        if self._llm is not None:
            return self._llm
        return LlmHostPool(
            self.llm_hosts,
            self.settings.llm_model,
            connect_timeout_s=self.settings.llm_connect_timeout_s,
            read_timeout_s=self.settings.llm_read_timeout_s,
        )

    @cached_property
    def llm_hosts_probe(self) -> LlmHostsProbe:
        """Reachability of each LLM host, for health views (asks the hosts; a short cache)."""
        return LlmHostsProbe(self.llm_hosts)

    @property
    def llm_hosts_health(self) -> LlmHostsHealth:
        """The probe of the LLM hosts as the application's port (`CheckLlmHosts`)."""
        return self.llm_hosts_probe

    @cached_property
    def _dependencies(self) -> dict[str, Callable[[], object]]:
        """Constructor parameters by name; each built on first use (the database only when asked for)."""
        admin = self.settings.admin_api_key
        return {
            "uow": lambda: self.uow,
            "clock": lambda: self.clock,
            "llm": lambda: self.llm,
            "llm_hosts_health": lambda: self.llm_hosts_health,
            "schema_for": lambda: answer_json_schema,
            "admin_token": lambda: admin.get_secret_value() if admin is not None else None,
            "secret_box": lambda: self.secret_box,
            "target_policy": lambda: self.target_policy,
            "webhook_sender": lambda: self.webhook_sender,
            "webhook_options": lambda: self.webhook_options,
        }

    @cached_property
    def webhook_options(self) -> WebhookOptions:
        s = self.settings
        return WebhookOptions(
            timeout=timedelta(seconds=s.webhook_timeout_s),
            concurrency=s.webhook_concurrency,
            disable_after_failures=s.webhook_disable_after_failures,
            disable_min_failing=timedelta(seconds=s.webhook_disable_min_failing_s),
            secret_grace=timedelta(seconds=s.webhook_secret_grace_s),
        )

    @cached_property
    def secret_box(self) -> SecretBox:
        key = self.settings.webhook_secrets_key
        return FernetSecretBox(key.get_secret_value() if key is not None else None)

    @cached_property
    def target_policy(self) -> ResolvingTargetPolicy:
        return ResolvingTargetPolicy(allow_private=self.settings.webhook_allow_private_targets)

    @cached_property
    def outbox_listener(self) -> PgOutboxListener:
        """For a long-running deliverer only (`triage webhooks deliver --watch`): it holds a connection."""
        return PgOutboxListener(self.database_url)

    @cached_property
    def webhook_sender(self) -> HttpxWebhookSender:
        return HttpxWebhookSender(
            self.target_policy, self.settings.webhook_timeout_s, max_connections=self.settings.webhook_concurrency
        )

    def use[U](self, use_case: type[U]) -> U:
        """The use case of this class, built on first use and shared afterwards (use cases hold no state)."""
        built = self._use_cases.get(use_case)
        if built is None:
            with self._lock:
                built = self._use_cases.get(use_case) or self._build(use_case)
                self._use_cases[use_case] = built
        return cast(U, built)

    def _build(self, use_case: type[Any]) -> object:
        hints = get_type_hints(use_case.__init__)
        arguments: dict[str, object] = {}
        for name, parameter in inspect.signature(use_case).parameters.items():
            provide = self._dependencies.get(name)
            annotation = hints.get(name)
            if provide is not None:
                arguments[name] = provide()
            elif isinstance(annotation, type) and callable(getattr(annotation, "execute", None)):
                arguments[name] = self.use(annotation)
            elif parameter.default is inspect.Parameter.empty:
                raise WiringError(f"{use_case.__name__} needs `{name}`, which the container does not provide")
        return use_case(**arguments)

    def ping_database(self) -> None:
        """Run `SELECT 1`; raises the driver's error when the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()

    def close(self) -> None:
        """Release the connection pool and the LLM, LLM probe and webhook clients."""
        if self._engine is not None:
            self._engine.dispose()
        for client in ("llm", "llm_hosts_probe", "webhook_sender", "outbox_listener"):
            close = getattr(self.__dict__.get(client), "close", None)
            if callable(close):
                close()
