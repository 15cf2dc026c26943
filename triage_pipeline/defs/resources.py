"""Dagster resources: the service's use cases, on the database and the LLM of the same settings as the API."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.llm.host_pool import LlmHostPool
from triage_pipeline.infrastructure.llm.host_spec import parse_llm_hosts
from triage_pipeline.infrastructure.settings import Settings, load_settings

# Sensor and schedule ticks run every few seconds in the long-lived code server: they share one
# container per configuration (one connection pool) instead of building a container, an engine and
# a first connection per tick. A run builds its own and closes it when it ends.
_tick_containers: dict[tuple[str, str, str, float, float], Container] = {}
_tick_containers_lock = threading.Lock()


class DatabaseResource(ConfigurableResource):  # type: ignore[type-arg]
    """PostgreSQL of the service; `url` empty means DATABASE_URL / DB_* / the embedded server."""

    url: str = ""


class LlmResource(ConfigurableResource):  # type: ignore[type-arg]
    """The Ollama-protocol LLM; empty values fall back to LLM_BASE_URL / LLM_MODEL. `base_url` takes what
    LLM_BASE_URL takes: one URL or a host list (`http://gpu-a:11434#8,http://gpu-b:11434#4`)."""

    base_url: str = ""
    model: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0


class TriageServices(ConfigurableResource):  # type: ignore[type-arg]
    """The application's use cases, wired on the database and LLM resources for one run or tick."""

    database: DatabaseResource
    llm: LlmResource
    _container: Container | None = PrivateAttr(default=None)

    def _build_container(self, settings: Settings) -> Container:
        hosts = (
            parse_llm_hosts(self.llm.base_url, default_concurrency=settings.llm_concurrency)
            if self.llm.base_url
            else settings.llm_hosts()
        )
        pool = LlmHostPool(
            hosts,
            self.llm.model or settings.llm_model,
            connect_timeout_s=self.llm.connect_timeout_s,
            read_timeout_s=self.llm.read_timeout_s,
        )
        return Container(settings, database_url=self.database.url or None, llm=pool, llm_hosts=hosts)

    def _tick_container(self) -> Container:
        key = (
            self.database.url,
            self.llm.base_url,
            self.llm.model,
            self.llm.connect_timeout_s,
            self.llm.read_timeout_s,
        )
        with _tick_containers_lock:
            container = _tick_containers.get(key)
            if container is None:
                container = _tick_containers[key] = self._build_container(load_settings())
            return container

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["TriageServices"]:
        """The container for a run (closed when it ends), or the shared one of sensor and schedule ticks."""
        if context.run is None:
            self._container = self._tick_container()
            try:
                yield self
            finally:
                self._container = None
            return
        container = self._build_container(load_settings())
        self._container = container
        try:
            yield self
        finally:
            container.close()
            self._container = None

    @property
    def container(self) -> Container:
        """The composition root of this run or tick; only valid while the resource is being used."""
        if self._container is None:
            raise RuntimeError("TriageServices used outside of a run or tick")
        return self._container

    def use[U](self, use_case: type[U]) -> U:
        """A use case, wired as for the API and the CLI (see `triage_pipeline.bootstrap`)."""
        return self.container.use(use_case)

    @property
    def settings(self) -> Settings:
        """The settings this run or tick was wired with."""
        return self.container.settings
