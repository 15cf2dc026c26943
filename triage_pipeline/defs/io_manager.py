"""Where the triage job's steps pass each other their outputs when they run on several machines.

Dagster's default `fs_io_manager` keeps outputs on the local disk of the process that made them: fine in one
process or on one machine (in_process, multiprocess), but a Celery worker or a Kubernetes step job on another
machine could not read them. The outputs here are small JSON values (a batch summary, a chunk's job ids, a
chunk's counts), so they go to the service's own PostgreSQL instead: no shared volume to provision. The
definitions use this IO manager for TRIAGE_EXECUTOR=celery and k8s.
"""

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext
from sqlalchemy import Engine

from triage_pipeline.infrastructure.database import resolve_database_url
from triage_pipeline.infrastructure.db.engine import make_engine
from triage_pipeline.infrastructure.db.step_output_store import StepOutputStore
from triage_pipeline.infrastructure.settings import load_settings

# One small pool per process and database (a step writes one or two outputs).
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
# Outputs are kept this long: enough to re-execute a failed run from its failed step in the UI for a week.
RETENTION = timedelta(days=7)
# A process prunes older outputs at most this often (on an output it writes).
_PRUNE_EVERY_S = 3600.0
_last_prune = {"at": float("-inf")}


class PostgresOutputsIOManager(ConfigurableIOManager):
    """JSON outputs in `pipeline_step_outputs`; `database_url` empty means DATABASE_URL / DB_* / embedded."""

    database_url: str = ""

    def _store(self) -> StepOutputStore:
        url = self.database_url or resolve_database_url(load_settings())
        with _engines_lock:
            engine = _engines.get(url)
            if engine is None:
                engine = _engines[url] = make_engine(url, pool_size=1, max_overflow=1)
        return StepOutputStore(engine)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        store = self._store()
        store.put(context.get_identifier(), context.run_id, obj)
        now = time.monotonic()
        with _engines_lock:
            due = now - _last_prune["at"] >= _PRUNE_EVERY_S
            if due:
                _last_prune["at"] = now
        if due:
            store.prune(datetime.now(UTC) - RETENTION)

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:  # an input from config, not from a step
            raise ValueError(f"input {context.name!r} has no upstream step output to load")
        return self._store().get(upstream.get_identifier())
