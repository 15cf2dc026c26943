"""What the health probes answer."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class LlmHostHealth(BaseModel):
    """One LLM host as a probe of its `GET /api/version` found it (cached a few seconds)."""

    url: str = Field(description="The host's base URL, as in LLM_BASE_URL.")
    state: Literal["up", "down"] = Field(description="`up`: it answered with its version; `down`: it did not.")
    concurrency: int = Field(description="Calls a triage worker process sends it at once at most (`#N`).")
    version: str | None = Field(description="The Ollama version it reported; null when down.")
    error: str | None = Field(description="Why it is down; null when up.")
    latency_ms: int = Field(description="How long the probe took.")
    checked_at: datetime = Field(description="When it was probed.")


class Readiness(BaseModel):
    """The process can serve: its database answers. The LLM hosts are reported, not required: intake works
    while they are away (jobs wait), so an LLM outage does not take the API out of its load balancer."""

    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"
    llm: Literal["ok", "degraded", "down"] = Field(
        description="`ok`: every LLM host is up; `degraded`: some are; `down`: none is (triage waits)."
    )
    llm_hosts: list[LlmHostHealth]
