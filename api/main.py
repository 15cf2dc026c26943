"""The FastAPI application: `create_app()` wires routers, error handlers and middleware around a Container."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio.to_thread
from fastapi import FastAPI

from api.errors import install_error_handlers
from api.middleware import MAX_BODY_BYTES, RequestMiddleware
from api.openapi import DESCRIPTION, ProblemDocumentingFastAPI
from api.problems import problem_responses
from api.routers import api_keys, batches, examples, health, owners, prompts, quality, tickets, webhooks
from api.security import PROTECTED, PROTECTED_RESPONSES, SECURITY_HEADERS
from api.startup import StartupCheckMiddleware, log_auth_mode, settle_heap
from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.logging import configure_logging
from triage_pipeline.infrastructure.settings import get_settings


def _version() -> str:
    try:
        return version("ticket-triage")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(container: Container | None = None) -> FastAPI:
    """The API over `container`; when None, one is built from the settings at startup and closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if container is not None:  # the caller owns it (tests, embedding)
            log_auth_mode(container.settings)
            yield
            return
        settings = get_settings()
        configure_logging(settings.log_level)
        log_auth_mode(settings)
        owned = Container(settings)
        # Resolve the database (maybe starting the embedded server) once, before serving concurrent requests.
        await anyio.to_thread.run_sync(lambda: owned.engine)
        settle_heap()
        app.state.container = owned
        try:
            yield
        finally:
            owned.close()

    app = ProblemDocumentingFastAPI(
        title="Ticket Triage intake API",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=problem_responses(500),
    )
    if container is not None:
        app.state.container = container
    install_error_handlers(app)
    # Request id, body size limit, security headers, last-resort 500s and the access log, in one layer.
    app.add_middleware(RequestMiddleware, max_body_bytes=MAX_BODY_BYTES, response_headers=SECURITY_HEADERS)
    if container is None:  # outermost: a bad configuration fails the start in one line, before the lifespan
        app.add_middleware(StartupCheckMiddleware, check=get_settings)
    # Every router but the health probes needs an API key; routes are admin-only unless marked `@owner_access`.
    for module in (tickets, quality, examples, owners, batches, prompts, api_keys, webhooks):
        app.include_router(module.router, dependencies=PROTECTED, responses=PROTECTED_RESPONSES)
    app.include_router(health.router)
    # Documentation only: the requests receivers get (OpenAPI `webhooks`), one entry per event type.
    app.webhooks.include_router(webhooks.events)
    return app


app = create_app()
