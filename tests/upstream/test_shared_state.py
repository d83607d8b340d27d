"""Two tenantvault instances over one upstream see the same tenants, tokens and policies.

A token revoked through one instance is refused there at once and by the other within
`RECORD_CACHE_SECONDS` (the record read cache's TTL); a tenant deleted and created again through
one instance is the new tenant on the other within `UID_CACHE_SECONDS`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tenantvault
from tenantvault import Operation, PermissionDeniedError
from tenantvault._tenants import UID_CACHE_SECONDS
from tenantvault.crypto import random_key
from tenantvault.upstream._backend import RECORD_CACHE_SECONDS, TENANT_CACHE_SECONDS
from tests._openbao import OpenBaoDev, unique_root
from tests.upstream._records import token_file

MAKER = 'path "auth/token/create" { capabilities = ["update"] }'


@pytest.fixture
async def pair(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> AsyncIterator[tuple[tenantvault.TenantVault, tenantvault.TenantVault]]:
    """Two independent instances (own Core, own client, own caches) on one upstream root."""
    url = (
        f"{openbao_dev.backend_url}?root={unique_root('s')}&tenancy=prefix"
        f"&token_file={token_file(tmp_path, openbao_dev.root_token)}"
    )
    key = random_key()
    async with (
        tenantvault.open(url, master_key=key) as one,
        tenantvault.open(url, master_key=key) as two,
    ):
        yield one, two


async def _works(tv: tenantvault.TenantVault, token: str) -> bool:
    try:
        await tv.with_token(token).request(Operation.READ, "auth/token/lookup-self")
    except PermissionDeniedError:
        return False
    return True


async def test_tenants_tokens_and_policies_are_shared(
    pair: tuple[tenantvault.TenantVault, tenantvault.TenantVault],
) -> None:
    one, two = pair
    await one.create_tenant("acme")
    assert await two.list_tenants() == ["acme"]
    await one.tenant("acme").policies.write("maker", MAKER)
    assert "maker" in await two.tenant("acme").policies.list()
    issued = await one.tenant("acme").tokens.create(policies=["maker"])
    # The token minted on one instance works on the other, with the policy written there.
    child = await two.with_token(issued.token).tenant("acme").tokens.create(policies=["maker"])
    assert await _works(one, child.token)


async def test_a_token_revoked_on_one_instance_is_refused_by_the_other_within_the_bound(
    pair: tuple[tenantvault.TenantVault, tenantvault.TenantVault],
) -> None:
    one, two = pair
    await one.create_tenant("acme")
    issued = await one.tenant("acme").tokens.create(policies=["default"])
    assert await _works(two, issued.token)
    await one.tenant("acme").tokens.revoke(issued.token)
    assert not await _works(one, issued.token)  # at once where it was revoked
    await asyncio.sleep(RECORD_CACHE_SECONDS + 0.1)
    assert not await _works(two, issued.token)  # everywhere within the bound


async def test_a_tenant_deleted_and_created_again_is_the_new_one_everywhere_within_the_bound(
    pair: tuple[tenantvault.TenantVault, tenantvault.TenantVault],
) -> None:
    """The other instance's caches of the tenant (name -> incarnation, its record key) last
    at most 1 s: after that, the new incarnation's tokens work there and the old ones do not."""
    one, two = pair
    await one.create_tenant("acme")
    old = await one.tenant("acme").tokens.create(policies=["default"])
    assert await _works(two, old.token)  # the other instance caches the tenant now
    await one.delete_tenant("acme")
    await one.create_tenant("acme")
    new = await one.tenant("acme").tokens.create(policies=["default"])
    await asyncio.sleep(max(UID_CACHE_SECONDS, TENANT_CACHE_SECONDS) + 0.1)
    assert await _works(two, new.token)
    assert not await _works(two, old.token)
