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
from starlette.concurrency import run_in_threadpool

from api.dependencies import ContainerDep
from api.problems import problem_responses
from triage_pipeline.application.api_keys import Authenticate, AuthenticateCommand
from triage_pipeline.bootstrap import Container
from triage_pipeline.domain.api_key import ADMIN, Principal, split_token
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


async def authorize(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """Authenticate the caller (401 without a valid key) and let it through: admins everywhere, owner keys only
    on endpoints marked `@owner_access` (403 elsewhere). With AUTH_ENABLED=false every caller is an admin.

    Every protected route runs this first (see `PROTECTED`); it keeps the caller for `PrincipalDep`. It is
    `async`, so FastAPI runs it on the event loop: only a token shaped like an issued key (`tt_<lookup>_<secret>`)
    needs the database, and only that one is looked up on a worker thread. Any other token is the admin token or
    nothing, which `Authenticate` decides with a constant-time comparison, without I/O.
    """
    principal = await _authenticate(container, credentials)
    if not principal.is_admin:
        endpoint = getattr(request.scope.get("route"), "endpoint", None)
        if endpoint not in _OWNER_ENDPOINTS:
            raise Forbidden("call admin-only routes")
    request.state.principal = principal


async def _authenticate(container: Container, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if not container.settings.auth_enabled:
        return ADMIN
    if credentials is None:
        raise Unauthenticated()
    authenticate = container.use(Authenticate)
    command = AuthenticateCommand(credentials.credentials)
    if split_token(command.token) is None:
        return authenticate.execute(command)
    return await run_in_threadpool(authenticate.execute, command)


async def get_principal(request: Request) -> Principal:
    """The caller, as `authorize` authenticated it for this request.

    Read from the request rather than depending on the authentication again: FastAPI caches a dependency's
    value per request but still walks its sub-dependencies at every use, a measurable cost per request.
    """
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # fail closed (500) on a route left out of the protected routers
        raise RuntimeError(f"no authenticated caller on {request.url.path}: the route does not depend on authorize")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
"""The caller, for endpoints that scope their data to it (`@owner_access`)."""

PROTECTED = [Depends(authorize)]
PROTECTED_RESPONSES = problem_responses(401, 403)


SECURITY_HEADERS = (
    # JSON is never sniffed as HTML, so a reflected string cannot run as script.
    ("X-Content-Type-Options", "nosniff"),
    # Responses are per caller, and some hold keys: no cache keeps them.
    ("Cache-Control", "no-store"),
)
"""Headers of every response (unless the response sets them), added by `api.middleware.RequestMiddleware`."""
