"""`LlmHostPool`: one `LlmGateway` over several Ollama hosts, with a cap and a circuit breaker per host.

Where a call goes: to the UP host with the fewest calls in flight relative to its concurrency (`#N` of
LLM_BASE_URL), so calls spread in proportion to the hosts' concurrency. A host's concurrency is a cap for
this process: when every UP host is full, the call waits for a free slot; no host ever has more calls in
flight from this process than its cap.

The breaker of a host: a call that never reached it (`ConnectFailed`: refused, DNS, connect timeout), timed
out waiting for its answer, or lost its connection after sending (`LlmTimeout`, `LlmUnavailable`) marks the
host DOWN for a cool-down (`COOL_DOWN_FIRST_S`, doubled after each failure with no answer in between, up to
`COOL_DOWN_MAX_S`). Once the cool-down is over, the next call that needs a host probes it first, in its own
thread and alone (PROBING): a `GET /api/version` bounded by the connect timeout, never a triage call, so a hung
host costs no job an attempt for the probe. A version in answer brings the host back UP and the call goes to
it; anything else (refused, no answer in time, an HTTP error, a body that is not Ollama's) keeps it DOWN for
twice as long, and the call moves on to another host as one that never reached a model. A host that answers
the probe but not the triage calls (a hung runner) goes DOWN again on the next call's timeout, for twice as
long as before: the cool-down starts again from `COOL_DOWN_FIRST_S` only once a call is answered. A failure of
a call sent before the host went down does not lengthen the cool-down (sixteen calls dropped by one crash are
one failure), and its success does not end it: only the probe does.

What a caller sees:
- a call that never reached a host (refused, or its probe of a host failed) moves to another host at once,
  within the same call; when no host can take it (each is DOWN and none comes back within `unreached_wait_s`,
  or each one has been tried by this call) it raises `LlmUnreached`: the attempt it ends is not counted
  against the job's attempts;
- a call that reached a model and failed (timeout, dropped connection, HTTP error, invalid JSON, schema
  violation) raises as the client does: it uses up an attempt;
- every answer and every raised `LlmError` carries `host`, the base URL of the host it went to (None on an
  `LlmUnreached` raised before any host was tried).
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Self

from triage_pipeline.domain.llm_errors import LlmError, LlmTimeout, LlmUnavailable, LlmUnreached
from triage_pipeline.domain.ports import LlmAnswer
from triage_pipeline.domain.prompt import RenderedPrompt
from triage_pipeline.infrastructure.llm.host_spec import LlmHostSpec
from triage_pipeline.infrastructure.llm.ollama_client import ConnectFailed, OllamaClient

COOL_DOWN_FIRST_S = 2.0
"""How long a host stays DOWN after its first failure: long enough not to send it every next call while it
restarts, short enough that a blip costs little of its capacity."""
COOL_DOWN_MAX_S = 30.0
"""The cool-down doubles after each failed probe up to this: a host away for good is tried twice a minute."""
_LAST_ERROR_MAX_CHARS = 300


class HostState(StrEnum):
    """A host's breaker as `hosts_state()` reports it."""

    UP = "UP"
    DOWN = "DOWN"
    """Taken out; the first call after `down_until` probes it (it may be in the past: no call came since)."""
    PROBING = "PROBING"
    """One call is asking it for its version to find out whether it is back; the others keep away until then."""


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """One host as this process sees it, for health views."""

    url: str
    concurrency: int
    in_flight: int
    state: HostState
    consecutive_failures: int
    last_error: str | None
    down_until: datetime | None
    """When the cool-down of a DOWN or PROBING host ends (UTC); None while UP."""


class _Host:
    """A host's client and breaker; every field is guarded by the pool's condition."""

    def __init__(self, spec: LlmHostSpec, client: OllamaClient, cool_down_s: float) -> None:
        self.spec = spec
        self.client = client
        self.in_flight = 0
        self.down = False
        self.down_until = 0.0  # monotonic
        self.cool_down_s = cool_down_s
        """The length of the current (or next) cool-down."""
        self.probing = False
        self.generation = 0
        """Raised each time the host goes DOWN: a call that started in an older one is from before."""
        self.consecutive_failures = 0
        """Failures (calls and probes) since the host last answered a call."""
        self.last_error: str | None = None

    def relative_load(self) -> float:
        return self.in_flight / self.spec.concurrency


@dataclass(frozen=True, slots=True)
class _Slot:
    """A call's hold on a host."""

    index: int
    generation: int


@dataclass(frozen=True, slots=True)
class _Probe:
    """A call's turn to probe a DOWN host whose cool-down is over (the host is PROBING meanwhile)."""

    index: int


class LlmHostPool:
    """`LlmGateway` over one `OllamaClient` per host; thread-safe (the triage steps call it from many threads)."""

    def __init__(
        self,
        hosts: Sequence[LlmHostSpec],
        model: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        unreached_wait_s: float | None = None,
        cool_down_first_s: float = COOL_DOWN_FIRST_S,
        cool_down_max_s: float = COOL_DOWN_MAX_S,
    ) -> None:
        """`unreached_wait_s`: how long a call waits for a DOWN host to come back when no host is UP before
        raising `LlmUnreached` (it waits only if a cool-down ends within it); default the connect timeout.
        The cool-downs are the module's constants unless given (tests shorten them)."""
        if not hosts:
            raise ValueError("an LLM host pool needs at least one host")
        if not 0 < cool_down_first_s <= cool_down_max_s:
            raise ValueError("cool-downs must be positive, the first no longer than the longest")
        self._cool_down_first_s = cool_down_first_s
        self._cool_down_max_s = cool_down_max_s
        if len({spec.url for spec in hosts}) != len(hosts):
            raise ValueError("an LLM host is listed twice")
        self._model = model
        self._probe_timeout_s = connect_timeout_s
        self._unreached_wait_s = connect_timeout_s if unreached_wait_s is None else unreached_wait_s
        self._hosts: list[_Host] = []
        try:
            for spec in hosts:
                client = OllamaClient(
                    spec.url,
                    model,
                    connect_timeout_s=connect_timeout_s,
                    read_timeout_s=read_timeout_s,
                    max_connections=spec.concurrency,
                )
                self._hosts.append(_Host(spec, client, cool_down_first_s))
        except BaseException:
            self.close()
            raise
        self._changed = threading.Condition()
        self._turn = 0
        """The host that wins a tie next (round robin)."""

    @property
    def model(self) -> str:
        return self._model

    @property
    def hosts(self) -> list[LlmHostSpec]:
        """The hosts, in the order configured."""
        return [host.spec for host in self._hosts]

    def triage(self, prompt: RenderedPrompt) -> LlmAnswer:
        """Ask the model on the least loaded UP host; see the module's docstring for the errors."""
        tried: set[int] = set()
        deadline: float | None = None
        unreached: list[str] = []
        last_tried: str | None = None
        while True:
            turn, deadline = self._acquire(tried, deadline)
            if turn is None:
                error = LlmUnreached(f"no LLM host could take the call ({self._unreached_detail(unreached)})")
                error.host = last_tried
                raise error
            if isinstance(turn, _Probe):
                last_tried = self._hosts[turn.index].spec.url
                slot, failure = self._probe(turn)
                if failure is not None:
                    tried.add(turn.index)
                    unreached.append(f"probe: {failure}")
                if slot is None:
                    continue
            else:
                slot = turn
            host = self._hosts[slot.index]
            last_tried = host.spec.url
            try:
                answer = host.client.triage(prompt)
            except ConnectFailed as exc:
                self._release(slot, failure=exc)
                tried.add(slot.index)
                unreached.append(str(exc))
                continue
            except (LlmTimeout, LlmUnavailable) as exc:
                self._release(slot, failure=exc)
                exc.host = host.spec.url
                raise
            except LlmError as exc:
                self._release(slot, failure=None)
                exc.host = host.spec.url
                raise
            except BaseException:
                self._release(slot, failure=None, answered=False)
                raise
            self._release(slot, failure=None)
            return replace(answer, host=host.spec.url)

    def hosts_state(self) -> list[HostSnapshot]:
        """Each host's breaker and calls in flight in this process, in the order configured."""
        with self._changed:
            now_mono, now = time.monotonic(), datetime.now(UTC)
            return [
                HostSnapshot(
                    url=host.spec.url,
                    concurrency=host.spec.concurrency,
                    in_flight=host.in_flight,
                    state=HostState.PROBING if host.probing else HostState.DOWN if host.down else HostState.UP,
                    consecutive_failures=host.consecutive_failures,
                    last_error=host.last_error,
                    down_until=now + timedelta(seconds=host.down_until - now_mono) if host.down else None,
                )
                for host in self._hosts
            ]

    def close(self) -> None:
        for host in self._hosts:
            host.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- slots and breakers ------------------------------------------------------------------------

    def _acquire(self, tried: set[int], deadline: float | None) -> tuple[_Slot | _Probe | None, float | None]:
        """A slot on the best host this call has not tried, or the turn to probe a host whose cool-down is over,
        waiting while every UP host is full; None when no host can take the call in time. Returns the deadline
        of the wait for a DOWN host, once one began."""
        with self._changed:
            while True:
                now = time.monotonic()
                candidates = [index for index in range(len(self._hosts)) if index not in tried]
                if not candidates:
                    return None, deadline
                # A host whose cool-down is over is probed by the first call that comes, once a connection of
                # its client is free (its older calls may still hold them all).
                for index in candidates:
                    host = self._hosts[index]
                    if host.down and not host.probing and host.down_until <= now and self._has_room(host):
                        host.probing = True
                        return _Probe(index), deadline
                up = [index for index in candidates if not self._hosts[index].down]
                free = [index for index in up if self._has_room(self._hosts[index])]
                if free:
                    return self._take(min(free, key=self._preference)), deadline
                down = [self._hosts[index] for index in candidates if self._hosts[index].down]
                # Back soon: a probe under way, or a host to probe once one of its older calls ends.
                pending = any(host.probing or host.down_until <= now for host in down)
                comebacks = [host.down_until for host in down if not host.probing and host.down_until > now]
                next_comeback = min(comebacks, default=None)
                if up:
                    # Full, not gone: a slot frees within a call's timeouts. Wake up for a cool-down's end too.
                    self._changed.wait(None if next_comeback is None else next_comeback - now)
                    continue
                # No host is UP: wait, within the bound, for a cool-down to end or a probe to bring one back.
                if deadline is None:
                    deadline = now + self._unreached_wait_s
                if now >= deadline or (not pending and (next_comeback is None or next_comeback > deadline)):
                    return None, deadline
                self._changed.wait((deadline if next_comeback is None else min(deadline, next_comeback)) - now)

    def _preference(self, index: int) -> tuple[float, int]:
        """Least loaded relative to its concurrency first; ties taken in turn, so calls one after the other
        spread over idle hosts instead of all going to the first."""
        return self._hosts[index].relative_load(), (index - self._turn) % len(self._hosts)

    @staticmethod
    def _has_room(host: _Host) -> bool:
        return host.in_flight < host.spec.concurrency

    def _take(self, index: int) -> _Slot:
        host = self._hosts[index]
        host.in_flight += 1
        self._turn = (index + 1) % len(self._hosts)
        return _Slot(index, host.generation)

    def _probe(self, probe: _Probe) -> tuple[_Slot | None, LlmError | None]:
        """Ask a PROBING host for its version, outside the lock. Answered: the host is UP again and the call
        takes a slot on it (None if others filled it first: the call then chooses again). Not answered: the
        host is DOWN for twice as long and the failure is returned."""
        host = self._hosts[probe.index]
        failure: LlmError | None = None
        try:
            host.client.version(timeout_s=self._probe_timeout_s)
        except LlmError as exc:
            failure = exc
        except BaseException:
            with self._changed:
                host.probing = False
                self._changed.notify_all()
            raise
        with self._changed:
            host.probing = False
            self._changed.notify_all()
            if failure is not None:
                self._open(host, failure)
                return None, failure
            host.down = False
            return (self._take(probe.index) if self._has_room(host) else None), None

    def _open(self, host: _Host, failure: LlmError) -> None:
        """Mark a host DOWN (again) after a failure of a call or a probe: the first failure since an answer
        takes it out for the first cool-down, each next one for twice as long. Called under the lock."""
        host.last_error = _described(failure)
        host.cool_down_s = (
            min(self._cool_down_max_s, host.cool_down_s * 2) if host.consecutive_failures else self._cool_down_first_s
        )
        host.consecutive_failures += 1
        host.down_until = time.monotonic() + host.cool_down_s
        if not host.down:
            host.down, host.generation = True, host.generation + 1

    def _release(self, slot: _Slot, *, failure: LlmError | None, answered: bool = True) -> None:
        """End a call: `failure` is one that counts against the host's breaker; else the host `answered`.

        Only calls sent since the host last went DOWN move its breaker: older calls are news of what happened
        before (their failures are kept as `last_error` only)."""
        host = self._hosts[slot.index]
        with self._changed:
            current = not host.down and slot.generation == host.generation
            host.in_flight -= 1
            if failure is not None:
                if current:
                    self._open(host, failure)
                else:
                    host.last_error = _described(failure)
            elif answered and current:
                host.consecutive_failures = 0
                host.cool_down_s = self._cool_down_first_s
            self._changed.notify_all()

    def _unreached_detail(self, unreached: list[str]) -> str:
        if unreached:
            return "; ".join(unreached)
        with self._changed:
            return "every host is marked down: " + ", ".join(
                f"{host.spec.url} ({host.last_error or 'down'})" for host in self._hosts
            )


def _described(failure: LlmError) -> str:
    """A failure as a host's `last_error`."""
    return f"{failure.error_class}: {str(failure)[:_LAST_ERROR_MAX_CHARS]}"
