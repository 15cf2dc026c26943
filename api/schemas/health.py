"""What the health probes answer."""

from typing import Literal

from pydantic import BaseModel


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """The process can serve: its database answers."""

    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"
