"""API keys as requested by an admin and as returned (the token only once, at creation)."""

from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.owner import OwnerOut
from api.schemas.text import NUL_FREE_PATTERN, STORABLE
from triage_pipeline.application.api_keys import IssueApiKeyCommand, IssuedApiKey, RegisteredOwner
from triage_pipeline.domain.api_key import API_KEY_NAME_MAX_LENGTH, ApiKey, ApiKeyRole

KeyName = Annotated[
    str,
    Field(
        max_length=API_KEY_NAME_MAX_LENGTH,
        description=f"A label for people (e.g. which tool holds the key), up to {API_KEY_NAME_MAX_LENGTH} characters.",
        json_schema_extra={"pattern": NUL_FREE_PATTERN},
    ),
    STORABLE,
]
TOKEN_DESCRIPTION = (
    "The key itself, to send as `Authorization: Bearer <api_key>`. Shown only in this response: only a salted"
    " hash is stored, so a lost key cannot be recovered, only revoked and replaced."
)


class ApiKeyCreate(BaseModel):
    """An admin key (no owner) or a key of one owner."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "owner", "owner_id": "00000000-0000-0000-0000-000000000000", "name": "helpdesk"},
            ]
        },
    )

    role: Literal["admin", "owner"]
    owner_id: UUID | None = Field(default=None, description="Required for an owner key; absent for an admin key.")
    name: KeyName = ""

    @model_validator(mode="after")
    def _owner_matches_role(self) -> Self:
        if self.role == "owner" and self.owner_id is None:
            raise ValueError("an owner key needs owner_id")
        if self.role == "admin" and self.owner_id is not None:
            raise ValueError("an admin key has no owner_id")
        return self

    def to_command(self) -> IssueApiKeyCommand:
        """The use-case input."""
        return IssueApiKeyCommand(role=ApiKeyRole(self.role), owner_id=self.owner_id, name=self.name)


class ApiKeyOut(BaseModel):
    """A key as stored: never its secret."""

    id: UUID
    role: ApiKeyRole
    owner_id: UUID | None
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_domain(cls, key: ApiKey) -> Self:
        """The DTO of a domain key."""
        return cls(
            id=key.id,
            role=key.role,
            owner_id=key.owner_id,
            name=key.name,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class IssuedApiKeyOut(ApiKeyOut):
    """A key just issued, with its token (shown once)."""

    api_key: str = Field(description=TOKEN_DESCRIPTION)

    @classmethod
    def from_issued(cls, issued: IssuedApiKey) -> Self:
        """The DTO of a new key."""
        return cls(**ApiKeyOut.from_domain(issued.key).model_dump(), api_key=issued.token)


class OwnerCreated(OwnerOut):
    """A new owner with its first owner key (shown once)."""

    api_key: str = Field(description=TOKEN_DESCRIPTION)
    api_key_id: UUID = Field(description="Id of that key, to revoke it later.")

    @classmethod
    def from_registered(cls, registered: RegisteredOwner) -> Self:
        """The DTO of a registered owner."""
        return cls(
            **OwnerOut.from_domain(registered.owner).model_dump(),
            api_key=registered.issued.token,
            api_key_id=registered.issued.key.id,
        )
