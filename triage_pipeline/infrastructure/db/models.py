"""SQLAlchemy 2 typed ORM models: the tables, as the Alembic migrations create them."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention so constraint names are stable across migrations."""

    metadata = MetaData(naming_convention=NAMING)


class Timestamped:
    """created_at / updated_at columns (timestamptz)."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OwnerRow(Timestamped, Base):
    __tablename__ = "owners"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class TicketRow(Timestamped, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("owner_id", "external_id", name="uq_tickets_owner_external_id"),
        CheckConstraint("status IN ('PENDING','ON_TRIAGE','COMPLETED','FAILED')", name="status"),
        Index("ix_tickets_owner_created", "owner_id", "created_at", "id"),
        Index("ix_tickets_status_created", "status", "created_at", "id"),
        Index("ix_tickets_created", "created_at", "id"),
        CheckConstraint("review_status IN ('NEEDS_REVIEW','AUTO_APPLIED','REVIEWED')", name="review_status"),
        Index("ix_tickets_review_created", "review_status", "created_at", "id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("owners.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(16))
    triage_result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    review_status: Mapped[str | None] = mapped_column(String(16))


class TriageJobRow(Timestamped, Base):
    """Table `triage_jobs`; `batch_id` is the RUNNING batch holding the job, if any."""

    __tablename__ = "triage_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING','RUNNING','DONE','FAILED')", name="status"),
        CheckConstraint("attempts >= 0 AND attempts <= 3", name="attempts"),
        Index(
            "ix_triage_jobs_eligible",
            "created_at",
            postgresql_where=text("batch_id IS NULL AND (status = 'PENDING' OR (status = 'FAILED' AND attempts < 3))"),
        ),
        Index("ix_triage_jobs_running", "started_at", postgresql_where=text("status = 'RUNNING'")),
        Index("ix_triage_jobs_ticket", "ticket_id"),
        Index("ix_triage_jobs_batch", "batch_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    ticket_id: Mapped[UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    batch_id: Mapped[UUID | None] = mapped_column(ForeignKey("triage_job_batches.id", ondelete="SET NULL"))


class TriageJobBatchRow(Timestamped, Base):
    __tablename__ = "triage_job_batches"
    __table_args__ = (
        CheckConstraint("status IN ('RUNNING','DONE')", name="status"),
        CheckConstraint("origin IN ('api','schedule','backlog_sensor','run')", name="origin"),
        Index("ix_triage_job_batches_running", "created_at", postgresql_where=text("status = 'RUNNING'")),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    total_items: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(32), server_default="api")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TriageJobBatchItemRow(Timestamped, Base):
    __tablename__ = "triage_job_batch_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "job_id", name="uq_triage_job_batch_items_batch_job"),
        CheckConstraint("status IN ('PENDING','RUNNING','DONE','FAILED')", name="status"),
        Index("ix_triage_job_batch_items_job", "job_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    batch_id: Mapped[UUID] = mapped_column(ForeignKey("triage_job_batches.id", ondelete="CASCADE"))
    job_id: Mapped[UUID] = mapped_column(ForeignKey("triage_jobs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))


class PromptRow(Timestamped, Base):
    """Table `prompts`: immutable versions, one active per name."""

    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_prompts_name_version"),
        CheckConstraint("version >= 1", name="version"),
        Index("uq_prompts_one_active", "name", unique=True, postgresql_where=text("is_active")),
        CheckConstraint("few_shot_k BETWEEN 0 AND 20", name="few_shot_k"),
        CheckConstraint("review_threshold BETWEEN 0 AND 1", name="review_threshold"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    system_text: Mapped[str] = mapped_column(Text)
    user_template: Mapped[str] = mapped_column(Text)
    output_schema: Mapped[dict[str, Any]] = mapped_column(JSONB)
    model_options: Mapped[dict[str, Any]] = mapped_column(JSONB)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    few_shot_k: Mapped[int] = mapped_column(Integer, server_default="0")
    review_threshold: Mapped[float] = mapped_column(Float, server_default="0")
    example_bank: Mapped[bool] = mapped_column(Boolean, server_default="false")


class TriageJobLogRow(Timestamped, Base):
    """Table `triage_job_logs`: one row per attempt, never updated."""

    __tablename__ = "triage_job_logs"
    __table_args__ = (
        CheckConstraint("outcome IN ('SUCCEEDED','FAILED')", name="outcome"),
        Index("ix_triage_job_logs_ticket", "ticket_id", "started_at"),
        Index("ix_triage_job_logs_batch", "batch_id"),
        Index("ix_triage_job_logs_job", "job_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    job_id: Mapped[UUID] = mapped_column(ForeignKey("triage_jobs.id", ondelete="CASCADE"))
    ticket_id: Mapped[UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    batch_id: Mapped[UUID | None] = mapped_column(ForeignKey("triage_job_batches.id", ondelete="SET NULL"))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    prompt_id: Mapped[UUID | None] = mapped_column(ForeignKey("prompts.id", ondelete="RESTRICT"))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    latency_ms: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    raw_output: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error_class: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    example_ids: Mapped[list[str] | None] = mapped_column(JSONB)
    confidence: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    llm_host: Mapped[str | None] = mapped_column(String(300))


class EvaluationRunRow(Timestamped, Base):
    """Table `evaluation_runs`: one evaluation of a prompt version on a labelled file."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (Index("ix_evaluation_runs_prompt", "prompt_name", "prompt_version", "created_at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    prompt_id: Mapped[UUID] = mapped_column(ForeignKey("prompts.id", ondelete="RESTRICT"))
    prompt_name: Mapped[str] = mapped_column(String(100))
    prompt_version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(String(500))
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)


class TriageCorrectionRow(Timestamped, Base):
    """Table `triage_corrections`: human corrections, beside (never over) the model's answer."""

    __tablename__ = "triage_corrections"
    __table_args__ = (
        CheckConstraint("priority IN ('low','normal','high','urgent')", name="priority"),
        Index("ix_triage_corrections_ticket", "ticket_id", "created_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    ticket_id: Mapped[UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    model_category: Mapped[str | None] = mapped_column(String(64))
    model_priority: Mapped[str | None] = mapped_column(String(16))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    corrected_by: Mapped[str] = mapped_column(String(200))


class PromptActivationRow(Timestamped, Base):
    """Table `prompt_activations`: the audit trail of which version became active when."""

    __tablename__ = "prompt_activations"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    prompt_id: Mapped[UUID] = mapped_column(ForeignKey("prompts.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    activated_by: Mapped[str] = mapped_column(String(200))
    forced: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ApiKeyRow(Timestamped, Base):
    """Table `api_keys`: issued keys, stored as a public lookup handle and a salted HMAC of the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("lookup", name="uq_api_keys_lookup"),
        CheckConstraint("role IN ('admin','owner')", name="role"),
        CheckConstraint(
            "(role = 'owner' AND owner_id IS NOT NULL) OR (role = 'admin' AND owner_id IS NULL)", name="role_owner"
        ),
        Index("ix_api_keys_owner", "owner_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    lookup: Mapped[str] = mapped_column(String(32))
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[UUID | None] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TriageExampleRow(Timestamped, Base):
    """Table `triage_examples`: labelled examples; `search_text` carries the trigram index of the
    similarity search, `similarity_bands` the MinHash bands a large bank takes its candidates by
    (`domain.similarity_bands`), `text_key` the sha256 of the normalised text (see `domain.example`)."""

    __tablename__ = "triage_examples"
    __table_args__ = (
        CheckConstraint("source IN ('correction','import')", name="source"),
        CheckConstraint("priority IN ('low','normal','high','urgent')", name="priority"),
        Index(
            "ix_triage_examples_search",
            "search_text",
            postgresql_using="gist",
            postgresql_ops={"search_text": "gist_trgm_ops(siglen=512)"},
        ),
        Index(
            "ix_triage_examples_bands",
            "similarity_bands",
            postgresql_using="gin",
            postgresql_ops={"similarity_bands": "gin__int_ops"},
        ),
        Index("ix_triage_examples_owner_created", "owner_id", "created_at", "id"),
        Index("uq_triage_examples_ticket", "ticket_id", unique=True, postgresql_where=text("ticket_id IS NOT NULL")),
        Index(
            "uq_triage_examples_owner_text",
            "owner_id",
            "text_key",
            unique=True,
            postgresql_where=text("ticket_id IS NULL"),
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[UUID | None] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    sentiment: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[UUID | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    correction_id: Mapped[UUID | None] = mapped_column(ForeignKey("triage_corrections.id", ondelete="SET NULL"))
    reference: Mapped[str] = mapped_column(String(500), server_default="")
    search_text: Mapped[str] = mapped_column(Text)
    similarity_bands: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    text_key: Mapped[str] = mapped_column(String(64))
    classifier_terms: Mapped[str] = mapped_column(Text, server_default="")
    """The terms the example bank's classifier counts (`domain.example_classifier`), one per line."""


class ExampleTermCountRow(Base):
    """Table `example_term_counts`: how many examples of an owner (NULL: shared) with this label of this
    field contain this term. Kept by triggers on `triage_examples` (migration 0015), never written here."""

    __tablename__ = "example_term_counts"
    __table_args__ = (
        Index(
            "uq_example_term_counts",
            "term",
            "owner_id",
            "field",
            "label",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )
    # Never loaded as entities (read by statements); the mapper needs an identity all the same.
    __mapper_args__ = {"primary_key": ["term", "owner_id", "field", "label"]}  # noqa: RUF012

    term: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[UUID | None] = mapped_column()
    field: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    examples: Mapped[int] = mapped_column(Integer)


class ExampleLabelCountRow(Base):
    """Table `example_label_counts`: per owner (NULL: shared), field and label, the examples and the terms
    they hold in all. Kept by the same triggers."""

    __tablename__ = "example_label_counts"
    __table_args__ = (
        Index("uq_example_label_counts", "owner_id", "field", "label", unique=True, postgresql_nulls_not_distinct=True),
    )
    __mapper_args__ = {"primary_key": ["owner_id", "field", "label"]}  # noqa: RUF012

    owner_id: Mapped[UUID | None] = mapped_column()
    field: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    examples: Mapped[int] = mapped_column(Integer)
    terms: Mapped[int] = mapped_column(BigInteger)


class WebhookEndpointRow(Timestamped, Base):
    """Table `webhook_endpoints`: subscriptions; `owner_id` NULL is an admin's subscription to every owner.

    `secret` and `previous_secret` hold the signing secrets encrypted (`infrastructure.webhooks.secret_box`).
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("consecutive_failures >= 0", name="failures"),
        Index("ix_webhook_endpoints_owner_id", "owner_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[UUID | None] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    description: Mapped[str] = mapped_column(String(500), server_default="")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookEventRow(Timestamped, Base):
    """Table `webhook_events`: the outbox, written in the transaction of the change each event tells of."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_owner_created", "owner_id", "created_at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[UUID | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)


class WebhookDeliveryRow(Timestamped, Base):
    """Table `webhook_deliveries`: one event to one endpoint, retried until DELIVERED or FAILED."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_id"),
        CheckConstraint("status IN ('PENDING','DELIVERED','FAILED')", name="status"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'PENDING'")),
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "created_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    event_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[UUID | None] = mapped_column()
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDeliveryAttemptRow(Timestamped, Base):
    """Table `webhook_delivery_attempts`: the delivery log, one row per request sent."""

    __tablename__ = "webhook_delivery_attempts"
    __table_args__ = (
        Index("ix_webhook_delivery_attempts_endpoint_started", "endpoint_id", "started_at"),
        Index("ix_webhook_delivery_attempts_delivery_id", "delivery_id"),
        Index("ix_webhook_delivery_attempts_started_at", "started_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    delivery_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    endpoint_id: Mapped[UUID] = mapped_column()
    event_id: Mapped[UUID] = mapped_column()
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    response_excerpt: Mapped[str | None] = mapped_column(String(1000))
    succeeded: Mapped[bool] = mapped_column(Boolean)


class PipelineStepOutputRow(Base):
    """Table `pipeline_step_outputs`: a Dagster step's output when steps run on several machines
    (`defs.io_manager`); `key` is Dagster's identifier of the output, joined with '/'."""

    __tablename__ = "pipeline_step_outputs"
    __table_args__ = (Index("ix_pipeline_step_outputs_created", "created_at"),)

    key: Mapped[str] = mapped_column(String(1000), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExampleSeedRow(Timestamped, Base):
    """Table `example_seeds`: how far a shipped example file has been imported into the shared bank
    (`SeedSharedExamples`), so a start imports only what a newer release appended to it."""

    __tablename__ = "example_seeds"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_reference: Mapped[str] = mapped_column(String(500))
