"""Turn a database URL into the DB_* variables child processes (Dagster's storage) read, or into libpq's form."""

from sqlalchemy.engine import make_url


def database_env(database_url: str, dagster_db_name: str) -> dict[str, str]:
    """DATABASE_URL plus DB_HOST / DB_PORT / DB_USER / DB_PASSWORD / DB_NAME / DAGSTER_DB_NAME."""
    url = make_url(database_url)
    return {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "DB_HOST": url.host or "127.0.0.1",
        "DB_PORT": str(url.port or 5432),
        "DB_USER": url.username or "postgres",
        "DB_PASSWORD": url.password if isinstance(url.password, str) else "",
        "DB_NAME": url.database or "triage",
        "DAGSTER_DB_NAME": dagster_db_name,
    }


def libpq_url(database_url: str) -> str:
    """The URL as libpq (psycopg itself) takes it: without SQLAlchemy's `+driver` part."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
