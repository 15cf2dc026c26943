"""Use cases of API keys: issue one, register an owner with its first key, authenticate a token, revoke."""

import hmac
import logging
import secrets
from dataclasses import dataclass
from uuid import UUID, uuid4

from triage_pipeline.domain.api_key import ApiKey, ApiKeyRole, Principal, format_token, hash_secret, split_token
from triage_pipeline.domain.exceptions import NotFound, Unauthenticated
from triage_pipeline.domain.owner import Owner
from triage_pipeline.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)

_LOOKUP_BYTES = 8  # 16 hex characters: finds the row, reveals nothing
_SECRET_BYTES = 32  # 256 random bits
_SALT_BYTES = 16
# Hashed when a token names no key, so an unknown lookup costs what a wrong secret costs.
_DUMMY_SALT = "00" * _SALT_BYTES


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new key and its token; the token exists only here, it is never stored nor shown again."""

    key: ApiKey
    token: str


def _new_key(uow: UnitOfWork, clock: Clock, role: ApiKeyRole, owner_id: UUID | None, name: str) -> IssuedApiKey:
    now = clock.now()
    lookup = secrets.token_hex(_LOOKUP_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    salt = secrets.token_hex(_SALT_BYTES)
    key = ApiKey(
        id=uuid4(),
        lookup=lookup,
        salt=salt,
        secret_hash=hash_secret(salt, secret),
        role=role,
        owner_id=owner_id,
        name=name,
        created_at=now,
        updated_at=now,
    )
    uow.api_keys.add(key)
    return IssuedApiKey(key=key, token=format_token(lookup, secret))


@dataclass(frozen=True, slots=True)
class IssueApiKeyCommand:
    """Issue a key: an admin key (no owner) or a key of one owner."""

    role: ApiKeyRole
    owner_id: UUID | None = None
    name: str = ""


class IssueApiKey:
    """Issue a new key; NotFound when the owner of an owner key does not exist."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: IssueApiKeyCommand) -> IssuedApiKey:
        with self._uow() as uow:
            if command.owner_id is not None and uow.owners.get(command.owner_id) is None:
                raise NotFound("owner", command.owner_id)
            issued = _new_key(uow, self._clock, command.role, command.owner_id, command.name)
            uow.commit()
        logger.info(
            "api key issued",
            extra={"fields": {"key_id": str(issued.key.id), "role": command.role.value, "lookup": issued.key.lookup}},
        )
        return issued


@dataclass(frozen=True, slots=True)
class RegisterOwnerCommand:
    """Create a tenant together with its first key."""

    name: str


@dataclass(frozen=True, slots=True)
class RegisteredOwner:
    """The new owner and its first key (token shown once)."""

    owner: Owner
    issued: IssuedApiKey


class RegisterOwner:
    """Create an owner and an owner key in one transaction: no owner is ever left without a key."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: RegisterOwnerCommand) -> RegisteredOwner:
        now = self._clock.now()
        owner = Owner(id=uuid4(), name=command.name, created_at=now, updated_at=now)
        with self._uow() as uow:
            uow.owners.add(owner)
            issued = _new_key(uow, self._clock, ApiKeyRole.OWNER, owner.id, "initial")
            uow.commit()
        logger.info("owner registered", extra={"fields": {"owner_id": str(owner.id), "key_id": str(issued.key.id)}})
        return RegisteredOwner(owner=owner, issued=issued)


@dataclass(frozen=True, slots=True)
class AuthenticateCommand:
    """Who is calling, by the bearer token presented."""

    token: str


class Authenticate:
    """Map a token to a Principal: the configured admin key, or an issued active key."""

    def __init__(self, uow: UnitOfWorkFactory, admin_token: str | None = None) -> None:
        self._uow = uow
        self._admin_token = admin_token or None

    def execute(self, command: AuthenticateCommand) -> Principal:
        """The caller; Unauthenticated when the token matches no active key (the reason is never told)."""
        token = command.token
        if self._admin_token is not None and hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return Principal(role=ApiKeyRole.ADMIN)
        parts = split_token(token)
        if parts is None:
            raise Unauthenticated()
        lookup, secret = parts
        with self._uow() as uow:
            key = uow.api_keys.by_lookup(lookup)
        if key is None:
            hash_secret(_DUMMY_SALT, secret)
            raise Unauthenticated()
        if not key.verifies(secret):
            logger.warning(
                "api key rejected",
                extra={"fields": {"key_id": str(key.id), "lookup": lookup, "revoked": not key.is_active}},
            )
            raise Unauthenticated()
        return key.principal()


@dataclass(frozen=True, slots=True)
class RevokeApiKeyCommand:
    key_id: UUID


class RevokeApiKey:
    """Revoke a key at once; NotFound when unknown, InvalidTransition when already revoked."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, command: RevokeApiKeyCommand) -> ApiKey:
        with self._uow() as uow:
            key = uow.api_keys.get(command.key_id)
            if key is None:
                raise NotFound("api key", command.key_id)
            revoked = key.revoke(self._clock.now())
            uow.api_keys.update(revoked)
            uow.commit()
        logger.info("api key revoked", extra={"fields": {"key_id": str(key.id), "lookup": key.lookup}})
        return revoked
