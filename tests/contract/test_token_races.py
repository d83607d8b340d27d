"""Use-limited tokens and token trees under concurrency, on every backend (issue 8: 1, 3, 4).

Each race runs many trials: a single lucky interleaving proves nothing.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import tenantvault
from tenantvault import InvalidRequestError, Operation, PermissionDeniedError, TokenInfo
from tenantvault.testing import core_of

# Mints tokens (`sudo` also allows orphans) and writes one secret folder.
MAKER = """
path "auth/token/create" { capabilities = ["update", "sudo"] }
path "auth/token/create-orphan" { capabilities = ["update", "sudo"] }
path "secret/data/app/*" { capabilities = ["create", "update", "read"] }
"""
TRIALS = 50
CONCURRENT = 60


@pytest.fixture
async def acme(tv: tenantvault.TenantVault) -> tenantvault.Tenant:
    await tv.create_tenant("acme")
    tenant = tv.tenant("acme")
    await tenant.policies.write("maker", MAKER)
    return tenant


async def _works(tv: tenantvault.TenantVault, token: str) -> bool:
    try:
        await tv.with_token(token).request(Operation.READ, "auth/token/lookup-self")
    except PermissionDeniedError:
        return False
    return True


async def _stored_tokens(tv: tenantvault.TenantVault, tenant: str) -> list[str]:
    """The tenant's tokens as stored (its space's `token/`): used-up tokens must leave it,
    not just stop working."""
    return await core_of(tv).backend.list(tenant, "auth", "token/")


# -- item 1: a use-limited token mints nothing ---------------------------------------------


@pytest.mark.parametrize("path", ["auth/token/create", "auth/token/create-orphan"])
async def test_a_use_limited_token_cannot_create_tokens(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant, path: str
) -> None:
    """Vault's rule: a child of a use-limited token would escape the limit, so none is made."""
    limited = await acme.tokens.create(policies=["maker"], num_uses=3)
    holder = tv.with_token(limited.token)
    with pytest.raises(InvalidRequestError, match="restricted use token cannot generate child"):
        await holder.request(Operation.UPDATE, path, {"policies": ["maker"]})
    # The refused request still counted as a use (as in Vault): this lookup takes the second,
    # the next one the last (-1: "revocation pending"), and then the token is gone.
    for left in (1, -1):
        looked = await holder.request(Operation.READ, "auth/token/lookup-self")
        assert (looked.data or {})["num_uses"] == left
    assert not await _works(tv, limited.token)
    assert await _stored_tokens(tv, "acme") == []


async def test_the_last_use_of_a_token_cannot_create_a_child(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    """The issue's case: `num_uses=1` used to mint a child that worked forever, hanging off a
    parent already revoked, out of reach of any tree revocation."""
    limited = await acme.tokens.create(policies=["maker"], num_uses=1)
    with pytest.raises(InvalidRequestError, match="parent token lookup failed: no parent found"):
        await tv.with_token(limited.token).tenant("acme").tokens.create(policies=["maker"])
    assert not await _works(tv, limited.token)
    assert await _stored_tokens(tv, "acme") == []


async def test_the_last_use_is_served_then_revoked(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    """The last use does its work; the token is revoked (and its records go) only afterwards."""
    limited = await acme.tokens.create(policies=["maker"], num_uses=1)
    assert len(await _stored_tokens(tv, "acme")) == 1  # the index holds it until it is used
    holder = tv.with_token(limited.token).tenant("acme")
    await holder.kv.put("app/x", {"v": "written on the last use"})
    assert (await acme.kv.get("app/x")).data == {"v": "written on the last use"}
    assert not await _works(tv, limited.token)
    assert await _stored_tokens(tv, "acme") == []


# -- item 3: exactly num_uses requests are served ------------------------------------------


async def test_num_uses_is_exact_under_concurrency(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    """60 requests at once on a token with `num_uses=N`: exactly N served, the rest 403."""
    for trial in range(TRIALS):
        uses = 1 + trial % 3
        limited = await acme.tokens.create(policies=["default"], num_uses=uses)
        holder = tv.with_token(limited.token)
        results = await asyncio.gather(
            *(holder.request(Operation.READ, "auth/token/lookup-self") for _ in range(CONCURRENT)),
            return_exceptions=True,
        )
        served = [r for r in results if isinstance(r, tenantvault.Response)]
        refused = [r for r in results if isinstance(r, PermissionDeniedError)]
        assert (len(served), len(refused)) == (uses, CONCURRENT - uses), f"trial {trial}"
        # Each use counted once: the answers saw every remaining count exactly once.
        counts = sorted((r.data or {})["num_uses"] for r in served)
        assert counts == sorted([-1, *range(1, uses)]), f"trial {trial}"
        assert not await _works(tv, limited.token)
    assert await _stored_tokens(tv, "acme") == []


# -- item 4: no child outlives its revoked parent ------------------------------------------


async def _mint(tenant: tenantvault.Tenant, count: int) -> float:
    """Seconds that `count` concurrent creations take here: the span the races must cover."""
    started = time.perf_counter()
    await asyncio.gather(*(tenant.tokens.create(policies=["maker"]) for _ in range(count)))
    return time.perf_counter() - started


async def test_revoking_a_parent_while_it_creates_children_leaves_no_child(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    """A parent mints 30 children at once while root revokes it: whatever the interleaving,
    every child that was handed out is dead afterwards, and none is left in storage."""
    warm_up = await acme.tokens.create(policies=["maker"])
    span = await _mint(tv.with_token(warm_up.token).tenant("acme"), 30)
    await acme.tokens.revoke(warm_up.token)
    minted = []
    for trial in range(TRIALS):
        parent = await acme.tokens.create(policies=["maker"])
        as_parent = tv.with_token(parent.token).tenant("acme")

        async def child(index: int, as_parent: tenantvault.Tenant = as_parent) -> TokenInfo:
            # Staggered, so that the creations are at every stage when the revocation lands.
            await asyncio.sleep(index * span / 60)
            return await as_parent.tokens.create(policies=["maker"])

        async def revoke(delay: float, token: str = parent.token) -> None:
            await asyncio.sleep(delay)
            await acme.tokens.revoke(token)

        results = await asyncio.gather(
            revoke(span * trial / TRIALS),
            *(child(index) for index in range(30)),
            return_exceptions=True,
        )
        assert results[0] is None, f"trial {trial}: the revocation failed: {results[0]!r}"
        children = [r for r in results[1:] if isinstance(r, TokenInfo)]
        failures = [r for r in results[1:] if not isinstance(r, TokenInfo)]
        # Refused at authentication (403) or when the parent vanished mid-creation (400).
        assert all(isinstance(f, PermissionDeniedError | InvalidRequestError) for f in failures), (
            failures
        )
        minted.append(len(children))
        survivors = [child for child in children if await _works(tv, child.token)]
        assert survivors == [], f"trial {trial}: {len(survivors)} children outlived the parent"
        assert await _stored_tokens(tv, "acme") == [], f"trial {trial}"
    # The trials did race: in some, the revocation landed amid the creations.
    assert any(0 < count < 30 for count in minted), minted
