"""The token store's revocation when storage fails half-way (`_tokens.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tenantvault
from tenantvault import BackendUnavailableError, Operation, PermissionDeniedError
from tenantvault._core import Core
from tenantvault.backends._memory import MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT

MAKER = 'path "auth/token/create" { capabilities = ["update"] }'


class ListingOutage(MemoryBackend):
    """The memory backend, whose next listing of a token's children fails once `armed`."""

    armed = False

    async def list(self, tenant: str, mount: str, prefix: str) -> list[str]:
        if self.armed and prefix.startswith("children/"):
            self.armed = False
            raise BackendUnavailableError("injected outage")
        return await super().list(tenant, mount, prefix)


@pytest.fixture
async def store() -> AsyncIterator[tuple[tenantvault.TenantVault, ListingOutage]]:
    backend = ListingOutage()
    core = Core(backend)
    await core.start()
    async with tenantvault.TenantVault(core) as tv:
        yield tv, backend


async def _works(tv: tenantvault.TenantVault, token: str) -> bool:
    try:
        await tv.with_token(token).request(Operation.READ, "auth/token/lookup-self")
    except PermissionDeniedError:
        return False
    return True


@pytest.mark.parametrize("by", ["token", "accessor"])
async def test_a_revocation_cut_short_is_finished_by_revoking_again(
    store: tuple[tenantvault.TenantVault, ListingOutage], by: str
) -> None:
    """An outage after the parent is marked but before its children are reached leaves the
    parent dead and its child alive; revoking the parent again must reach the child."""
    tv, backend = store
    await tv.create_tenant("acme")
    acme = tv.tenant("acme")
    await acme.policies.write("maker", MAKER)
    parent = await acme.tokens.create(policies=["maker"])
    child = await tv.with_token(parent.token).tenant("acme").tokens.create(policies=["maker"])

    async def revoke() -> None:
        if by == "token":
            await acme.tokens.revoke(parent.token)
        else:
            await acme.tokens.revoke_accessor(parent.accessor)

    backend.armed = True
    with pytest.raises(BackendUnavailableError):
        await revoke()
    assert not await _works(tv, parent.token)
    assert await _works(tv, child.token)  # the tree was not reached: not yet consistent
    await revoke()
    assert not await _works(tv, child.token)


async def test_the_tenant_index_is_keyed_by_incarnation_not_name() -> None:
    """Issue 8.2: a re-created tenant's token index (its space's `token/`) holds none of its
    predecessor's tokens, and the predecessor's space no longer resolves; entries of the
    name-keyed index of older stores are still swept with the tenant."""
    backend = MemoryBackend()
    core = Core(backend)  # kept here: the test inspects the index the token store keeps
    await core.start()
    tv = tenantvault.TenantVault(core)
    await tv.create_tenant("temp")
    await tv.tenant("temp").tokens.create(policies=["default"])
    old_uid = await core.tenants.uid("temp")
    await tv.delete_tenant("temp")
    await tv.create_tenant("temp")
    fresh = await tv.tenant("temp").tokens.create(policies=["default"])
    uid = await core.tenants.uid("temp")
    assert old_uid is not None
    assert uid is not None
    assert old_uid != uid
    assert await backend.list(SYSTEM_TENANT, "auth", "space/") == [uid]
    assert len(await backend.list("temp", "auth", "token/")) == 1
    listed = await core.tokens.tenant_tokens("temp", uid)
    assert [record.accessor for record in listed] == [fresh.accessor]
    # A store from before tenant spaces: an entry under the tenant's name.
    record = listed[0]
    await backend.write(
        SYSTEM_TENANT, "auth", f"tenant/temp/{record.token_hash}", b"{}", expected_revision=None
    )
    assert await core.tokens.revoke_tenant("temp", uid) == 1
    assert await backend.list(SYSTEM_TENANT, "auth", "tenant/") == []
    assert await backend.list("temp", "auth", "token/") == []
    assert not await _works(tv, fresh.token)
    await tv.aclose()
