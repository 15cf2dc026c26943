"""API keys: hashing, verification, roles, and the IssueApiKey / Authenticate / RevokeApiKey use cases on fakes."""

from types import TracebackType
from typing import Self
from uuid import UUID, uuid4

import pytest

from tests.unit.fakes import FakeClock
from triage_pipeline.application.api_keys import (
    Authenticate,
    AuthenticateCommand,
    IssueApiKey,
    IssueApiKeyCommand,
    RegisterOwner,
    RegisterOwnerCommand,
    RevokeApiKey,
    RevokeApiKeyCommand,
)
from triage_pipeline.domain.api_key import ApiKey, ApiKeyRole, Principal, split_token
from triage_pipeline.domain.exceptions import InvalidTransition, NotFound, Unauthenticated
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner

ADMIN_TOKEN = "configured-admin-token-0123456789"


class _Owners:
    def __init__(self, owners: dict[UUID, Owner]) -> None:
        self.owners = owners

    def add(self, owner: Owner) -> None:
        self.owners[owner.id] = owner

    def get(self, owner_id: UUID) -> Owner | None:
        return self.owners.get(owner_id)


class _Keys:
    def __init__(self, keys: dict[UUID, ApiKey]) -> None:
        self.keys = keys

    def add(self, key: ApiKey) -> None:
        self.keys[key.id] = key

    def get(self, key_id: UUID) -> ApiKey | None:
        return self.keys.get(key_id)

    def by_lookup(self, lookup: str) -> ApiKey | None:
        return next((k for k in self.keys.values() if k.lookup == lookup), None)

    def update(self, key: ApiKey) -> None:
        self.keys[key.id] = key


class KeyUow:
    """Owners and keys in memory; writes land only on commit."""

    def __init__(self) -> None:
        clock = FakeClock()
        now = clock.now()
        self.stored_owners: dict[UUID, Owner] = {DEFAULT_OWNER_ID: Owner(DEFAULT_OWNER_ID, "default", now, now)}
        self.stored_keys: dict[UUID, ApiKey] = {}

    def __call__(self) -> Self:
        return self

    def __enter__(self) -> Self:
        self.owners = _Owners(dict(self.stored_owners))
        self.api_keys = _Keys(dict(self.stored_keys))
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        pass

    def commit(self) -> None:
        self.stored_owners = self.owners.owners
        self.stored_keys = self.api_keys.keys


@pytest.fixture
def uow() -> KeyUow:
    return KeyUow()


def issue(uow: KeyUow, role: ApiKeyRole = ApiKeyRole.OWNER, owner_id: UUID | None = DEFAULT_OWNER_ID) -> str:
    return IssueApiKey(uow, FakeClock()).execute(IssueApiKeyCommand(role, owner_id, "tool")).token  # type: ignore[arg-type]


def authenticate(uow: KeyUow, token: str) -> Principal:
    return Authenticate(uow, ADMIN_TOKEN).execute(AuthenticateCommand(token))  # type: ignore[arg-type]


def test_issued_token_authenticates_as_its_owner_and_only_its_hash_is_stored(uow: KeyUow) -> None:
    token = issue(uow)
    principal = authenticate(uow, token)
    assert (principal.role, principal.owner_id) == (ApiKeyRole.OWNER, DEFAULT_OWNER_ID)
    [stored] = uow.stored_keys.values()
    parts = split_token(token)
    assert parts is not None and parts[0] == stored.lookup
    assert parts[1] not in repr(stored) and token not in repr(stored)
    assert len(stored.secret_hash) == 64 and len(stored.salt) == 32


def test_two_keys_never_share_salt_lookup_or_hash(uow: KeyUow) -> None:
    issue(uow)
    issue(uow)
    first, second = uow.stored_keys.values()
    assert first.lookup != second.lookup and first.salt != second.salt and first.secret_hash != second.secret_hash


def test_configured_admin_token_authenticates_as_admin_without_a_stored_key(uow: KeyUow) -> None:
    principal = authenticate(uow, ADMIN_TOKEN)
    assert principal.is_admin and principal.key_id is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "tt_" + "0" * 16 + t[t.index("_", 3) :],  # unknown lookup
        lambda t: t.replace("tt_", "xx_", 1),  # not our format
        lambda t: "",
        lambda t: "tt_",
        lambda t: "tt_abc",
        lambda t: ADMIN_TOKEN[:-1],
    ],
)
def test_wrong_unknown_or_malformed_token_is_unauthenticated(uow: KeyUow, mangle: object) -> None:
    token = issue(uow)
    with pytest.raises(Unauthenticated):
        authenticate(uow, mangle(token))  # type: ignore[operator]


def test_revoked_key_stops_authenticating_and_cannot_be_revoked_twice(uow: KeyUow) -> None:
    token = issue(uow)
    [key] = uow.stored_keys.values()
    RevokeApiKey(uow, FakeClock()).execute(RevokeApiKeyCommand(key.id))  # type: ignore[arg-type]
    with pytest.raises(Unauthenticated):
        authenticate(uow, token)
    with pytest.raises(InvalidTransition):
        RevokeApiKey(uow, FakeClock()).execute(RevokeApiKeyCommand(key.id))  # type: ignore[arg-type]


def test_key_for_an_unknown_owner_is_refused_and_nothing_is_stored(uow: KeyUow) -> None:
    with pytest.raises(NotFound):
        issue(uow, owner_id=uuid4())
    assert uow.stored_keys == {}


def test_without_a_configured_admin_token_only_issued_keys_authenticate(uow: KeyUow) -> None:
    admin = issue(uow, ApiKeyRole.ADMIN, None)
    use_case = Authenticate(uow, None)  # type: ignore[arg-type]
    assert use_case.execute(AuthenticateCommand(admin)).is_admin
    with pytest.raises(Unauthenticated):
        use_case.execute(AuthenticateCommand(ADMIN_TOKEN))


def test_register_owner_creates_the_owner_and_its_key_together(uow: KeyUow) -> None:
    registered = RegisterOwner(uow, FakeClock()).execute(RegisterOwnerCommand("Acme"))  # type: ignore[arg-type]
    assert registered.owner.id in uow.stored_owners
    assert authenticate(uow, registered.issued.token).owner_id == registered.owner.id


def test_owner_key_acts_only_for_its_owner_and_admin_for_every_owner() -> None:
    mine, other = uuid4(), uuid4()
    owner = Principal(ApiKeyRole.OWNER, mine)
    admin = Principal(ApiKeyRole.ADMIN)
    assert owner.may_act_for(mine) and not owner.may_act_for(other)
    assert admin.may_act_for(mine) and admin.may_act_for(other)
    assert (owner.visible_owner(), admin.visible_owner()) == (mine, None)


def test_a_key_names_an_owner_exactly_when_its_role_is_owner() -> None:
    clock = FakeClock()
    now = clock.now()
    with pytest.raises(ValueError):
        ApiKey(uuid4(), "ab", "00", "00", ApiKeyRole.OWNER, None, "", now, now)
    with pytest.raises(ValueError):
        ApiKey(uuid4(), "ab", "00", "00", ApiKeyRole.ADMIN, uuid4(), "", now, now)
