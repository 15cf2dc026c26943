"""One generation at a time, on one thread: the CPU model serves one request at a time.

Requests queue here in arrival order while the event loop keeps answering /api/tags and the like.
One dedicated thread, not one per request, because llama.cpp's OpenMP thread pool belongs to the
thread that calls it: generating on each request's own thread would leave a pool per old thread.
"""

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from offline_llm.backend import ChatBackend, GenerationStats
from offline_llm.ollama_requests import ChatRequest


class RunningGeneration:
    """A queued or running generation, read from the event loop: pieces, then the figures.

    `next_event` returns each text piece, then the `GenerationStats`; it raises what the backend
    raised. Call `cancel` when the answer is no longer wanted (the client went away): the worker
    then stops the backend at its next piece, or skips the generation if it has not started.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: asyncio.Queue[str | GenerationStats | Exception] = asyncio.Queue()
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        """Whether the answer is no longer wanted."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop generating this answer (thread-safe, idempotent)."""
        self._cancelled.set()

    async def next_event(self) -> str | GenerationStats:
        """The next piece, or the figures once the answer is complete."""
        event = await self._events.get()
        if isinstance(event, Exception):
            raise event
        return event

    def put(self, event: str | GenerationStats | Exception) -> None:
        """Hand an event to the event loop (called from the worker thread)."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)


class GenerationWorker:
    """Runs `backend.generate` for one request at a time, on one thread, in arrival order."""

    def __init__(self, backend: ChatBackend) -> None:
        self._backend = backend
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offline-llm-generation")
        self._lock = threading.Lock()
        self._current: RunningGeneration | None = None

    def submit(self, request: ChatRequest) -> RunningGeneration:
        """Queue `request`; read its answer from the returned generation (call from the event loop)."""
        running = RunningGeneration(asyncio.get_running_loop())
        self._executor.submit(self._run, request, running)
        return running

    def close(self) -> None:
        """Drop queued generations and stop the running one at its next piece; do not wait."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._current is not None:
                self._current.cancel()

    def _run(self, request: ChatRequest, running: RunningGeneration) -> None:
        if running.cancelled:
            return
        with self._lock:
            self._current = running
        try:
            pieces = self._backend.generate(request)
            while True:
                running.put(next(pieces))
                if running.cancelled:
                    pieces.close()
                    return
        except StopIteration as done:
            running.put(done.value)
        except Exception as exc:
            running.put(exc)
        finally:
            with self._lock:
                self._current = None
