"""Is each LLM host reachable? `GET /api/version` on every host, for health views.

The breaker of `LlmHostPool` knows only what this process's own calls met, which says nothing in the API
process (it makes no LLM call) or in a Dagster check's run: health views ask the hosts themselves. The
hosts are asked at once (one thread each), each within `HOST_PROBE_TIMEOUT_S`, and the answer is kept for
`HOST_PROBE_CACHE_S`, so a readiness probe every second asks each host at most once per cache period and
answers within about the timeout even when a host swallows connections.
"""

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Self

import httpx

from triage_pipeline.domain.ports import LlmHostReach
from triage_pipeline.infrastructure.llm.host_spec import LlmHostSpec

HOST_PROBE_TIMEOUT_S = 1.0
"""Connect and read bound of one probe: within a load balancer's usual readiness timeout."""
HOST_PROBE_CACHE_S = 5.0
"""How long a probe's answer is reused."""
_ERROR_MAX_CHARS = 200


class Reachability(StrEnum):
    UP = "up"
    """`/api/version` answered with a version."""
    DOWN = "down"
    """No connection, no answer in time, or an answer that is not Ollama's."""


@dataclass(frozen=True, slots=True)
class HostHealth:
    """What one probe of one host found."""

    url: str
    concurrency: int
    state: Reachability
    version: str | None
    """The Ollama version the host reported (UP only)."""
    error: str | None
    """Why it is DOWN."""
    latency_ms: int
    checked_at: datetime


class LlmHostsProbe:
    """Probes the hosts, answers from a short cache; thread-safe (concurrent callers share one probe)."""

    def __init__(
        self,
        hosts: Sequence[LlmHostSpec],
        *,
        timeout_s: float = HOST_PROBE_TIMEOUT_S,
        cache_s: float = HOST_PROBE_CACHE_S,
    ) -> None:
        self._hosts = list(hosts)
        self._cache_s = cache_s
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max(1, len(self._hosts)), max_keepalive_connections=0),
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        self._lock = threading.Lock()
        self._checked: tuple[float, list[HostHealth]] | None = None

    def check(self) -> list[HostHealth]:
        """Each host's reachability, in the order configured (from the cache when fresh enough)."""
        with self._lock:
            if self._checked is not None and time.monotonic() - self._checked[0] < self._cache_s:
                return self._checked[1]
            if len(self._hosts) == 1:
                found = [self._probe(self._hosts[0])]
            else:
                with ThreadPoolExecutor(max_workers=len(self._hosts), thread_name_prefix="llm-probe") as pool:
                    found = list(pool.map(self._probe, self._hosts))
            self._checked = (time.monotonic(), found)
            return found

    def reachability(self) -> list[LlmHostReach]:
        """`check()` as the application's `LlmHostsHealth` port sees it."""
        return [LlmHostReach(host.url, host.state is Reachability.UP, host.error) for host in self.check()]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _probe(self, host: LlmHostSpec) -> HostHealth:
        started = time.perf_counter()
        version: str | None = None
        error: str | None = None
        try:
            response = self._http.get(f"{host.url}/api/version")
            if response.status_code != 200:
                error = f"HTTP {response.status_code} from /api/version"
            else:
                body = response.json()
                found = body.get("version") if isinstance(body, dict) else None
                if isinstance(found, str):
                    version = found
                else:
                    error = "/api/version answered without a version: not an Ollama server?"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc or 'no detail'}"[:_ERROR_MAX_CHARS]
        except ValueError:
            error = "/api/version answered with a body that is not JSON: not an Ollama server?"
        return HostHealth(
            url=host.url,
            concurrency=host.concurrency,
            state=Reachability.UP if version is not None else Reachability.DOWN,
            version=version,
            error=error,
            latency_ms=round((time.perf_counter() - started) * 1000),
            checked_at=datetime.now(UTC),
        )
