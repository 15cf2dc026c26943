"""Who may call what: bearer API keys, checked on every route except the health probes.

Secure by default: every route of a protected router is admin-only unless its endpoint is marked with
`@owner_access`, which promises that the endpoint scopes what it reads and writes to the caller
(`Principal.may_act_for`, `Principal.visible_owner`). A route added later without thinking about
tenants is therefore closed to owner keys, not open to them.
"""

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.dependencies import ContainerDep
from api.problems import problem_responses
from triage_pipeline.application.api_keys import AuthenticateCommand
from triage_pipeline.domain.api_key import ADMIN, Principal
from triage_pipeline.domain.exceptions import Forbidden, Unauthenticated

logger = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description=(
        "`Authorization: Bearer <key>`. An admin key (the ADMIN_API_KEY setting, or an issued admin key) may do"
        " everything; an owner key may create and read only its owner's tickets."
    ),
)

_OWNER_ENDPOINTS: set[Callable[..., Any]] = set()


def owner_access[E: Callable[..., Any]](endpoint: E) -> E:
    """Let owner keys call this endpoint (which must then scope its data to the caller)."""
    _OWNER_ENDPOINTS.add(endpoint)
    return endpoint


def get_principal(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    """The caller; 401 without a valid key. With AUTH_ENABLED=false every caller is an admin."""
    if not container.settings.auth_enabled:
        return ADMIN
    if credentials is None:
        raise Unauthenticated()
    return container.authenticate.execute(AuthenticateCommand(credentials.credentials))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def authorize(request: Request, principal: PrincipalDep) -> None:
    """Admins pass; owner keys pass only on endpoints marked `@owner_access` (403 elsewhere)."""
    if principal.is_admin:
        return
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    if endpoint not in _OWNER_ENDPOINTS:
        raise Forbidden("call admin-only routes")


PROTECTED = [Depends(authorize)]
PROTECTED_RESPONSES = problem_responses(401, 403)


class SecurityHeadersMiddleware:
    """Every response: `X-Content-Type-Options: nosniff` (JSON is never sniffed as HTML, so a reflected
    string cannot run as script) and `Cache-Control: no-store` (responses are per caller, and some hold keys).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
