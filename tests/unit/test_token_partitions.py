"""Tokens partitioned by tenant (`_tokens.py`): each tenant's tokens in its own backend space.

A tenant's token names its incarnation (`tvs.<random>.<uid>`), lives in the tenant's space,
dies with it, and no view of another tenant ever reads that space. Tokens of the layout
before (no suffix, in the system space, listed by `incarnation/<uid>/`) keep working: the
tests build such records by hand, as the old code wrote them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Any

import orjson
import pytest

import tenantvault
from tenantvault import InvalidRequestError, Operation, PermissionDeniedError, TokenInfo
from tenantvault._core import Core
from tenantvault._request import Request
from tenantvault.backends._memory import MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend, Record
from tenantvault.testing import core_of

AUTH = "auth"  # the storage mount of token records, in every space
MAKER = 'path "auth/token/*" { capabilities = ["create", "update", "read"] }'


async def _uid(tv: tenantvault.TenantVault, tenant: str) -> str:
    uid = await core_of(tv).tenants.uid(tenant)
    assert uid is not None
    return uid


async def _works(tv: tenantvault.TenantVault, token: str) -> bool:
    try:
        await tv.with_token(token).request(Operation.READ, "auth/token/lookup-self")
    except PermissionDeniedError:
        return False
    return True


async def _hmac(backend: Backend, value: str) -> str:
    """The keyed hash the store files `value` under, computed from the stored key."""
    key = await backend.read(SYSTEM_TENANT, AUTH, "keys/token-hmac")
    assert key is not None
    return hmac.new(key.value, value.encode(), hashlib.sha256).hexdigest()


async def _tenant_with_maker(tv: tenantvault.TenantVault, name: str) -> tenantvault.Tenant:
    await tv.create_tenant(name)
    tenant = tv.tenant(name)
    await tenant.policies.write("maker", MAKER)
    return tenant


# -- the new layout --------------------------------------------------------------------------


async def test_a_tenant_token_names_its_incarnation_and_not_its_tenant(
    tv: tenantvault.TenantVault,
) -> None:
    """Like Vault's `hvs.<random>.<namespace id>`: the suffix is the opaque incarnation id."""
    await tv.create_tenant("acme")
    uid = await _uid(tv, "acme")
    minted = await tv.tenant("acme").tokens.create(policies=["default"])
    assert re.fullmatch(rf"tvs\.[A-Za-z0-9_-]{{43}}\.{uid}", minted.token)
    assert re.fullmatch(rf"[A-Za-z0-9]{{24}}\.{uid}", minted.accessor)
    assert "acme" not in minted.token
    assert "acme" not in minted.accessor
    # The root namespace's tokens carry no suffix, as Vault's.
    rooted = await tv.root.tokens.create(policies=["default"])
    assert re.fullmatch(r"tvs\.[A-Za-z0-9_-]{43}", rooted.token)
    assert re.fullmatch(r"[A-Za-z0-9]{24}", rooted.accessor)


async def test_a_tenant_tokens_records_live_in_its_own_space(tv: tenantvault.TenantVault) -> None:
    acme = await _tenant_with_maker(tv, "acme")
    backend = core_of(tv).backend
    parent = await acme.tokens.create(policies=["maker"])
    child = await tv.with_token(parent.token).tenant("acme").tokens.create(policies=["maker"])
    uid = await _uid(tv, "acme")
    hashes = sorted([await _hmac(backend, parent.token), await _hmac(backend, child.token)])
    assert await backend.list("acme", AUTH, "token/") == hashes
    assert await backend.list("acme", AUTH, "accessor/") == sorted(
        [await _hmac(backend, parent.accessor), await _hmac(backend, child.accessor)]
    )
    child_hash = await _hmac(backend, child.token)
    assert await backend.list("acme", AUTH, f"children/{await _hmac(backend, parent.token)}/") == [
        f"{child_hash}.{uid}"
    ]
    # Nothing of them in the system space: no record, no accessor, no per-tenant index.
    for key in ("token/", "accessor/"):
        assert not set(await backend.list(SYSTEM_TENANT, AUTH, key)) & set(hashes)
    assert await backend.list(SYSTEM_TENANT, AUTH, "incarnation/") == []


async def test_deleting_a_tenant_destroys_its_tokens_and_its_successor_starts_with_none(
    tv: tenantvault.TenantVault,
) -> None:
    await tv.create_tenant("temp")
    old = await tv.tenant("temp").tokens.create(policies=["default"])
    old_uid = await _uid(tv, "temp")
    await tv.delete_tenant("temp")
    assert not await _works(tv, old.token)
    # Its space was unregistered with it: the suffix resolves to nothing.
    backend = core_of(tv).backend
    assert await backend.read(SYSTEM_TENANT, AUTH, f"space/{old_uid}") is None
    await tv.create_tenant("temp")
    assert await backend.list("temp", AUTH, "token/") == []
    assert await core_of(tv).tokens.tenant_tokens("temp", await _uid(tv, "temp")) == []
    assert not await _works(tv, old.token)
    with pytest.raises(InvalidRequestError, match="invalid accessor"):
        await tv.tenant("temp").tokens.lookup_accessor(old.accessor)


async def test_a_stale_incarnation_is_refused_even_with_its_record_in_the_new_space(
    tv: tenantvault.TenantVault,
) -> None:
    """By construction: the record must belong to the incarnation its suffix names, and that
    incarnation must be the tenant's current one. A record of the old incarnation copied into
    the new space (as a create racing the deletion could leave it) authenticates nothing."""
    await tv.create_tenant("temp")
    old = await tv.tenant("temp").tokens.create(policies=["default"])
    backend = core_of(tv).backend
    key = f"token/{await _hmac(backend, old.token)}"
    stored = await backend.read("temp", AUTH, key)
    assert stored is not None
    await tv.delete_tenant("temp")
    await tv.create_tenant("temp")
    await backend.write("temp", AUTH, key, stored.value, expected_revision=None)
    # Its suffix names the old incarnation, whose space is gone: refused.
    assert not await _works(tv, old.token)
    # Spelled with the new incarnation's suffix, it is another token (another hash): refused.
    forged = old.token.rpartition(".")[0] + "." + await _uid(tv, "temp")
    assert not await _works(tv, forged)
    # Even if its space were still registered, the record is not the current incarnation's.
    old_uid = old.token.rpartition(".")[2]
    await backend.write(
        SYSTEM_TENANT,
        AUTH,
        f"space/{old_uid}",
        orjson.dumps({"tenant": "temp"}),
        expected_revision=0,
    )
    assert not await _works(tv, old.token)
    assert await core_of(tv).tokens.tenant_tokens("temp", await _uid(tv, "temp")) == []


async def test_a_forged_suffix_gets_the_same_refusal_as_any_bad_token(
    tv: tenantvault.TenantVault,
) -> None:
    await tv.create_tenant("acme")
    await tv.create_tenant("acme-evil")
    mine = await tv.tenant("acme").tokens.create(policies=["default"])
    body = mine.token.rpartition(".")[0]
    candidates = [
        f"{body}.{await _uid(tv, 'acme-evil')}",  # another tenant's incarnation
        f"{body}.{secrets.token_hex(16)}",  # no incarnation at all
        f"{body}.../x",  # not an incarnation id
        f"{body}.a.b",
        body,  # no suffix: the system space
        "tvs.unknown",
    ]
    texts = set()
    for token in candidates:
        with pytest.raises(PermissionDeniedError) as refused:
            await tv.with_token(token).request(Operation.READ, "auth/token/lookup-self")
        texts.add(str(refused.value))
    assert len(texts) == 1, texts
    assert await _works(tv, mine.token)


class RecordingBackend(MemoryBackend):
    """The memory backend, noting the (tenant, key) of every storage call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        self.calls.append((tenant, key))
        return await super().read(tenant, mount, key)

    async def write(
        self, tenant: str, mount: str, key: str, value: bytes, *, expected_revision: int | None
    ) -> int:
        self.calls.append((tenant, key))
        return await super().write(tenant, mount, key, value, expected_revision=expected_revision)

    async def delete(
        self, tenant: str, mount: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        self.calls.append((tenant, key))
        return await super().delete(tenant, mount, key, expected_revision=expected_revision)

    async def list(self, tenant: str, mount: str, prefix: str) -> list[str]:
        self.calls.append((tenant, prefix))
        return await super().list(tenant, mount, prefix)


async def test_a_tenants_token_requests_never_address_another_tenants_tokens() -> None:
    """Not filtered after the fact: naming another tenant's token or accessor, by any token
    endpoint, reads nothing of that tenant's space, and no key of that token anywhere (its
    suffix is refused before any read)."""
    backend = RecordingBackend()
    core = Core(backend)
    await core.start()
    async with tenantvault.TenantVault(core) as tv:
        acme = await _tenant_with_maker(tv, "acme")
        evil = await _tenant_with_maker(tv, "acme-evil")
        mine = await acme.tokens.create(policies=["maker"])
        theirs = await evil.tokens.create(policies=["maker"])
        marks = (await _hmac(backend, theirs.token), await _hmac(backend, theirs.accessor))
        backend.calls.clear()
        for path, data in (
            ("auth/token/lookup", {"token": theirs.token}),
            ("auth/token/lookup-accessor", {"accessor": theirs.accessor}),
            ("auth/token/renew", {"token": theirs.token}),
            ("auth/token/revoke", {"token": theirs.token}),
            ("auth/token/revoke-accessor", {"accessor": theirs.accessor}),
            ("auth/token/revoke-orphan", {"token": theirs.token}),
        ):
            try:
                await core.handle(Request(Operation.UPDATE, path, data=data, token=mine.token))
            except (PermissionDeniedError, InvalidRequestError):
                pass
        assert backend.calls, "the requests reached no storage at all"
        assert not [tenant for tenant, _ in backend.calls if tenant == "acme-evil"]
        assert not [key for _, key in backend.calls if any(mark in key for mark in marks)]
        assert await _works(tv, theirs.token)


async def test_authenticating_a_tenant_token_is_one_read_of_its_own_space() -> None:
    """Parse the suffix, resolve the space (known once seen), read the record: nothing else."""
    backend = RecordingBackend()
    core = Core(backend)
    await core.start()
    async with tenantvault.TenantVault(core) as tv:
        await tv.create_tenant("acme")
        minted = await tv.tenant("acme").tokens.create(policies=["default"])
        await core.tokens.authenticate(minted.token)
        key = f"token/{await _hmac(backend, minted.token)}"
        backend.calls.clear()
        await core.tokens.authenticate(minted.token)
        assert backend.calls == [("acme", key)]


async def test_revoking_a_root_token_revokes_its_children_in_every_tenant(
    tv: tenantvault.TenantVault,
) -> None:
    """A root-namespace token acting in namespaces parents tokens there: each child lives in
    its tenant's space, its link in the parent's, and revoking the parent reaches them all."""
    for name in ("acme", "beta"):
        await _tenant_with_maker(tv, name)
    parent = await tv.root.tokens.create(policies=["root"])
    holder = tv.with_token(parent.token)
    children = [
        await holder.tenant(name).tokens.create(policies=["maker"]) for name in ("acme", "beta")
    ]
    grandchild = (
        await tv.with_token(children[0].token).tenant("acme").tokens.create(policies=["maker"])
    )
    backend = core_of(tv).backend
    parent_hash = await _hmac(backend, parent.token)
    assert len(await backend.list(SYSTEM_TENANT, AUTH, f"children/{parent_hash}/")) == 2
    await tv.root.tokens.revoke(parent.token)
    for token in (parent, *children, grandchild):
        assert not await _works(tv, token.token)
    assert await backend.list(SYSTEM_TENANT, AUTH, f"children/{parent_hash}/") == []
    for name in ("acme", "beta"):
        assert await backend.list(name, AUTH, "token/") == []


async def test_revoke_orphan_leaves_a_root_tokens_tenant_children_working(
    tv: tenantvault.TenantVault,
) -> None:
    await tv.create_tenant("acme")
    parent = await tv.root.tokens.create(policies=["root"])
    child = await tv.with_token(parent.token).tenant("acme").tokens.create(policies=["default"])
    await tv.request(Operation.UPDATE, "auth/token/revoke-orphan", {"token": parent.token})
    assert not await _works(tv, parent.token)
    assert await _works(tv, child.token)
    assert (await tv.tenant("acme").tokens.lookup(child.token)).orphan


async def test_a_tenant_token_is_addressed_from_its_namespace_only(
    tv: tenantvault.TenantVault,
) -> None:
    """The accessor names the tenant's space: the tenant's namespace finds it, the root
    namespace (whose view addresses only its own tokens) does not, as before partitioning."""
    await tv.create_tenant("acme")
    minted = await tv.tenant("acme").tokens.create(policies=["default"])
    found = await tv.tenant("acme").tokens.lookup_accessor(minted.accessor)
    assert found.accessor == minted.accessor
    with pytest.raises(InvalidRequestError, match="invalid accessor"):
        await tv.root.tokens.lookup_accessor(minted.accessor)
    with pytest.raises(PermissionDeniedError, match="bad token"):
        await tv.root.tokens.lookup(minted.token)
    await tv.tenant("acme").tokens.revoke_accessor(minted.accessor)
    assert not await _works(tv, minted.token)


async def test_a_custom_root_token_id_cannot_name_a_namespace(tv: tenantvault.TenantVault) -> None:
    tokens = core_of(tv).tokens
    with pytest.raises(InvalidRequestError):
        await tokens.create(
            tenant=None, tenant_uid="", policies=["root"], parent=None, token="tvs.a.b"
        )
    plaintext, _ = await tokens.create(
        tenant=None, tenant_uid="", policies=["root"], parent=None, token="dev.root"
    )
    assert await _works(tv, plaintext)


async def test_a_used_up_token_leaves_its_tenants_space(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    once = await tv.tenant("acme").tokens.create(policies=["default"], num_uses=1)
    backend = core_of(tv).backend
    assert len(await backend.list("acme", AUTH, "token/")) == 1
    assert await _works(tv, once.token)
    assert not await _works(tv, once.token)
    assert await backend.list("acme", AUTH, "token/") == []
    assert await backend.list("acme", AUTH, "accessor/") == []


# -- the layout before tenant spaces ---------------------------------------------------------


async def _old_token(
    tv: tenantvault.TenantVault,
    tenant: str,
    *,
    policies: list[str],
    parent: str = "",
    index: str = "incarnation",
) -> tuple[str, str]:
    """A token as the layout before tenant spaces stored it: no suffix, its record, accessor
    and children link in the system space, listed by `incarnation/<uid>/` (or, in stores
    older still, `tenant/<name>/`). Returns (token, accessor)."""
    backend = core_of(tv).backend
    uid = await _uid(tv, tenant)
    token = "tvs." + secrets.token_urlsafe(32)
    accessor = "".join(secrets.choice("ABCDEFGHJKabcdefgh0123456789") for _ in range(24))
    token_hash = await _hmac(backend, token)
    now = core_of(tv).clock()
    record: dict[str, Any] = {
        "accessor": accessor,
        "tenant": tenant,
        "tenant_uid": uid,
        "policies": sorted(policies),
        "meta": None,
        "display_name": "token",
        "parent": parent,
        "orphan": not parent,
        "created": now,
        "ttl": 3600,
        "explicit_max_ttl": 0,
        "period": 0,
        "expire": now + 3600 * 1_000_000_000,
        "renewable": True,
        "num_uses": 0,
        "path": "auth/token/create",
    }
    link = orjson.dumps({"token": token_hash})
    await backend.write(
        SYSTEM_TENANT, AUTH, f"accessor/{await _hmac(backend, accessor)}", link, expected_revision=0
    )
    if parent:
        await backend.write(
            SYSTEM_TENANT, AUTH, f"children/{parent}/{token_hash}", link, expected_revision=0
        )
    key = (
        f"incarnation/{uid}/{token_hash}"
        if index == "incarnation"
        else f"tenant/{tenant}/{token_hash}"
    )
    await backend.write(SYSTEM_TENANT, AUTH, key, link, expected_revision=0)
    await backend.write(
        SYSTEM_TENANT, AUTH, f"token/{token_hash}", orjson.dumps(record), expected_revision=0
    )
    return token, accessor


@pytest.mark.parametrize("index", ["incarnation", "tenant"])
async def test_an_old_layout_token_keeps_working_in_its_tenant_only(
    tv: tenantvault.TenantVault, index: str
) -> None:
    acme = await _tenant_with_maker(tv, "acme")
    evil = await _tenant_with_maker(tv, "acme-evil")
    token, accessor = await _old_token(tv, "acme", policies=["maker"], index=index)
    assert await _works(tv, token)
    assert (await acme.tokens.lookup(token)).accessor == accessor
    assert (await acme.tokens.lookup_accessor(accessor)).accessor == accessor
    renewed = await acme.tokens.renew(token, increment=600)
    assert renewed.lease_duration == 600
    # Another tenant, and the root namespace, address it no more than before.
    with pytest.raises(PermissionDeniedError):
        await evil.tokens.lookup(token)
    with pytest.raises(InvalidRequestError):
        await evil.tokens.lookup_accessor(accessor)
    with pytest.raises(InvalidRequestError):
        await tv.root.tokens.lookup_accessor(accessor)
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(token).tenant("acme-evil").tokens.create(policies=["maker"])
    uid = await _uid(tv, "acme")
    listed = await core_of(tv).tokens.tenant_tokens("acme", uid)
    assert [record.accessor for record in listed] == [accessor]


async def test_an_old_layout_token_parents_new_tokens_and_revoking_it_reaches_them(
    tv: tenantvault.TenantVault,
) -> None:
    acme = await _tenant_with_maker(tv, "acme")
    old, _ = await _old_token(tv, "acme", policies=["maker"])
    child: TokenInfo = await tv.with_token(old).tenant("acme").tokens.create(policies=["maker"])
    uid = await _uid(tv, "acme")
    assert child.token.endswith(f".{uid}")  # the child is minted in the new layout
    backend = core_of(tv).backend
    old_hash = await _hmac(backend, old)
    assert await backend.list(SYSTEM_TENANT, AUTH, f"children/{old_hash}/") == [
        f"{await _hmac(backend, child.token)}.{uid}"
    ]
    await acme.tokens.revoke(old)
    assert not await _works(tv, old)
    assert not await _works(tv, child.token)
    assert await backend.list("acme", AUTH, "token/") == []
    assert await backend.list(SYSTEM_TENANT, AUTH, f"incarnation/{uid}/") == []
    assert await backend.read(SYSTEM_TENANT, AUTH, f"token/{old_hash}") is None


async def test_an_old_layout_tree_is_revoked_whole(tv: tenantvault.TenantVault) -> None:
    acme = await _tenant_with_maker(tv, "acme")
    parent, parent_accessor = await _old_token(tv, "acme", policies=["maker"])
    parent_hash = await _hmac(core_of(tv).backend, parent)
    child, _ = await _old_token(tv, "acme", policies=["maker"], parent=parent_hash)
    assert await _works(tv, child)
    await acme.tokens.revoke_accessor(parent_accessor)
    assert not await _works(tv, parent)
    assert not await _works(tv, child)


async def test_deleting_a_tenant_revokes_its_old_layout_tokens(
    tv: tenantvault.TenantVault,
) -> None:
    await tv.create_tenant("acme")
    tokens = [
        (await _old_token(tv, "acme", policies=["default"], index=index))[0]
        for index in ("incarnation", "tenant")
    ]
    fresh = await tv.tenant("acme").tokens.create(policies=["default"])
    await tv.delete_tenant("acme")
    await tv.create_tenant("acme")
    for token in (*tokens, fresh.token):
        assert not await _works(tv, token)
    backend = core_of(tv).backend
    for prefix in ("incarnation/", "tenant/", "children/"):
        assert await backend.list(SYSTEM_TENANT, AUTH, prefix) == []
    for token in tokens:
        assert (
            await backend.read(SYSTEM_TENANT, AUTH, f"token/{await _hmac(backend, token)}") is None
        )


async def test_an_old_layout_store_on_disk_opens_with_its_tokens_working(tmp_path: Path) -> None:
    """A sqlite store written by the old layout, closed, and opened again by this code."""
    url = f"sqlite://{tmp_path / 'data'}"
    async with tenantvault.open(url) as tv:
        await _tenant_with_maker(tv, "acme")
        old, accessor = await _old_token(tv, "acme", policies=["maker"])
    async with tenantvault.open(url) as tv:
        assert await _works(tv, old)
        assert (await tv.tenant("acme").tokens.lookup_accessor(accessor)).accessor == accessor
        child = await tv.with_token(old).tenant("acme").tokens.create(policies=["maker"])
        assert await _works(tv, child.token)
        await tv.tenant("acme").tokens.revoke(old)
        assert not await _works(tv, child.token)


async def _turns(count: int) -> None:
    """Let the event loop run `count` times (every backend call also yields once)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_no_tenant_child_outlives_a_root_parent_revoked_while_it_mints(
    tv: tenantvault.TenantVault, backend_kind: str
) -> None:
    """The race of `revoke` across spaces: a root-namespace token mints 20 children in a
    tenant, one starting after another, while it is revoked, the revocation landing after more
    and more event-loop turns. Whatever the interleaving, no child handed out survives, and
    none is left stored."""
    await _tenant_with_maker(tv, "acme")
    backend = core_of(tv).backend
    minted = []
    for trial in range(24):
        parent = await tv.root.tokens.create(policies=["root"])
        as_parent = tv.with_token(parent.token).tenant("acme")

        async def child(turns: int, as_parent: tenantvault.Tenant = as_parent) -> TokenInfo:
            # Staggered, so that the creations are at every stage when the revocation lands.
            await _turns(turns)
            return await as_parent.tokens.create(policies=["maker"])

        async def revoke(turns: int, token: str = parent.token) -> None:
            await _turns(turns)
            await tv.root.tokens.revoke(token)

        results = await asyncio.gather(
            revoke(trial * 2),
            *(child(index * 2) for index in range(20)),
            return_exceptions=True,
        )
        assert results[0] is None, f"trial {trial}: the revocation failed: {results[0]!r}"
        children = [result for result in results[1:] if isinstance(result, TokenInfo)]
        refused = [result for result in results[1:] if not isinstance(result, TokenInfo)]
        assert all(isinstance(r, PermissionDeniedError | InvalidRequestError) for r in refused)
        minted.append(len(children))
        survivors = [child for child in children if await _works(tv, child.token)]
        assert survivors == [], f"trial {trial}: {len(survivors)} children outlived the parent"
        assert await backend.list("acme", AUTH, "token/") == [], f"trial {trial}"
    if backend_kind == "memory":
        # Deterministic there (each backend call yields once): the trials did race.
        assert any(0 < count < 20 for count in minted), minted
