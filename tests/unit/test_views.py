"""Tenant-bound views: what the Core hands handlers instead of the token and audit stores.

A tenant's token view addresses tokens only through its incarnation's own index, so another
tenant's token cannot be named at all — not by token, not by accessor, not by handing the
view a record obtained elsewhere. A bound audit view runs every query as its own tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tenantvault._core import Core
from tenantvault._exceptions import PermissionDeniedError
from tenantvault._policy_store import TenantPolicies
from tenantvault._request import Operation, Request
from tenantvault._tokens import MOUNT, TenantTokens
from tenantvault.audit._view import AuditView
from tenantvault.backends._memory import MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    opened = Core(MemoryBackend())
    await opened.start()
    for name in ("acme", "acme-evil"):
        await opened.handle_as_operator(Request(Operation.UPDATE, f"sys/namespaces/{name}"))
    yield opened
    await opened.aclose()


async def _token(core: Core, tenant: str | None) -> tuple[str, str]:
    created = await core.handle_as_operator(
        Request(Operation.UPDATE, "auth/token/create", data={"policies": ["x"]}, namespace=tenant)
    )
    assert created.auth is not None
    return created.auth["client_token"], created.auth["accessor"]


async def _view(core: Core, tenant: str | None) -> TenantTokens:
    uid = await core.tenants.uid(tenant) if tenant else ""
    assert uid is not None
    return core.tokens.bound(tenant=tenant, tenant_uid=uid, caller=None)


async def test_a_tenant_view_cannot_name_another_tenants_token(core: Core) -> None:
    token, accessor = await _token(core, "acme-evil")
    mine = await _view(core, "acme")
    assert await mine.lookup(token) is None
    assert await mine.lookup_accessor(accessor) is None
    assert await mine.lookup(token, dying=True) is None
    # Its own view does see it.
    theirs = await _view(core, "acme-evil")
    assert (await theirs.lookup(token)) is not None


async def test_a_foreign_record_handed_to_a_view_is_not_renewed_or_revoked(core: Core) -> None:
    """Even a record obtained elsewhere resolves again through the view: nothing happens."""
    token, _ = await _token(core, "acme-evil")
    foreign = await (await _view(core, "acme-evil")).lookup(token)
    assert foreign is not None
    mine = await _view(core, "acme")
    with pytest.raises(PermissionDeniedError):
        await mine.renew(foreign, None)
    await mine.revoke(foreign)
    assert await core.tokens.lookup(token) is not None  # still alive


async def test_the_root_namespace_view_does_not_see_tenant_tokens(core: Core) -> None:
    token, accessor = await _token(core, "acme")
    root = await _view(core, None)
    assert await root.lookup(token) is None
    assert await root.lookup_accessor(accessor) is None
    own, _ = await _token(core, None)
    assert await root.lookup(own) is not None


async def test_the_index_decides_not_the_record(core: Core) -> None:
    """A token of the tenant missing from the incarnation's index cannot be addressed; one
    in the name-keyed index of stores made before incarnation ids still can."""
    token, _ = await _token(core, "acme")
    record = await core.tokens.lookup(token)
    assert record is not None
    backend = core.backend
    key = f"incarnation/{record.tenant_uid}/{record.token_hash}"
    index = await backend.read(SYSTEM_TENANT, MOUNT, key)
    assert index is not None
    await backend.delete(SYSTEM_TENANT, MOUNT, key)
    view = await _view(core, "acme")
    assert await view.lookup(token) is None
    # An older store's index entry: still found (old tokens keep working).
    await backend.write(
        SYSTEM_TENANT, MOUNT, f"tenant/acme/{record.token_hash}", index.value, expected_revision=0
    )
    assert await view.lookup(token) is not None


async def test_a_view_mints_tokens_in_its_own_tenant(core: Core) -> None:
    view = await _view(core, "acme")
    _, record = await view.create(
        policies=["x"],
        orphan=False,
        ttl_seconds=None,
        explicit_max_ttl_seconds=0,
        period_seconds=0,
        renewable=True,
        num_uses=0,
        meta=None,
        display_name="token",
        path="auth/token/create",
    )
    assert record.tenant == "acme"
    assert record.tenant_uid == await core.tenants.uid("acme")


async def test_a_bound_audit_view_queries_its_own_tenant_only(core: Core) -> None:
    uid = await core.tenants.uid("acme")
    assert uid is not None
    view = AuditView(
        core.audit_broker,
        tokens=core.tokens,
        backend=core.backend,
        tenant_uid_lookup=core.tenants.uid,
        tenant="acme",
        tenant_uid=uid,
    )
    # Whatever the request asks for, the scope is the view's own incarnation.
    assert await view.scope({"tenant": "acme-evil", "tenant_uid": "*"}) == ("acme", uid)
    assert await view.scope({}) == ("acme", uid)
    # A report input asked for another tenant is the view's own tenant's.
    assert await view.is_current("acme-evil", "not-a-uid")


async def test_a_policy_view_reads_and_writes_its_own_tenant_only(core: Core) -> None:
    mine = TenantPolicies(core.policies, "acme")
    await mine.write("app", 'path "secret/*" { capabilities = ["read"] }')
    assert "app" in await mine.list()
    theirs = TenantPolicies(core.policies, "acme-evil")
    assert await theirs.read("app") is None
    assert "app" not in await theirs.list()
