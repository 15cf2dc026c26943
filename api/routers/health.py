"""Liveness (the process answers) and readiness (its database answers)."""

import logging

from fastapi import APIRouter

from api.dependencies import DatabaseProbeDep
from api.errors import DATABASE_RETRY_AFTER_S
from api.problems import ApiProblem, problem_responses
from api.schemas.health import Liveness, Readiness

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="Liveness probe (no I/O)")
def live() -> Liveness:
    """Always ok while the process serves requests."""
    return Liveness()


@router.get("/ready", summary="Readiness probe (SELECT 1)", responses=problem_responses(503))
def ready(probe: DatabaseProbeDep) -> Readiness:
    """Ok when the database answers `SELECT 1`; 503 `database_unavailable` otherwise."""
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
    return Readiness()
