"""Fixtures of the integration tests: use cases wired to the real PostgreSQL and the fake Ollama over HTTP."""

from collections.abc import Iterator

import pytest

from tests.support.fake_ollama import FakeOllama
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import Settings


@pytest.fixture
def container(database_url: str, clean_db: object, fake_ollama: FakeOllama) -> Iterator[Container]:
    """A container on the clean test database whose LLM is the fake Ollama (model `fake-model`)."""
    llm = OllamaClient(base_url=fake_ollama.url, model="fake-model", read_timeout_s=2.0)
    built = Container(Settings(), database_url=database_url, llm=llm)
    yield built
    built.close()
