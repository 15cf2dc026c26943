"""Service settings, read from the environment and an optional `.env` file."""

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import (
    Field,
    PostgresDsn,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage_pipeline.infrastructure.llm.host_spec import LlmHostSpec, normalise_llm_hosts, parse_llm_hosts

PROJECT_ROOT = Path(__file__).resolve().parents[2]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# Where the triage job's chunk steps run (README "Scaling out"): in the run's own process, in one process
# per step on this machine, on Celery workers through a broker, or in one Kubernetes job per step.
ExecutorKind = Literal["in_process", "multiprocess", "celery", "k8s"]
ADMIN_API_KEY_MIN_LENGTH = 24
# Fields whose value must never be echoed, even in a configuration error.
SECRET_FIELDS = frozenset({"database_url", "db_password", "admin_api_key", "webhook_secrets_key"})


class SettingsError(ValueError):
    """A configuration value is malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every setting of the service; env var names are the upper-cased field names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: PostgresDsn | None = None
    db_host: str | None = None
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_user: str = "postgres"
    db_password: SecretStr = SecretStr("")
    db_name: str = "triage"

    # One Ollama base URL, or a comma-separated list of hosts each with an optional `#N` concurrency
    # (`http://gpu-a:11434#8,http://gpu-b:11434#4`); stored written canonically. See `llm_hosts()`.
    llm_base_url: str | None = None
    llm_model: str = Field(default="smollm2:135m", min_length=1)
    llm_connect_timeout_s: float = Field(default=5.0, gt=0)
    llm_read_timeout_s: float = Field(default=60.0, gt=0)
    offline_llm_port: int = Field(default=11435, ge=1, le=65535)

    log_level: LogLevel = "INFO"

    # Pipeline knobs (Dagster job, schedule and sensors).
    batch_max_items: int = Field(default=1000, ge=1, le=10_000)
    jobs_per_chunk: int = Field(default=1000, ge=1, le=10_000)
    llm_concurrency: int = Field(default=16, ge=1, le=256)
    triage_schedule_cron: str = "*/10 * * * *"
    backlog_min_jobs: int = Field(default=100, ge=1)
    backlog_max_age_s: int = Field(default=300, ge=1)
    # Dagster's sensor daemon looks at sensors every 5 s at most: an interval of 5 s itself made every
    # other look too early by a few milliseconds, so a queued batch waited up to 10 s for its run.
    queued_sensor_interval_s: int = Field(default=1, ge=1)
    job_lease_s: int = Field(default=600, ge=10)
    # A worker renews the heartbeat of its RUNNING jobs every third of this; the recovery fails the jobs
    # of a worker silent this long (a dead worker's jobs are eligible again within about a minute).
    job_heartbeat_timeout_s: int = Field(default=30, ge=3, le=3600)
    # How often the recovery sensor looks for jobs of dead workers and batches to close.
    recovery_interval_s: int = Field(default=30, ge=5, le=3600)

    # Scale-out (README "Scaling out"). TRIAGE_WORKERS: how many workers run chunks at once; a batch is cut
    # into at least that many chunks.
    triage_executor: ExecutorKind = "in_process"
    triage_workers: int = Field(default=1, ge=1, le=256)
    celery_broker_url: str | None = None
    # Celery's result backend; empty: the broker's URL.
    celery_backend_url: str | None = None
    # A chunk whose worker died is handed to another worker after this long (the broker's visibility timeout,
    # with late acknowledgement). Make it longer than the longest chunk, or a slow chunk is handed out twice:
    # no job is started twice (row locks), the copy waits for the live worker's jobs, but it holds a worker.
    celery_visibility_timeout_s: int = Field(default=300, ge=10)
    # The Kubernetes executor's image of the user code (the Helm chart's user deployment image).
    k8s_job_image: str | None = None
    failure_rate_threshold: float = Field(default=0.2, ge=0.0, le=1.0)
    # Above this share of the last batch's stored answers waiting for a person, the asset check warns.
    review_share_warn: float = Field(default=0.5, ge=0.0, le=1.0)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    dagster_port: int = Field(default=3000, ge=1, le=65535)
    # The code server the webserver and the daemon share (loopback only).
    dagster_code_server_port: int = Field(default=4266, ge=1, le=65535)
    dagster_db_name: str = "dagster"

    embedded_pg_dir: Path = PROJECT_ROOT / ".pgdata"
    embedded_pg_port: int = Field(default=54329, ge=1, le=65535)

    # API authentication (see the README's "Reliability and security"). Turning it off is for local
    # development only: every request is then treated as an admin, and the API logs a warning at start.
    auth_enabled: bool = True
    admin_api_key: SecretStr | None = Field(default=None, description="Bearer token with the admin role.")

    # Webhooks (README "Webhooks"). The key seals the endpoints' signing secrets at rest (a Fernet key).
    webhook_secrets_key: SecretStr | None = None
    # Lifts the SSRF guard (loopback, private, link-local targets): tests and local development only.
    webhook_allow_private_targets: bool = False
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # An endpoint is disabled after this many consecutive failed attempts, once the run is at least
    # WEBHOOK_DISABLE_MIN_FAILING_S old (a burst to a receiver down for a minute does not disable it).
    webhook_disable_after_failures: int = Field(default=50, ge=1)
    webhook_disable_min_failing_s: int = Field(default=3600, ge=0)
    # After a secret rotation the previous secret keeps signing (beside the new one) this long.
    webhook_secret_grace_s: int = Field(default=86_400, ge=0, le=30 * 86_400)
    # The sensor is the deliverer Dagster shows and a backstop; `triage run`'s watcher (woken by the outbox's
    # NOTIFY) is what delivers within milliseconds. A sensor looking every 5 s cost 2% of a core at idle.
    webhook_sensor_interval_s: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _executor_has_what_it_needs(self) -> "Settings":
        if self.triage_executor == "celery" and not self.celery_broker_url:
            raise ValueError("TRIAGE_EXECUTOR=celery needs CELERY_BROKER_URL (for example redis://127.0.0.1:6379/0)")
        return self

    @field_validator("celery_broker_url", "celery_backend_url", "k8s_job_image", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("celery_broker_url", "celery_backend_url")
    @classmethod
    def _celery_url_has_a_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("must be a broker URL such as redis://host:6379/0 or amqp://user@host//")
        return value

    def celery_backend(self) -> str | None:
        """Celery's result backend: CELERY_BACKEND_URL, else the broker."""
        return self.celery_backend_url or self.celery_broker_url

    @field_validator("webhook_secrets_key", mode="before")
    @classmethod
    def _secrets_key_is_fernet(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or raw == "":
            return None
        from triage_pipeline.infrastructure.webhooks.secret_box import valid_secrets_key

        if not isinstance(raw, str) or not valid_secrets_key(raw):
            raise ValueError(
                "must be a Fernet key, 32 url-safe base64-encoded bytes (generate one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
        return raw

    @field_validator("admin_api_key", mode="before")
    @classmethod
    def _admin_key_is_long_enough(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or len(raw) < ADMIN_API_KEY_MIN_LENGTH or raw != raw.strip():
            raise ValueError(
                f"must be at least {ADMIN_API_KEY_MIN_LENGTH} characters without surrounding blanks "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return raw

    @field_validator("job_lease_s")
    @classmethod
    def _lease_outlasts_an_llm_call(cls, value: int, info: ValidationInfo) -> int:
        # A job may wait for a free LLM slot, then make its call; both are bounded by the LLM timeouts. A
        # lease shorter than that would let recovery fail a live call, whose ticket could then be triaged twice.
        connect, read = info.data.get("llm_connect_timeout_s"), info.data.get("llm_read_timeout_s")
        if connect is None or read is None:  # reported on their own
            return value
        bound = 2 * (connect + read)
        if value <= bound:
            raise ValueError(
                f"must be longer than 2 x (LLM_CONNECT_TIMEOUT_S + LLM_READ_TIMEOUT_S) = {bound:g} s, "
                "or a slow but live LLM call could be recovered and its ticket triaged twice"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", "llm_base_url", "db_host", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("llm_base_url")
    @classmethod
    def _llm_hosts_are_well_formed(cls, value: str | None) -> str | None:
        # HostSpecError is a ValueError: load_settings reports it as `LLM_BASE_URL: <the bad entry>`.
        return None if value is None else normalise_llm_hosts(value)

    def configured_database_url(self) -> str | None:
        """DATABASE_URL if set, else one built from DB_*, else None (the embedded server is used)."""
        if self.database_url is not None:
            return sqlalchemy_url(str(self.database_url))
        if self.db_host is not None:
            password = quote(self.db_password.get_secret_value(), safe="")
            auth = quote(self.db_user, safe="") + (f":{password}" if password else "")
            return f"postgresql+psycopg://{auth}@{self.db_host}:{self.db_port}/{quote(self.db_name, safe='')}"
        return None

    def effective_llm_base_url(self) -> str:
        """LLM_BASE_URL as validated (one URL, or the host list with its `#N`s), or the offline default server
        that `make run` starts on loopback; what a child process is given as its LLM_BASE_URL."""
        if self.llm_base_url is not None:
            return self.llm_base_url
        return f"http://127.0.0.1:{self.offline_llm_port}"

    def llm_hosts(self) -> list[LlmHostSpec]:
        """The LLM hosts, each with its concurrency: its `#N`, else LLM_CONCURRENCY."""
        return parse_llm_hosts(self.effective_llm_base_url(), default_concurrency=self.llm_concurrency)


def sqlalchemy_url(url: str) -> str:
    """Force the psycopg 3 driver on a plain `postgresql://` / `postgres://` URL."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings() -> Settings:
    """Read the settings, turning a validation error into one clear line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise SettingsError(f"invalid configuration: {problems}") from None


def _problem(error: Any) -> str:
    """One bad variable: its name, what is wrong, and the rejected value (a rule across several variables
    names them in its message and shows no value)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error.get("loc"):
        return message
    return f"{'_'.join(str(p) for p in error['loc']).upper()}: {message} (got {_shown_input(error)})"


def _shown_input(error: Any) -> str:
    """The rejected value, or a placeholder for a secret one."""
    if any(str(part) in SECRET_FIELDS for part in error.get("loc", ())):
        return "a value, not shown because it may hold a secret"
    return repr(error.get("input"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
