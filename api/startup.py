"""Startup: a bad configuration stops the API with one clear line, the auth mode is logged, the heap settled."""

import gc
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgresError
from triage_pipeline.infrastructure.settings import Settings, SettingsError

logger = logging.getLogger("api.startup")

STARTUP_ERRORS: tuple[type[Exception], ...] = (SettingsError, EmbeddedPostgresError)


class StartupCheckMiddleware:
    """Runs `check` when the server starts; a configuration error fails the start with its one-line message.

    Starlette reports a failing lifespan with a full traceback. Checking before the lifespan runs lets
    uvicorn print just `invalid configuration: LOG_LEVEL: ...` and exit non-zero.
    """

    def __init__(self, app: ASGIApp, check: Callable[[], object]) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check on `lifespan.startup`, then hand the (replayed) message to the application."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "lifespan.startup":
            try:
                self.check()
            except STARTUP_ERRORS as exc:
                await send({"type": "lifespan.startup.failed", "message": f"triage API cannot start: {exc}"})
                return
        replayed: list[Message] = [first]

        async def replay() -> Message:
            return replayed.pop() if replayed else await receive()

        await self.app(scope, replay, send)


def log_auth_mode(settings: Settings) -> None:
    """Warn when authentication is off; say how admins authenticate when it is on."""
    if not settings.auth_enabled:
        logger.warning(
            "AUTH_ENABLED=false: every request is served as an admin without an API key; "
            "use this for local development only",
            extra={"fields": {"auth_enabled": False}},
        )
    elif settings.admin_api_key is None:
        logger.info(
            "authentication on; ADMIN_API_KEY is not set, so only issued admin keys can manage owners and batches",
            extra={"fields": {"auth_enabled": True, "admin_api_key_set": False}},
        )
    else:
        # The normal case: `triage run` prints it already, so it is not worth a line on every start.
        logger.debug("authentication on", extra={"fields": {"auth_enabled": True, "admin_api_key_set": True}})


# Allocations between two young-generation collections (CPython's default is 700). Requests allocate many
# short-lived objects; fewer, larger young collections cost the same in total but pause less often.
GC_YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Move everything allocated by the start (modules, the app, the container) out of the garbage collector's
    reach (`gc.freeze`), and collect the young generation less often.

    Why: the collector's full passes walked those long-lived objects while requests waited, which was most of
    the single-intake tail (README, Performance: p99 123 -> 86 ms in the same conditions). Call it once, when
    the app is ready to serve.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
