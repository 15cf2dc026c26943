"""Liveness (the process answers) and readiness (its database answers; the LLM hosts are reported)."""

import logging

from fastapi import APIRouter

from api.dependencies import DatabaseProbeDep, LlmHostsProbeDep
from api.errors import DATABASE_RETRY_AFTER_S
from api.problems import ApiProblem, problem_responses
from api.schemas.health import Liveness, LlmHostHealth, Readiness

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="Liveness probe (no I/O)")
def live() -> Liveness:
    """Always ok while the process serves requests."""
    return Liveness()


@router.get("/ready", summary="Readiness probe (SELECT 1; each LLM host's state)", responses=problem_responses(503))
def ready(probe: DatabaseProbeDep, llm_probe: LlmHostsProbeDep) -> Readiness:
    """Ok when the database answers `SELECT 1`; 503 `database_unavailable` otherwise.

    The body also reports each LLM host (`GET /api/version` within 1 s, answers cached 5 s), but a host that
    is down does not make the API unready: intake works without the LLM, whose jobs wait for it."""
    try:
        probe()
    except Exception as exc:
        logger.warning("readiness check failed", extra={"fields": {"error_class": type(exc).__name__}})
        raise ApiProblem(
            503,
            "database_unavailable",
            "The database does not answer.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        ) from exc
    hosts = [
        LlmHostHealth(
            url=host.url,
            state=host.state.value,
            concurrency=host.concurrency,
            version=host.version,
            error=host.error,
            latency_ms=host.latency_ms,
            checked_at=host.checked_at,
        )
        for host in llm_probe.check()
    ]
    up = sum(1 for host in hosts if host.state == "up")
    return Readiness(llm="ok" if up == len(hosts) else "degraded" if up else "down", llm_hosts=hosts)
