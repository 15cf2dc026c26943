"""What routers ask FastAPI for: the container, a use case by its class, and the database and LLM probes.

Routers declare a use case as `use_case: Annotated[CreateTicket, provide(CreateTicket)]`; the container
(`triage_pipeline.bootstrap`) wires it, for the API as for the Dagster resources and the CLI, so a new
use case needs no code here. These dependencies do no I/O, so they are `async def`: FastAPI then calls
them on the event loop instead of sending each to a worker thread, which cost a thread hop per request.
"""

from collections.abc import Callable
from typing import Annotated, Any, cast

from fastapi import Depends, Request

from triage_pipeline.bootstrap import Container
from triage_pipeline.infrastructure.llm.host_probe import LlmHostsProbe


async def get_container(request: Request) -> Container:
    """The container the application was started with."""
    return cast(Container, request.app.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]


class _UseCase:
    """A FastAPI dependency that resolves one use-case class through the container."""

    def __init__(self, use_case: type[Any]) -> None:
        self._use_case = use_case

    async def __call__(self, request: Request) -> Any:
        # The container straight from the app state, not through `ContainerDep`: each dependency step
        # FastAPI resolves costs about 4% of the API layer per request.
        return cast(Container, request.app.state.container).use(self._use_case)


_DEPENDENCIES: dict[type[Any], _UseCase] = {}


def use_case_dependency(use_case: type[Any]) -> _UseCase:
    """The one dependency callable of this use case (the key for `app.dependency_overrides` in tests)."""
    return _DEPENDENCIES.setdefault(use_case, _UseCase(use_case))


def provide(use_case: type[Any]) -> Any:
    """`Depends` on this use case, for `Annotated[UseCaseClass, provide(UseCaseClass)]`."""
    return Depends(use_case_dependency(use_case))


async def get_database_probe(container: ContainerDep) -> Callable[[], None]:
    """A check that the database answers (raises when it does not); the caller runs it off the loop."""
    return container.ping_database


DatabaseProbeDep = Annotated[Callable[[], None], Depends(get_database_probe)]


async def get_llm_hosts_probe(container: ContainerDep) -> LlmHostsProbe:
    """The probe of the LLM hosts (cached answers); the caller runs it off the loop."""
    return container.llm_hosts_probe


LlmHostsProbeDep = Annotated[LlmHostsProbe, Depends(get_llm_hosts_probe)]
