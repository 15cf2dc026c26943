"""API keys as requested by an admin and as returned (the token only once, at creation)."""

from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.owner import OwnerOut
from api.schemas.text import NUL_FREE_PATTERN, STORABLE
from triage_pipeline.application.api_keys import IssueApiKeyCommand, IssuedApiKey, RegisteredOwner
from triage_pipeline.domain.api_key import API_KEY_NAME_MAX_LENGTH, ApiKeyRole

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

    # `ApiKeyOut.model_validate(key)` reads only these attributes of a domain `ApiKey` (not its hash nor salt).
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    role: ApiKeyRole
    owner_id: UUID | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedApiKeyOut(ApiKeyOut):
    """A key just issued, with its token (shown once)."""

    api_key: str = Field(description=TOKEN_DESCRIPTION)

    @classmethod
    def from_issued(cls, issued: IssuedApiKey) -> Self:
        """The key's fields next to its token, flattened from the two parts of `IssuedApiKey`."""
        return cls(**dict(ApiKeyOut.model_validate(issued.key)), api_key=issued.token)


class OwnerCreated(OwnerOut):
    """A new owner with its first owner key (shown once)."""

    api_key: str = Field(description=TOKEN_DESCRIPTION)
    api_key_id: UUID = Field(description="Id of that key, to revoke it later.")

    @classmethod
    def from_registered(cls, registered: RegisteredOwner) -> Self:
        """The owner's fields next to its first key's token and id, flattened from `RegisteredOwner`."""
        owner = OwnerOut.model_validate(registered.owner)
        return cls(**dict(owner), api_key=registered.issued.token, api_key_id=registered.issued.key.id)
