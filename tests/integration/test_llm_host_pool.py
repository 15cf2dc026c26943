"""LlmHostPool over real fake-Ollama servers: calls spread by concurrency, host caps hold, a host that cannot
be reached is taken out, probed with `GET /api/version` (never a triage call) and brought back, and errors tell
whether the call reached a model."""

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest

from tests.support.fake_ollama import Behaviour, FakeOllama
from tests.support.ollama_contract import rendered
from tests.support.ports import distinct_free_ports
from triage_pipeline.domain.llm_errors import (
    InvalidJsonOutput,
    LlmHttpError,
    LlmTimeout,
    LlmUnavailable,
    LlmUnreached,
)
from triage_pipeline.domain.ports import LlmAnswer, LlmGateway
from triage_pipeline.infrastructure.embedded_postgres import free_port
from triage_pipeline.infrastructure.llm.host_pool import HostState, LlmHostPool
from triage_pipeline.infrastructure.llm.host_spec import LlmHostSpec

MODEL = "gemma3:270m"
COOL_DOWN_S = 0.3
READ_TIMEOUT_S = 0.5

PoolOf = Callable[..., LlmHostPool]


@pytest.fixture
def pool_of() -> Iterator[PoolOf]:
    """Builds pools over `(url, concurrency)` pairs with short timeouts and cool-downs; closed after the test."""
    with ExitStack() as stack:

        def build(*hosts: tuple[str, int], **options: float) -> LlmHostPool:
            settings: dict[str, float] = {
                "connect_timeout_s": 1.0,
                "read_timeout_s": READ_TIMEOUT_S,
                "cool_down_first_s": COOL_DOWN_S,
                "cool_down_max_s": 4 * COOL_DOWN_S,
                **options,
            }
            specs = [LlmHostSpec(url, concurrency) for url, concurrency in hosts]
            return stack.enter_context(LlmHostPool(specs, MODEL, **settings))

        yield build


@pytest.fixture
def second_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


class SilentHost:
    """A host that accepts connections and reads requests but never answers (a swallowing firewall, a wedged
    server): every call to it, the version probe too, ends in its timeout. Records each request line."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._requests: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-host", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def requests(self) -> list[str]:
        """`METHOD /path` of each request received, oldest first."""
        with self._lock:
            return list(self._requests)

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._thread.join(timeout=5.0)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        received = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                received += chunk
            method, path, *_ = received.split(b"\r\n", 1)[0].decode().split(" ")
            with self._lock:
                self._requests.append(f"{method} {path}")


@pytest.fixture
def silent_host() -> Iterator[SilentHost]:
    host = SilentHost()
    try:
        yield host
    finally:
        host.stop()


def nowhere() -> str:
    """A base URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def state_of(pool: LlmHostPool, url: str) -> HostState:
    [host] = [host for host in pool.hosts_state() if host.url == url]
    return host.state


def call_many(pool: LlmHostPool, threads: int, calls: int) -> list[LlmAnswer]:
    """`calls` triage calls from `threads` threads started together."""
    barrier = threading.Barrier(threads)

    def worker(_: int) -> list[LlmAnswer]:
        barrier.wait()
        return [pool.triage(rendered(f"Ticket {i}", "How do I export my orders?")) for i in range(calls // threads)]

    with ThreadPoolExecutor(max_workers=threads) as executor:
        return [answer for answers in executor.map(worker, range(threads)) for answer in answers]


def test_pool_is_an_llm_gateway_of_its_model(pool_of: PoolOf, fake_ollama: FakeOllama) -> None:
    pool: LlmGateway = pool_of((fake_ollama.url, 4))
    assert pool.model == MODEL


def test_calls_spread_over_two_hosts_in_proportion_to_their_concurrency(
    pool_of: PoolOf, fake_ollama: FakeOllama, second_ollama: FakeOllama
) -> None:
    fake_ollama.latency_s = second_ollama.latency_s = 0.05
    pool = pool_of((fake_ollama.url, 4), (second_ollama.url, 2))

    answers = call_many(pool, threads=6, calls=60)

    served = Counter(answer.host for answer in answers)
    assert served == {fake_ollama.url: fake_ollama.chats_answered, second_ollama.url: second_ollama.chats_answered}
    assert sum(served.values()) == 60
    assert 1.5 <= served[fake_ollama.url] / served[second_ollama.url] <= 2.7  # 4:2 = 2
    assert fake_ollama.max_concurrent_chats == 4 and second_ollama.max_concurrent_chats == 2


def test_a_host_never_gets_more_calls_than_its_concurrency_the_others_wait_for_a_slot(
    pool_of: PoolOf, fake_ollama: FakeOllama, second_ollama: FakeOllama
) -> None:
    fake_ollama.latency_s = second_ollama.latency_s = 0.1
    pool = pool_of((fake_ollama.url, 3), (second_ollama.url, 1))

    started = time.monotonic()
    answers = call_many(pool, threads=16, calls=32)
    elapsed = time.monotonic() - started

    assert len(answers) == 32
    assert fake_ollama.max_concurrent_chats == 3
    assert second_ollama.max_concurrent_chats == 1
    assert elapsed >= 0.1 * 32 / 4 * 0.9  # 4 slots in all: the 16 threads took turns
    assert all(host.in_flight == 0 and host.state is HostState.UP for host in pool.hosts_state())


def test_sequential_calls_take_idle_hosts_in_turn(
    pool_of: PoolOf, fake_ollama: FakeOllama, second_ollama: FakeOllama
) -> None:
    pool = pool_of((fake_ollama.url, 4), (second_ollama.url, 4))

    hosts = [pool.triage(rendered()).host for _ in range(4)]

    assert hosts == [fake_ollama.url, second_ollama.url, fake_ollama.url, second_ollama.url]


def test_a_host_refusing_connections_is_skipped_without_failing_the_call(
    pool_of: PoolOf, fake_ollama: FakeOllama
) -> None:
    dead = nowhere()
    pool = pool_of((dead, 4), (fake_ollama.url, 4))

    answers = [pool.triage(rendered()) for _ in range(5)]

    assert {answer.host for answer in answers} == {fake_ollama.url}
    assert fake_ollama.chats_answered == 5
    [down, up] = pool.hosts_state()
    assert (down.url, down.state, down.consecutive_failures) == (dead, HostState.DOWN, 1)
    assert down.last_error is not None and "ConnectError" in down.last_error
    assert down.down_until is not None and down.in_flight == 0
    assert (up.state, up.down_until, up.concurrency) == (HostState.UP, None, 4)


def test_a_down_host_is_probed_after_its_cool_down_and_comes_back(pool_of: PoolOf, fake_ollama: FakeOllama) -> None:
    port = free_port()
    late = f"http://127.0.0.1:{port}"
    pool = pool_of((late, 4), (fake_ollama.url, 4))

    assert pool.triage(rendered()).host == fake_ollama.url  # refused by `late`, answered by the other
    time.sleep(COOL_DOWN_S * 1.2)
    assert pool.triage(rendered()).host == fake_ollama.url  # the probe of `late`: refused again
    [still_down, _] = pool.hosts_state()
    assert still_down.state is HostState.DOWN and still_down.consecutive_failures == 2
    assert still_down.down_until is not None

    with FakeOllama(port=port) as back:
        time.sleep(COOL_DOWN_S * 2 * 1.2)  # the cool-down doubled after the failed probe
        assert pool.triage(rendered()).host == late  # the probe answered: UP again, and the call went to it
        assert state_of(pool, late) is HostState.UP
        hosts = {pool.triage(rendered()).host for _ in range(4)}

        assert hosts == {late, fake_ollama.url}
        assert back.chats_answered == back.chat_count == 3
        assert back.request_count == 4  # and one GET /api/version: the probe
    assert pool.hosts_state()[0].consecutive_failures == 0  # answered since


def test_a_hung_host_is_probed_with_a_version_request_not_a_triage_call(
    pool_of: PoolOf, fake_ollama: FakeOllama, second_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.HANG  # its chat hangs; /api/version still answers
    pool = pool_of((fake_ollama.url, 4), (second_ollama.url, 4))
    with pytest.raises(LlmTimeout):
        pool.triage(rendered())  # sent while the host was believed UP: it hangs, and the host goes DOWN
    assert {pool.triage(rendered()).host for _ in range(3)} == {second_ollama.url}
    time.sleep(COOL_DOWN_S * 1.2)

    with pytest.raises(LlmTimeout) as caught:
        pool.triage(rendered())  # probes it (answered: UP), then goes to it and hangs again

    assert caught.value.host == fake_ollama.url
    assert fake_ollama.chat_count == 2  # only the two calls sent while it was believed UP
    assert fake_ollama.request_count == 3  # and one GET /api/version: the probe used no chat
    [hung, _] = pool.hosts_state()
    assert (hung.state, hung.consecutive_failures) == (HostState.DOWN, 2)
    assert hung.down_until is not None
    # Twice the first cool-down: the probe's answer brought it back, but no call has been answered since.
    assert (hung.down_until - datetime.now(UTC)).total_seconds() > COOL_DOWN_S
    assert {pool.triage(rendered()).host for _ in range(3)} == {second_ollama.url}
    assert fake_ollama.chat_count == 2


def test_a_host_that_does_not_answer_its_version_probe_stays_down_and_gets_no_triage_call(
    pool_of: PoolOf, silent_host: SilentHost, second_ollama: FakeOllama
) -> None:
    pool = pool_of((silent_host.url, 4), (second_ollama.url, 4), connect_timeout_s=0.2)
    with pytest.raises(LlmTimeout):
        pool.triage(rendered())  # the first call goes to it while believed UP: no answer, DOWN
    time.sleep(COOL_DOWN_S * 1.2)

    started = time.monotonic()
    answer = pool.triage(rendered())  # probes it: no version within the connect timeout
    elapsed = time.monotonic() - started

    assert answer.host == second_ollama.url  # the call moved on, as one that never reached a model
    assert 0.15 <= elapsed < READ_TIMEOUT_S  # the probe was bounded by the connect timeout, not the read one
    [down, _] = pool.hosts_state()
    assert (down.state, down.consecutive_failures) == (HostState.DOWN, 2)
    assert down.last_error is not None and "/api/version" in down.last_error
    assert {pool.triage(rendered()).host for _ in range(3)} == {second_ollama.url}
    assert silent_host.requests == ["POST /api/chat", "GET /api/version"]


def test_a_single_host_failing_its_version_probe_raises_llm_unreached(pool_of: PoolOf) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with FakeOllama(port=port) as hung:
        hung.behaviour = Behaviour.HANG
        pool = pool_of((url, 2), unreached_wait_s=0.0)
        with pytest.raises(LlmTimeout):
            pool.triage(rendered())
    time.sleep(COOL_DOWN_S * 1.2)  # the fake is stopped: nothing listens on its port

    with pytest.raises(LlmUnreached) as caught:
        pool.triage(rendered())

    assert caught.value.host == url
    assert "probe" in str(caught.value) and "/api/version" in str(caught.value)
    assert hung.chat_count == 1
    [host] = pool.hosts_state()
    assert (host.state, host.consecutive_failures) == (HostState.DOWN, 2)


def test_a_probe_goes_alone_to_the_host_the_other_calls_keep_away(
    pool_of: PoolOf, silent_host: SilentHost, second_ollama: FakeOllama
) -> None:
    second_ollama.latency_s = 0.02
    pool = pool_of((silent_host.url, 4), (second_ollama.url, 4), connect_timeout_s=0.4)
    with pytest.raises(LlmTimeout):
        pool.triage(rendered())  # takes the first host down
    time.sleep(COOL_DOWN_S * 1.2)

    answers = call_many(pool, threads=4, calls=12)

    # One call probed the first host (0.4 s without an answer); the others went to the second meanwhile,
    # and so did the probing call once its probe failed.
    assert Counter(answer.host for answer in answers) == {second_ollama.url: 12}
    assert silent_host.requests == ["POST /api/chat", "GET /api/version"]
    assert state_of(pool, silent_host.url) is HostState.DOWN


def test_every_host_refusing_connections_raises_llm_unreached_naming_them(pool_of: PoolOf) -> None:
    first, second = (f"http://127.0.0.1:{port}" for port in distinct_free_ports(2))
    pool = pool_of((first, 2), (second, 2))

    with pytest.raises(LlmUnreached) as caught:
        pool.triage(rendered())

    assert caught.value.error_class == "unreached"
    assert isinstance(caught.value, LlmUnavailable)
    assert first in str(caught.value) and second in str(caught.value)
    assert caught.value.host in (first, second)
    assert {host.state for host in pool.hosts_state()} == {HostState.DOWN}


def test_with_every_host_down_a_call_fails_at_once_unless_one_comes_back_within_the_wait(pool_of: PoolOf) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pool = pool_of((url, 2), unreached_wait_s=COOL_DOWN_S * 3)
    with pytest.raises(LlmUnreached):
        pool.triage(rendered())

    with FakeOllama(port=port):
        started = time.monotonic()
        answer = pool.triage(rendered())  # waits for the cool-down's end, probes (a version): UP, and calls it
        waited = time.monotonic() - started

    assert answer.host == url
    assert COOL_DOWN_S * 0.5 <= waited < COOL_DOWN_S * 3


def test_a_call_does_not_wait_for_a_cool_down_longer_than_the_wait(pool_of: PoolOf) -> None:
    url = nowhere()
    pool = pool_of((url, 2), unreached_wait_s=0.05, cool_down_first_s=5.0, cool_down_max_s=5.0)
    with pytest.raises(LlmUnreached) as first:
        pool.triage(rendered())
    assert first.value.host == url

    started = time.monotonic()
    with pytest.raises(LlmUnreached) as second:
        pool.triage(rendered())

    assert time.monotonic() - started < 0.5
    assert second.value.host is None  # no host was tried: every one was down
    assert "every host is marked down" in str(second.value)


def test_a_read_timeout_marks_the_host_down_and_is_raised_as_a_timeout_of_that_host(
    pool_of: PoolOf, fake_ollama: FakeOllama, second_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.HANG
    pool = pool_of((fake_ollama.url, 4), (second_ollama.url, 4))

    with pytest.raises(LlmTimeout) as caught:
        pool.triage(rendered())  # the first host takes the first call

    assert caught.value.host == fake_ollama.url
    assert not isinstance(caught.value, LlmUnreached)
    assert state_of(pool, fake_ollama.url) is HostState.DOWN
    assert {pool.triage(rendered()).host for _ in range(3)} == {second_ollama.url}


def test_a_dropped_connection_marks_the_host_down_and_uses_up_the_attempt(
    pool_of: PoolOf, fake_ollama: FakeOllama
) -> None:
    fake_ollama.behaviour = Behaviour.DROP_CONNECTION
    pool = pool_of((fake_ollama.url, 4))

    with pytest.raises(LlmUnavailable) as caught:
        pool.triage(rendered())

    assert type(caught.value) is LlmUnavailable  # reached the server: not LlmUnreached
    assert caught.value.error_class == "unavailable"
    assert caught.value.host == fake_ollama.url
    assert state_of(pool, fake_ollama.url) is HostState.DOWN


def test_calls_dropped_together_by_one_crash_count_once_against_the_host(
    pool_of: PoolOf, fake_ollama: FakeOllama
) -> None:
    fake_ollama.set_behaviour(Behaviour.DROP_CONNECTION, latency_s=0.2)
    pool = pool_of((fake_ollama.url, 4), cool_down_first_s=5.0, cool_down_max_s=60.0)
    barrier = threading.Barrier(4)

    def call(_: int) -> BaseException | None:
        barrier.wait()
        try:
            pool.triage(rendered())
        except LlmUnavailable as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=4) as executor:
        errors = list(executor.map(call, range(4)))

    assert all(type(error) is LlmUnavailable for error in errors)
    [host] = pool.hosts_state()
    assert (host.state, host.consecutive_failures) == (HostState.DOWN, 1)
    assert host.down_until is not None
    remaining = (host.down_until - datetime.now(UTC)).total_seconds()
    assert remaining <= 5.0  # the first cool-down, not doubled by the three other dropped calls


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [(Behaviour.HTTP_500, LlmHttpError), (Behaviour.INVALID_JSON, InvalidJsonOutput)],
)
def test_a_failure_after_the_model_answered_is_raised_with_its_host_and_leaves_the_host_up(
    pool_of: PoolOf, fake_ollama: FakeOllama, behaviour: Behaviour, error: type[Exception]
) -> None:
    fake_ollama.behaviour = behaviour
    pool = pool_of((fake_ollama.url, 4))

    with pytest.raises(error) as caught:
        pool.triage(rendered())

    assert getattr(caught.value, "host", None) == fake_ollama.url
    [host] = pool.hosts_state()
    assert (host.state, host.consecutive_failures) == (HostState.UP, 0)


def test_a_single_host_pool_answers_like_the_client_with_the_host_on_the_answer(
    pool_of: PoolOf, fake_ollama: FakeOllama
) -> None:
    pool = pool_of((fake_ollama.url, 16))

    answer = pool.triage(rendered())

    assert answer.answer.category == "billing"
    assert answer.host == fake_ollama.url
    assert answer.category_probability == pytest.approx(0.9)


def test_a_single_host_refusing_connections_raises_llm_unreached_with_its_host(pool_of: PoolOf) -> None:
    url = nowhere()
    pool = pool_of((url, 16))

    with pytest.raises(LlmUnreached) as caught:
        pool.triage(rendered())

    assert caught.value.host == url
