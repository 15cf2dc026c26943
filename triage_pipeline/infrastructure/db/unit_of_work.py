"""The SQLAlchemy unit of work: one Session (one transaction) shared by every repository."""

from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from triage_pipeline.domain.ports import (
    ApiKeyRepository,
    BatchRepository,
    CorrectionRepository,
    EvaluationRunRepository,
    ExampleRepository,
    OwnerRepository,
    PromptActivationRepository,
    PromptRepository,
    TicketRepository,
    TriageJobLogRepository,
    TriageJobRepository,
)
from triage_pipeline.domain.webhook_ports import WebhookOutbox, WebhookRepository
from triage_pipeline.infrastructure.db.api_key_repository import SqlApiKeyRepository
from triage_pipeline.infrastructure.db.batch_repository import SqlBatchRepository
from triage_pipeline.infrastructure.db.example_repository import SqlExampleRepository
from triage_pipeline.infrastructure.db.owner_repository import SqlOwnerRepository
from triage_pipeline.infrastructure.db.prompt_repository import SqlPromptRepository
from triage_pipeline.infrastructure.db.quality_repositories import (
    SqlCorrectionRepository,
    SqlEvaluationRunRepository,
    SqlPromptActivationRepository,
)
from triage_pipeline.infrastructure.db.ticket_repository import SqlTicketRepository
from triage_pipeline.infrastructure.db.triage_job_log_repository import SqlTriageJobLogRepository
from triage_pipeline.infrastructure.db.triage_job_repository import SqlTriageJobRepository
from triage_pipeline.infrastructure.db.webhook_outbox_repository import SqlWebhookOutbox
from triage_pipeline.infrastructure.db.webhook_repository import SqlWebhookRepository


class SqlUnitOfWork:
    """Repositories over one Session; leaving the block without `commit()` rolls everything back."""

    session: Session
    owners: OwnerRepository
    tickets: TicketRepository
    jobs: TriageJobRepository
    batches: BatchRepository
    prompts: PromptRepository
    logs: TriageJobLogRepository
    evaluations: EvaluationRunRepository
    corrections: CorrectionRepository
    activations: PromptActivationRepository
    api_keys: ApiKeyRepository
    examples: ExampleRepository
    webhooks: WebhookRepository
    outbox: WebhookOutbox

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        self.owners = SqlOwnerRepository(self.session)
        self.tickets = SqlTicketRepository(self.session)
        self.jobs = SqlTriageJobRepository(self.session)
        self.batches = SqlBatchRepository(self.session)
        self.prompts = SqlPromptRepository(self.session)
        self.logs = SqlTriageJobLogRepository(self.session)
        self.evaluations = SqlEvaluationRunRepository(self.session)
        self.corrections = SqlCorrectionRepository(self.session)
        self.activations = SqlPromptActivationRepository(self.session)
        self.api_keys = SqlApiKeyRepository(self.session)
        self.examples = SqlExampleRepository(self.session)
        self.webhooks = SqlWebhookRepository(self.session)
        self.outbox = SqlWebhookOutbox(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back anything uncommitted and close the session."""
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        self.session.commit()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session_factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._session_factory)
