"""`Annotated` dependencies: the container from app.state, and each use case a router needs."""

from collections.abc import Callable
from typing import Annotated, cast

from fastapi import Depends, Request

from triage_pipeline.application.api_keys import IssueApiKey, RegisterOwner, RevokeApiKey
from triage_pipeline.application.batches import CreateBatch, GetBatchProgress
from triage_pipeline.application.intake import CreateTicket, CreateTickets
from triage_pipeline.application.owners import CreateOwner, GetOwner
from triage_pipeline.application.ticket_queries import GetTicket, GetTicketLogs, ListTickets
from triage_pipeline.infrastructure.container import Container


def get_container(request: Request) -> Container:
    """The container the application was started with."""
    return cast(Container, request.app.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]


def get_database_probe(container: ContainerDep) -> Callable[[], None]:
    """A check that the database answers (raises when it does not)."""
    return container.ping_database


def get_create_ticket(container: ContainerDep) -> CreateTicket:
    """Use case CreateTicket."""
    return container.create_ticket


def get_create_tickets(container: ContainerDep) -> CreateTickets:
    """Use case CreateTickets."""
    return container.create_tickets


def get_get_ticket(container: ContainerDep) -> GetTicket:
    """Use case GetTicket."""
    return container.get_ticket


def get_list_tickets(container: ContainerDep) -> ListTickets:
    """Use case ListTickets."""
    return container.list_tickets


def get_ticket_logs(container: ContainerDep) -> GetTicketLogs:
    """Use case GetTicketLogs."""
    return container.ticket_logs


def get_create_owner(container: ContainerDep) -> CreateOwner:
    """Use case CreateOwner."""
    return container.create_owner


def get_get_owner(container: ContainerDep) -> GetOwner:
    """Use case GetOwner."""
    return container.get_owner


def get_create_batch(container: ContainerDep) -> CreateBatch:
    """Use case CreateBatch."""
    return container.create_batch


def get_batch_progress(container: ContainerDep) -> GetBatchProgress:
    """Use case GetBatchProgress."""
    return container.batch_progress


DatabaseProbeDep = Annotated[Callable[[], None], Depends(get_database_probe)]
CreateTicketDep = Annotated[CreateTicket, Depends(get_create_ticket)]
CreateTicketsDep = Annotated[CreateTickets, Depends(get_create_tickets)]
GetTicketDep = Annotated[GetTicket, Depends(get_get_ticket)]
ListTicketsDep = Annotated[ListTickets, Depends(get_list_tickets)]
TicketLogsDep = Annotated[GetTicketLogs, Depends(get_ticket_logs)]
CreateOwnerDep = Annotated[CreateOwner, Depends(get_create_owner)]
GetOwnerDep = Annotated[GetOwner, Depends(get_get_owner)]
CreateBatchDep = Annotated[CreateBatch, Depends(get_create_batch)]
BatchProgressDep = Annotated[GetBatchProgress, Depends(get_batch_progress)]


def get_register_owner(container: ContainerDep) -> RegisterOwner:
    """Use case RegisterOwner (owner + first key)."""
    return container.register_owner


def get_issue_api_key(container: ContainerDep) -> IssueApiKey:
    """Use case IssueApiKey."""
    return container.issue_api_key


def get_revoke_api_key(container: ContainerDep) -> RevokeApiKey:
    """Use case RevokeApiKey."""
    return container.revoke_api_key


RegisterOwnerDep = Annotated[RegisterOwner, Depends(get_register_owner)]
IssueApiKeyDep = Annotated[IssueApiKey, Depends(get_issue_api_key)]
RevokeApiKeyDep = Annotated[RevokeApiKey, Depends(get_revoke_api_key)]
