"""Tenants, tokens and policies through the choke point, on every backend.

Each test acts through `tv.with_token(...)`, the same path every HTTP caller takes.
"""

from __future__ import annotations

import pytest

import tenantvault
from tenantvault import (
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
    Operation,
    PermissionDeniedError,
)
from tenantvault.testing import core_of
from tests.conftest import FakeClock, canary

READER = (
    'path "secret/data/app/*" { capabilities = ["read"] }\n'
    'path "secret/metadata/app/*" { capabilities = ["list"] }'
)
MAKER = READER + '\npath "auth/token/create" { capabilities = ["update"] }'
WRITER = 'path "secret/data/app/*" { capabilities = ["create", "read", "update", "patch"] }'


async def _tenant_with_token(
    tv: tenantvault.TenantVault, name: str, policy: str, **token_args: object
) -> tenantvault.TenantVault:
    await tv.create_tenant(name)
    await tv.tenant(name).policies.write("p", policy)
    info = await tv.tenant(name).tokens.create(policies=["p"], **token_args)  # type: ignore[arg-type]
    return tv.with_token(info.token)


# -- tenants -------------------------------------------------------------------------------


async def test_tenants_are_created_listed_read_and_deleted(tv: tenantvault.TenantVault) -> None:
    assert await tv.list_tenants() == []
    info = await tv.create_tenant("acme", custom_metadata={"plan": "gold"})
    assert info.path == "acme/"
    await tv.create_tenant("beta")
    assert await tv.list_tenants() == ["acme", "beta"]
    assert (await tv.read_tenant("acme")).custom_metadata == {"plan": "gold"}
    await tv.delete_tenant("acme")
    assert await tv.list_tenants() == ["beta"]
    with pytest.raises(NotFoundError):
        await tv.read_tenant("acme")


async def test_creating_an_existing_tenant_returns_it_unchanged(
    tv: tenantvault.TenantVault,
) -> None:
    """Idempotent, as OpenBao's namespace create: same id, data kept."""
    first = await tv.create_tenant("acme")
    await tv.tenant("acme").kv.put("k", {"v": 1})
    assert await tv.create_tenant("acme") == first
    assert (await tv.tenant("acme").kv.get("k")).data == {"v": 1}


async def test_deleting_a_missing_tenant_only_warns(tv: tenantvault.TenantVault) -> None:
    response = await tv.request(Operation.DELETE, "sys/namespaces/ghost")
    assert response.warnings == ["requested namespace does not exist"]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Acme",
        " acme",
        "acme ",
        "-acme",
        "a" * 64,
        "root",
        "sys",
        "auth",
        "audit",
        "identity",
        "cubbyhole",
        "default",
        "a_b",
        "a.b",
        "*",
        "+",
        "ａｃｍｅ",
        "аcme",
        "acme\x00",
        "a/b",
    ],
)
async def test_invalid_or_reserved_tenant_ids_are_refused(
    tv: tenantvault.TenantVault, name: str
) -> None:
    with pytest.raises(InvalidPathError):
        await tv.create_tenant(name)
    assert await tv.list_tenants() == []


async def test_deleting_a_tenant_destroys_its_data_and_revokes_its_tokens(
    tv: tenantvault.TenantVault,
) -> None:
    scoped = await _tenant_with_token(tv, "acme", WRITER)
    await scoped.tenant("acme").kv.put("app/db", {"password": canary()})
    await tv.delete_tenant("acme")
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.get("app/db")
    await tv.create_tenant("acme")  # same name, new tenant: nothing comes back
    with pytest.raises(NotFoundError):
        await tv.tenant("acme").kv.get("app/db")
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.get("app/db")


# -- tokens --------------------------------------------------------------------------------


async def test_a_token_acts_within_its_policy(tv: tenantvault.TenantVault) -> None:
    scoped = await _tenant_with_token(tv, "acme", READER)
    await tv.tenant("acme").kv.put("app/db", {"password": "s"})
    await tv.tenant("acme").kv.put("other", {"password": "s"})
    assert (await scoped.tenant("acme").kv.get("app/db")).data == {"password": "s"}
    assert await scoped.tenant("acme").kv.list("app") == ["db"]
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.get("other")
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.put("app/db", {"password": "new"})
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.delete_metadata("app/db")


async def test_create_and_update_are_distinct_capabilities(tv: tenantvault.TenantVault) -> None:
    create_only = await _tenant_with_token(
        tv, "acme", 'path "secret/data/*" { capabilities = ["create"] }'
    )
    await create_only.tenant("acme").kv.put("new", {"v": 1})
    with pytest.raises(PermissionDeniedError):
        await create_only.tenant("acme").kv.put("new", {"v": 2})


async def test_tokens_are_refused_alike_when_bad_in_any_way(
    tv: tenantvault.TenantVault, clock: FakeClock
) -> None:
    await tv.create_tenant("acme")
    short = await tv.tenant("acme").tokens.create(policies=["default"], ttl="1m")
    revoked = await tv.tenant("acme").tokens.create(policies=["default"])
    await tv.tenant("acme").tokens.revoke(revoked.token)
    clock.advance(61)
    bad_tokens = [
        short.token,
        revoked.token,
        "",
        "tvs.nope",
        revoked.token + " ",
        revoked.token.upper(),
        "x" * 10_000,
        "tvs.\x00",
        "tök",
    ]
    messages = set()
    for token in bad_tokens:
        with pytest.raises(PermissionDeniedError) as caught:
            await tv.with_token(token).request(Operation.READ, "auth/token/lookup-self")
        messages.add(str(caught.value))
    assert messages == {"permission denied"}


async def test_lookup_self_describes_the_token(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    info = await tv.tenant("acme").tokens.create(
        policies=["default"], ttl="1h", meta={"app": "x"}, display_name="ci"
    )
    response = await tv.with_token(info.token).request(Operation.READ, "auth/token/lookup-self")
    data = response.data or {}
    assert data["id"] == info.token
    assert data["policies"] == ["default"]
    assert data["meta"] == {"app": "x"}
    assert data["display_name"] == "token-ci"
    assert 3590 <= data["ttl"] <= 3600
    assert data["namespace_path"] == "acme/"
    assert data["accessor"] == info.accessor


async def test_num_uses_limits_how_often_a_token_works(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    info = await tv.tenant("acme").tokens.create(policies=["default"], num_uses=2)
    holder = tv.with_token(info.token)
    await holder.request(Operation.READ, "auth/token/lookup-self")
    await holder.request(Operation.READ, "auth/token/lookup-self")
    with pytest.raises(PermissionDeniedError):
        await holder.request(Operation.READ, "auth/token/lookup-self")


async def test_renew_extends_up_to_explicit_max_ttl(
    tv: tenantvault.TenantVault, clock: FakeClock
) -> None:
    await tv.create_tenant("acme")
    info = await tv.tenant("acme").tokens.create(
        policies=["default"], ttl="1h", explicit_max_ttl="2h"
    )
    holder = tv.with_token(info.token)
    clock.advance(3000)
    renewed = await holder.request(Operation.UPDATE, "auth/token/renew-self", {"increment": "1h"})
    assert (renewed.auth or {})["lease_duration"] == 3600
    clock.advance(3000)
    renewed = await holder.request(Operation.UPDATE, "auth/token/renew-self", {"increment": "1h"})
    assert (renewed.auth or {})["lease_duration"] == 1200  # capped by explicit_max_ttl
    clock.advance(1201)
    with pytest.raises(PermissionDeniedError):
        await holder.request(Operation.READ, "auth/token/lookup-self")


async def test_non_renewable_tokens_cannot_be_renewed(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    info = await tv.tenant("acme").tokens.create(policies=["default"], renewable=False)
    with pytest.raises(InvalidRequestError):
        await tv.with_token(info.token).request(Operation.UPDATE, "auth/token/renew-self", {})


async def test_revoking_a_parent_revokes_its_children_but_not_orphans(
    tv: tenantvault.TenantVault,
) -> None:
    await tv.create_tenant("acme")
    await tv.tenant("acme").policies.write("p", MAKER)
    parent = await tv.tenant("acme").tokens.create(policies=["p"])
    as_parent = tv.with_token(parent.token).tenant("acme")
    child = await as_parent.tokens.create(policies=["p"])
    grandchild = await tv.with_token(child.token).tenant("acme").tokens.create(policies=["p"])
    orphan = await tv.tenant("acme").tokens.create(policies=["p"], orphan=True)
    await tv.tenant("acme").tokens.revoke(parent.token)
    for token in (parent.token, child.token, grandchild.token):
        with pytest.raises(PermissionDeniedError):
            await tv.with_token(token).request(Operation.READ, "auth/token/lookup-self")
    await tv.with_token(orphan.token).request(Operation.READ, "auth/token/lookup-self")


async def test_a_child_can_only_receive_the_parents_policies(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    await tv.tenant("acme").policies.write("p", MAKER)
    await tv.tenant("acme").policies.write("q", WRITER)
    parent = await tv.tenant("acme").tokens.create(policies=["p"])
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(parent.token).tenant("acme").tokens.create(policies=["q"])
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(parent.token).tenant("acme").tokens.create(policies=["root"])


async def test_accessors_look_up_and_revoke_without_the_token(
    tv: tenantvault.TenantVault,
) -> None:
    await tv.create_tenant("acme")
    info = await tv.tenant("acme").tokens.create(policies=["default"])
    data = await tv.tenant("acme").tokens.lookup_accessor(info.accessor)
    assert data.id == ""  # the accessor never reveals the token
    assert data.accessor == info.accessor
    await tv.tenant("acme").tokens.revoke_accessor(info.accessor)
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(info.token).request(Operation.READ, "auth/token/lookup-self")


async def test_token_operations_never_reach_another_tenants_tokens(
    tv: tenantvault.TenantVault,
) -> None:
    await tv.create_tenant("acme")
    await tv.create_tenant("acme-evil")
    victim = await tv.tenant("acme").tokens.create(policies=["default"])
    evil_admin = await tv.tenant("acme-evil").tokens.create(policies=["root"])
    evil = tv.with_token(evil_admin.token).tenant("acme-evil")
    with pytest.raises(PermissionDeniedError):
        await evil.tokens.lookup(victim.token)
    with pytest.raises(InvalidRequestError):
        await evil.tokens.lookup_accessor(victim.accessor)
    with pytest.raises(InvalidRequestError):
        await evil.tokens.revoke_accessor(victim.accessor)
    await evil.tokens.revoke(victim.token)  # silently nothing, like a token that doesn't exist
    await tv.with_token(victim.token).request(Operation.READ, "auth/token/lookup-self")


async def test_tenant_root_token_cannot_leave_its_tenant(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    await tv.create_tenant("beta")
    await tv.tenant("beta").kv.put("k", {"v": 1})
    admin = await tv.tenant("acme").tokens.create(policies=["root"])
    as_admin = tv.with_token(admin.token)
    await as_admin.tenant("acme").kv.put("k", {"v": 1})
    with pytest.raises(PermissionDeniedError):
        await as_admin.tenant("beta").kv.get("k")
    # Inside a tenant, sys/namespaces is the (empty) list of nested namespaces: no way out.
    with pytest.raises(NotFoundError):
        await as_admin.request(Operation.LIST, "sys/namespaces")
    with pytest.raises(InvalidRequestError):
        await as_admin.request(Operation.DELETE, "sys/namespaces/beta")
    assert await tv.list_tenants() == ["acme", "beta"]


async def test_the_root_token_selects_any_tenant(tv: tenantvault.TenantVault) -> None:
    root = await core_of(tv).initialize_root_token()
    assert root is not None
    assert await core_of(tv).initialize_root_token() is None  # only ever once per store
    as_root = tv.with_token(root)
    await as_root.create_tenant("acme")
    await as_root.tenant("acme").kv.put("k", {"v": 1})
    assert (await tv.tenant("acme").kv.get("k")).data == {"v": 1}
    with pytest.raises(NotFoundError):
        await as_root.tenant("missing").kv.get("k")


# -- policies ------------------------------------------------------------------------------


async def test_policies_are_written_read_listed_and_deleted(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    policies = tv.tenant("acme").policies
    await policies.write("reader", READER)
    assert await policies.read("reader") == READER
    assert await policies.list() == ["default", "reader"]
    await policies.delete("reader")
    assert await policies.list() == ["default"]
    assert await tv.root.policies.list() == ["default", "root"]
    with pytest.raises(NotFoundError):
        await policies.read("reader")


@pytest.mark.parametrize("name", ["root", "default"])
async def test_builtin_policies_cannot_be_deleted(tv: tenantvault.TenantVault, name: str) -> None:
    await tv.create_tenant("acme")
    with pytest.raises(InvalidRequestError):
        await tv.tenant("acme").policies.delete(name)


async def test_invalid_policies_are_refused(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    for bad in (
        'path "a/*/b" { capabilities = ["read"] }',
        "path {",
        'path "x" { capabilities = ["fly"] }',
    ):
        with pytest.raises(InvalidRequestError):
            await tv.tenant("acme").policies.write("bad", bad)
    with pytest.raises(InvalidRequestError):
        await tv.tenant("acme").policies.write("root", READER)
    for name in ("UPPER", " p", "p*", "a/b"):
        with pytest.raises(InvalidRequestError):
            await tv.tenant("acme").policies.write(name, READER)


async def test_policy_changes_apply_to_the_next_request(tv: tenantvault.TenantVault) -> None:
    scoped = await _tenant_with_token(tv, "acme", READER)
    await tv.tenant("acme").kv.put("app/x", {"v": 1})
    await scoped.tenant("acme").kv.get("app/x")
    await tv.tenant("acme").policies.write(
        "p", 'path "secret/data/app/*" { capabilities = ["deny"] }'
    )
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.get("app/x")


async def test_a_policy_of_one_tenant_never_applies_in_another(
    tv: tenantvault.TenantVault,
) -> None:
    """A-13: a tenant's policy names are its own; `p` in acme is not `p` in acme-evil."""
    await tv.create_tenant("acme")
    await tv.create_tenant("acme-evil")
    await tv.tenant("acme").policies.write("p", 'path "secret/*" { capabilities = ["read"] }')
    token = await tv.tenant("acme-evil").tokens.create(policies=["p"])
    await tv.tenant("acme-evil").kv.put("k", {"v": 1})
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(token.token).tenant("acme-evil").kv.get("k")


async def test_deny_in_a_more_specific_path_wins_for_list_too(
    tv: tenantvault.TenantVault,
) -> None:
    """A-12: a deny on private/* beats a list grant on the parent, for LIST of private."""
    scoped = await _tenant_with_token(
        tv,
        "acme",
        """
        path "secret/metadata/*" { capabilities = ["list"] }
        path "secret/metadata/private/*" { capabilities = ["deny"] }
    """,
    )
    await tv.tenant("acme").kv.put("private/k", {"v": 1})
    assert await scoped.tenant("acme").kv.list() == ["private/"]
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.list("private")


async def test_capabilities_self(tv: tenantvault.TenantVault) -> None:
    scoped = await _tenant_with_token(tv, "acme", READER)
    response = await scoped.request(
        Operation.UPDATE,
        "sys/capabilities-self",
        {"paths": ["secret/data/app/x", "secret/data/other"]},
        namespace="acme",
    )
    data = response.data or {}
    assert data["secret/data/app/x"] == ["read"]
    assert data["secret/data/other"] == ["deny"]
