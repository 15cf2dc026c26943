"""Pytest fixtures of the test support fakes (imported by tests/conftest.py)."""

from collections.abc import Iterator

import pytest

from tests.support.fake_ollama import FakeOllama


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A fresh fake Ollama server on an ephemeral port, VALID answers, no latency; stopped after the test."""
    with FakeOllama() as server:
        yield server
