"""Where the database is: the configured server, or the embedded one started on demand."""

from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgres
from triage_pipeline.infrastructure.settings import Settings


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    """The embedded server described by the settings (not started)."""
    return EmbeddedPostgres(data_dir=settings.embedded_pg_dir, port=settings.embedded_pg_port)


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL / DB_* when set; otherwise start (or reuse) the embedded server and use its database."""
    configured = settings.configured_database_url()
    if configured is not None:
        return configured
    server = embedded_server(settings)
    server.start()
    return server.ensure_database(settings.db_name)
