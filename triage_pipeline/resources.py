"""Dagster resources: the database and the LLM, configured from the same settings as the API."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from triage_pipeline.infrastructure.container import Container
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import load_settings


class DatabaseResource(ConfigurableResource):  # type: ignore[type-arg]
    """PostgreSQL of the service; `url` empty means DATABASE_URL / DB_* / the embedded server."""

    url: str = ""


class LlmResource(ConfigurableResource):  # type: ignore[type-arg]
    """The Ollama-protocol LLM; empty values fall back to LLM_BASE_URL / LLM_MODEL."""

    base_url: str = ""
    model: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0


class TriageServices(ConfigurableResource):  # type: ignore[type-arg]
    """The application's use cases, wired on the database and LLM resources for one run or tick."""

    database: DatabaseResource
    llm: LlmResource
    _container: Container | None = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["TriageServices"]:
        """Build the container for the duration of the run (or tick) and release it afterwards."""
        settings = load_settings()
        client = OllamaClient(
            base_url=self.llm.base_url or settings.effective_llm_base_url(),
            model=self.llm.model or settings.llm_model,
            connect_timeout_s=self.llm.connect_timeout_s,
            read_timeout_s=self.llm.read_timeout_s,
        )
        container = Container(settings, database_url=self.database.url or None, llm=client)
        self._container = container
        try:
            yield self
        finally:
            container.close()
            self._container = None

    @property
    def container(self) -> Container:
        """The use cases; only valid while the resource is being used."""
        if self._container is None:
            raise RuntimeError("TriageServices used outside of a run or tick")
        return self._container
