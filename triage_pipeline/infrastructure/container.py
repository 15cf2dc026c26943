"""The composition root: builds adapters once per process and hands out use cases."""

import threading
from functools import cached_property

from sqlalchemy import Engine, text

from triage_pipeline.application.api_keys import Authenticate, IssueApiKey, RegisterOwner, RevokeApiKey
from triage_pipeline.application.batches import (
    CreateBatch,
    FinishBatch,
    GetBacklog,
    GetBatchProgress,
    ListBatchItems,
    ListLaunchableBatches,
)
from triage_pipeline.application.corrections import CorrectTriage, ExportCorrectionsAsLabels, RetriageTicket
from triage_pipeline.application.evaluation import EvaluatePrompts, ListEvaluations
from triage_pipeline.application.intake import CreateTicket, CreateTickets
from triage_pipeline.application.log_queries import GetBatchLogs
from triage_pipeline.application.owners import CreateOwner, GetOwner
from triage_pipeline.application.prompts import ActivatePrompt, AddPromptVersion, ListPrompts
from triage_pipeline.application.recovery import CountExpiredLeases, RecoverStuckWork
from triage_pipeline.application.ticket_queries import GetTicket, GetTicketLogs, ListTickets
from triage_pipeline.application.triage import TriageJobs, TriageOneJob
from triage_pipeline.domain.ports import Clock, LlmGateway
from triage_pipeline.infrastructure.clock import SystemClock
from triage_pipeline.infrastructure.database import resolve_database_url
from triage_pipeline.infrastructure.db.engine import make_engine
from triage_pipeline.infrastructure.db.unit_of_work import SqlUnitOfWorkFactory
from triage_pipeline.infrastructure.llm.answer_model import answer_json_schema
from triage_pipeline.infrastructure.llm.ollama_client import OllamaClient
from triage_pipeline.infrastructure.settings import Settings


class Container:
    """Every adapter and use case of the service, wired from one Settings object."""

    def __init__(
        self,
        settings: Settings,
        *,
        database_url: str | None = None,
        llm: LlmGateway | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._database_url = database_url
        self._llm = llm
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._engine: Engine | None = None

    @cached_property
    def database_url(self) -> str:
        """The database in use (starting the embedded server when none is configured)."""
        return self._database_url or resolve_database_url(self.settings)

    @property
    def engine(self) -> Engine:
        """The process's connection pool (built once, even when first used by two threads at once)."""
        with self._lock:
            if self._engine is None:
                self._engine = make_engine(self.database_url)
            return self._engine

    @cached_property
    def uow(self) -> SqlUnitOfWorkFactory:
        """Unit-of-work factory."""
        return SqlUnitOfWorkFactory(self.engine)

    @cached_property
    def llm(self) -> LlmGateway:
        """The LLM gateway (Ollama protocol)."""
        if self._llm is not None:
            return self._llm
        return OllamaClient(
            base_url=self.settings.effective_llm_base_url(),
            model=self.settings.llm_model,
            connect_timeout_s=self.settings.llm_connect_timeout_s,
            read_timeout_s=self.settings.llm_read_timeout_s,
        )

    @cached_property
    def create_owner(self) -> CreateOwner:
        """Use case."""
        return CreateOwner(self.uow, self.clock)

    @cached_property
    def get_owner(self) -> GetOwner:
        """Use case."""
        return GetOwner(self.uow)

    @cached_property
    def create_ticket(self) -> CreateTicket:
        """Use case."""
        return CreateTicket(self.uow, self.clock)

    @cached_property
    def create_tickets(self) -> CreateTickets:
        """Use case."""
        return CreateTickets(self.uow, self.clock)

    @cached_property
    def get_ticket(self) -> GetTicket:
        """Use case."""
        return GetTicket(self.uow)

    @cached_property
    def list_tickets(self) -> ListTickets:
        """Use case."""
        return ListTickets(self.uow)

    @cached_property
    def ticket_logs(self) -> GetTicketLogs:
        """Use case."""
        return GetTicketLogs(self.uow)

    @cached_property
    def create_batch(self) -> CreateBatch:
        """Use case."""
        return CreateBatch(self.uow, self.clock)

    @cached_property
    def finish_batch(self) -> FinishBatch:
        """Use case."""
        return FinishBatch(self.uow, self.clock)

    @cached_property
    def batch_progress(self) -> GetBatchProgress:
        """Use case."""
        return GetBatchProgress(self.uow)

    @cached_property
    def batch_job_ids(self) -> ListBatchItems:
        """Use case."""
        return ListBatchItems(self.uow)

    @cached_property
    def launchable_batches(self) -> ListLaunchableBatches:
        """Use case."""
        return ListLaunchableBatches(self.uow)

    @cached_property
    def backlog(self) -> GetBacklog:
        """Use case."""
        return GetBacklog(self.uow, self.clock)

    @cached_property
    def batch_logs(self) -> GetBatchLogs:
        """Use case."""
        return GetBatchLogs(self.uow)

    @cached_property
    def triage_one(self) -> TriageOneJob:
        """Use case."""
        return TriageOneJob(self.uow, self.llm, self.clock)

    @cached_property
    def triage_jobs(self) -> TriageJobs:
        """Use case."""
        return TriageJobs(self.uow, self.triage_one)

    @cached_property
    def recover(self) -> RecoverStuckWork:
        """Use case."""
        return RecoverStuckWork(self.uow, self.clock)

    @cached_property
    def expired_leases(self) -> CountExpiredLeases:
        """Use case."""
        return CountExpiredLeases(self.uow, self.clock)

    @cached_property
    def list_prompts(self) -> ListPrompts:
        """Use case."""
        return ListPrompts(self.uow)

    @cached_property
    def add_prompt(self) -> AddPromptVersion:
        """Use case."""
        return AddPromptVersion(self.uow, self.clock, answer_json_schema)

    @cached_property
    def activate_prompt(self) -> ActivatePrompt:
        """Use case."""
        return ActivatePrompt(self.uow, self.clock)

    @cached_property
    def correct_triage(self) -> CorrectTriage:
        """Use case."""
        return CorrectTriage(self.uow, self.clock)

    @cached_property
    def retriage(self) -> RetriageTicket:
        """Use case."""
        return RetriageTicket(self.uow, self.clock)

    @cached_property
    def corrections_as_labels(self) -> ExportCorrectionsAsLabels:
        """Use case."""
        return ExportCorrectionsAsLabels(self.uow)

    @cached_property
    def evaluate(self) -> EvaluatePrompts:
        """Use case."""
        return EvaluatePrompts(self.uow, self.llm, self.clock)

    @cached_property
    def evaluations(self) -> ListEvaluations:
        """Use case."""
        return ListEvaluations(self.uow)

    @cached_property
    def authenticate(self) -> Authenticate:
        """Use case (the ADMIN_API_KEY setting is an admin token)."""
        admin = self.settings.admin_api_key
        return Authenticate(self.uow, admin.get_secret_value() if admin is not None else None)

    @cached_property
    def issue_api_key(self) -> IssueApiKey:
        """Use case."""
        return IssueApiKey(self.uow, self.clock)

    @cached_property
    def register_owner(self) -> RegisterOwner:
        """Use case."""
        return RegisterOwner(self.uow, self.clock)

    @cached_property
    def revoke_api_key(self) -> RevokeApiKey:
        """Use case."""
        return RevokeApiKey(self.uow, self.clock)

    def ping_database(self) -> None:
        """Run `SELECT 1`; raises the driver's error when the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()

    def close(self) -> None:
        """Release the connection pool and the LLM client."""
        if self._engine is not None:
            self._engine.dispose()
        close = getattr(self.__dict__.get("llm"), "close", None)
        if callable(close):
            close()
