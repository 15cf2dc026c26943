"""The limit of benchmark 4: a bare FastAPI endpoint doing one INSERT, on the same database and pool settings.

    DATABASE_URL=postgresql+psycopg://... uvicorn bench.bare_app:app --no-access-log

POST /tickets validates the same JSON body with a plain pydantic model and inserts one `tickets` row in
its own transaction; no authentication, no middleware, no use case, no job row, no duplicate check.
"""

import os
from uuid import UUID, uuid4

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from triage_pipeline.domain.owner import DEFAULT_OWNER_ID
from triage_pipeline.infrastructure.db.engine import make_engine

engine = make_engine(os.environ["DATABASE_URL"])
INSERT = text(
    "INSERT INTO tickets (id, owner_id, external_id, title, description, status, created_at, updated_at) "
    "VALUES (:id, :owner_id, :external_id, :title, :description, 'PENDING', now(), now())"
)


class Body(BaseModel):
    owner_id: UUID = DEFAULT_OWNER_ID
    external_id: str
    title: str
    description: str = ""


class Created(BaseModel):
    id: UUID


app = FastAPI()


@app.post("/tickets", status_code=201)
def create(body: Body) -> Created:
    """One INSERT, one transaction."""
    ticket_id = uuid4()
    with engine.begin() as connection:
        connection.execute(INSERT, {"id": ticket_id, **body.model_dump()})
    return Created(id=ticket_id)
