"""API keys and the caller they authenticate: who may do what.

A key is shown once, when it is issued, as `tt_<lookup>_<secret>`. Only `lookup` (a random public
handle that finds the row) and a keyed hash of `secret` are stored: HMAC-SHA256 with a random per-key
salt. A stolen database therefore yields no usable key, and a key is checked in constant time.
"""

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from triage_pipeline.domain.exceptions import InvalidTransition

TOKEN_PREFIX = "tt_"
API_KEY_NAME_MAX_LENGTH = 200


class ApiKeyRole(StrEnum):
    """What a key may do."""

    ADMIN = "admin"  # manage owners, keys, prompts and batches; read and write every owner's tickets
    OWNER = "owner"  # create and read the tickets of one owner, nothing else


def hash_secret(salt: str, secret: str) -> str:
    """HMAC-SHA256 of the secret keyed with the hex salt, as hex."""
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def format_token(lookup: str, secret: str) -> str:
    """The bearer token a client sends."""
    return f"{TOKEN_PREFIX}{lookup}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """(lookup, secret) of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    lookup, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not lookup or not secret or not lookup.isalnum():
        return None
    return lookup, secret


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An issued key: its role, its owner (owner keys only), and the hash of its secret."""

    id: UUID
    lookup: str
    salt: str
    secret_hash: str
    role: ApiKeyRole
    owner_id: UUID | None
    name: str
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        if (self.role is ApiKeyRole.OWNER) != (self.owner_id is not None):
            raise ValueError("an owner key names exactly one owner; an admin key names none")

    @property
    def is_active(self) -> bool:
        """True until revoked."""
        return self.revoked_at is None

    def verifies(self, secret: str) -> bool:
        """True when the key is active and `secret` is its secret (constant-time comparison)."""
        matches = hmac.compare_digest(hash_secret(self.salt, secret), self.secret_hash)
        return matches and self.is_active

    def revoke(self, now: datetime) -> "ApiKey":
        """Active -> revoked; a revoked key authenticates nothing."""
        if not self.is_active:
            raise InvalidTransition("api key", "revoked", "revoked")
        return replace(self, revoked_at=now, updated_at=now)

    def principal(self) -> "Principal":
        """Does not check that the key is active or the secret right: call `verifies` first."""
        return Principal(role=self.role, owner_id=self.owner_id, key_id=self.id)


@dataclass(frozen=True, slots=True)
class Principal:
    role: ApiKeyRole
    owner_id: UUID | None = None
    key_id: UUID | None = None  # None: the ADMIN_API_KEY setting, or authentication turned off

    @property
    def is_admin(self) -> bool:
        return self.role is ApiKeyRole.ADMIN

    def may_act_for(self, owner_id: UUID) -> bool:
        """True when the caller may create and read this owner's tickets."""
        return self.is_admin or self.owner_id == owner_id

    def visible_owner(self) -> UUID | None:
        """The only owner whose data the caller sees, or None when it sees every owner's (admin)."""
        return None if self.is_admin else self.owner_id


ADMIN = Principal(role=ApiKeyRole.ADMIN)
