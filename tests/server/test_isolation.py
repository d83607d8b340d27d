"""Tenant isolation over HTTP: every kind of token, against other tenants' paths (existing or
not), by header and by path prefix, gets 403 with byte-identical bodies (C-1, A-13, A-14)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import canary
from tests.server.conftest import ADMIN_POLICY, MERGE_PATCH, Vault, assert_no_canary

pytestmark = pytest.mark.usefixtures("app")

DENIED = b'{"errors":["permission denied"]}'
# Prefix collisions with "acme": neither may ever be reached by an acme token.
FOREIGN = ("acme-evil", "acme2")


@dataclass(frozen=True)
class Op:
    method: str
    template: str  # {p}: a key path, {d}: a directory, {n}: a policy name
    body: bytes | None = None
    content_type: str | None = None

    def path(self, *, exists: bool) -> str:
        return self.template.format(
            p="shared/x" if exists else "shared/missing",
            d="shared" if exists else "nodir",
            n="pol" if exists else "nopol",
        )


OPS = [
    Op("GET", "secret/data/{p}"),
    Op("POST", "secret/data/{p}", b'{"data":{"x":"overwritten"}}', "application/json"),
    Op("PUT", "secret/data/{p}", b'{"options":{"cas":1},"data":{"x":"y"}}', "application/json"),
    Op("PATCH", "secret/data/{p}", b'{"data":{"x":null}}', MERGE_PATCH["Content-Type"]),
    Op("DELETE", "secret/data/{p}"),
    Op("GET", "secret/metadata/{p}"),
    Op("DELETE", "secret/metadata/{p}"),
    Op("LIST", "secret/metadata/{d}"),
    Op("GET", "secret/metadata/{d}?list=true"),
    Op("POST", "secret/delete/{p}", b'{"versions":[1]}', "application/json"),
    Op("POST", "secret/destroy/{p}", b'{"versions":[1]}', "application/json"),
    Op("GET", "secret/subkeys/{p}"),
    Op("GET", "secret/config"),
    Op("GET", "sys/policies/acl/{n}"),
    Op("DELETE", "sys/policies/acl/{n}"),
    Op("LIST", "sys/policies/acl"),
    Op("GET", "sys/internal/ui/mounts/secret/{p}"),
    Op("GET", "sys/mounts"),
    Op("POST", "auth/token/create", b"{}", "application/json"),
    Op("GET", "transit/keys/{n}"),
    Op("LIST", "transit/keys"),
    Op("POST", "transit/encrypt/{n}", b'{"plaintext":"aGVsbG8="}', "application/json"),
    Op("POST", "transit/decrypt/{n}", b'{"ciphertext":"vault:v1:AAAA"}', "application/json"),
    Op("POST", "transit/keys/{n}/rotate", b"{}", "application/json"),
    Op("DELETE", "transit/keys/{n}"),
    Op("GET", "auth/token/lookup-self"),
]


@pytest.fixture
async def world(vault: Vault) -> dict[str, Any]:
    """acme with every kind of token; two prefix-colliding tenants holding canaries."""
    secrets: dict[str, str] = {}
    for tenant in FOREIGN:
        await vault.create_tenant(tenant)
        await vault.write_policy(tenant, "pol", ADMIN_POLICY)
        secrets[tenant] = canary(f"{tenant}-")
        await vault.put(tenant, "shared/x", {"x": secrets[tenant]})
        key = await vault.root("POST", "transit/keys/pol", namespace=tenant, json={})
        assert key.status_code in (200, 204)
    admin = await vault.tenant_admin("acme")
    child = await vault.request(
        "POST", "auth/token/create", token=admin, json={"policies": ["admin"]}
    )
    orphan = await vault.create_token("acme", ["admin"], orphan=True)
    default_only = await vault.create_token("acme", [])
    await vault.write_policy(
        None,
        "everything",
        'path "*" { capabilities = '
        '["create", "read", "update", "patch", "delete", "list", "sudo"] }',
    )
    root_ns = await vault.create_token(None, ["everything"])
    foreign_tokens = {t: (await vault.create_token(t, ["pol"]))["client_token"] for t in FOREIGN}
    return {
        "secrets": secrets,
        "tokens": {
            "tenant admin": admin,
            "child of tenant admin": child.json()["auth"]["client_token"],
            "orphan": orphan["client_token"],
            "default policy only": default_only["client_token"],
            "root namespace, non-root, path *": root_ns["client_token"],
        },
        "foreign_tokens": foreign_tokens,
    }


async def _send(
    vault: Vault, op: Op, *, token: str | None, tenant: str, exists: bool, by_prefix: bool
) -> tuple[int, bytes]:
    path = op.path(exists=exists)
    headers = {"Content-Type": op.content_type} if op.content_type else {}
    if by_prefix:
        target, namespace = f"{tenant}/{path}", None
    else:
        target, namespace = path, tenant
    raw_path, _, query = target.partition("?")
    response = await vault.request(
        op.method,
        raw_path,
        token=token,
        namespace=namespace,
        content=op.body,
        headers=headers,
        params=dict([query.split("=")]) if query else None,
    )
    return response.status_code, response.content


@pytest.mark.parametrize("by_prefix", [False, True], ids=["header", "path-prefix"])
async def test_every_token_kind_gets_identical_403_in_other_tenants(
    vault: Vault, world: dict[str, Any], by_prefix: bool
) -> None:
    for kind, token in world["tokens"].items():
        for tenant in FOREIGN:
            for op in OPS:
                existing = await _send(
                    vault, op, token=token, tenant=tenant, exists=True, by_prefix=by_prefix
                )
                missing = await _send(
                    vault, op, token=token, tenant=tenant, exists=False, by_prefix=by_prefix
                )
                where = f"{kind} → {tenant}: {op.method} {op.template}"
                assert existing == (403, DENIED), where
                assert missing == existing, where
    assert_no_canary(vault.seen.texts, *world["secrets"].values())


async def test_foreign_tenants_are_unchanged_after_the_attack(
    vault: Vault, world: dict[str, Any]
) -> None:
    for token in world["tokens"].values():
        for tenant in FOREIGN:
            for op in OPS:
                await _send(vault, op, token=token, tenant=tenant, exists=True, by_prefix=False)
    for tenant in FOREIGN:
        read = await vault.root("GET", "secret/data/shared/x", namespace=tenant)
        assert read.status_code == 200
        assert read.json()["data"]["data"] == {"x": world["secrets"][tenant]}
        assert read.json()["data"]["metadata"]["version"] == 1
        assert (
            await vault.root("GET", "sys/policies/acl/pol", namespace=tenant)
        ).status_code == 200


@pytest.mark.parametrize(
    "token", [None, "", "bogus", "tvs.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
)
async def test_missing_and_bad_tokens_get_the_same_403_everywhere(
    vault: Vault, world: dict[str, Any], token: str | None
) -> None:
    for tenant in ("acme", *FOREIGN):
        for op in OPS:
            for exists in (True, False):
                result = await _send(
                    vault, op, token=token, tenant=tenant, exists=exists, by_prefix=False
                )
                assert result == (403, DENIED), (tenant, op)


async def test_namespace_header_must_repeat_the_tokens_tenant(
    vault: Vault, world: dict[str, Any]
) -> None:
    admin = world["tokens"]["tenant admin"]
    await vault.put("acme", "own", {"v": "x"}, token=admin)
    own = await vault.request("GET", "secret/data/own", token=admin, namespace="acme")
    assert own.status_code == 200
    own_prefix = await vault.request("GET", "acme/secret/data/own", token=admin)
    assert own_prefix.status_code == 200
    for namespace in ("acme2", "acme-evil", "ghost", "ACME", "acme/acme"):
        mismatch = await vault.request("GET", "secret/data/own", token=admin, namespace=namespace)
        assert (mismatch.status_code, mismatch.content) == (403, DENIED), namespace
    # A header and a path prefix that disagree.
    both = await vault.request("GET", "acme2/secret/data/own", token=admin, namespace="acme")
    assert (both.status_code, both.content) == (403, DENIED)


async def test_foreign_tokens_cannot_be_looked_up_renewed_or_revoked(
    vault: Vault, world: dict[str, Any]
) -> None:
    admin = world["tokens"]["tenant admin"]
    foreign = world["foreign_tokens"]["acme2"]
    unknown = "tvs.unknownunknownunknownunknownunknownunkno"
    lookups = [
        await vault.request("POST", "auth/token/lookup", token=admin, json={"token": t})
        for t in (foreign, unknown)
    ]
    assert lookups[0].status_code == 403
    assert lookups[0].content == lookups[1].content
    renews = [
        await vault.request("POST", "auth/token/renew", token=admin, json={"token": t})
        for t in (foreign, unknown)
    ]
    assert renews[0].status_code == 403
    assert renews[0].content == renews[1].content
    revoke = await vault.request("POST", "auth/token/revoke", token=admin, json={"token": foreign})
    assert revoke.status_code == 204
    still = await vault.request("GET", "auth/token/lookup-self", token=foreign)
    assert still.status_code == 200
    assert_no_canary([r.text for r in (*lookups, *renews)], foreign)


async def test_foreign_accessors_look_like_unknown_ones(
    vault: Vault, world: dict[str, Any]
) -> None:
    admin = world["tokens"]["tenant admin"]
    foreign = world["foreign_tokens"]["acme2"]
    accessor = (await vault.request("GET", "auth/token/lookup-self", token=foreign)).json()["data"][
        "accessor"
    ]
    answers = [
        await vault.request("POST", f"auth/token/{action}", token=admin, json={"accessor": a})
        for action in ("lookup-accessor", "revoke-accessor")
        for a in (accessor, "unknownaccessor")
    ]
    assert answers[0].status_code == 400
    assert answers[0].content == answers[1].content
    assert answers[2].content == answers[3].content
    assert (await vault.request("GET", "auth/token/lookup-self", token=foreign)).status_code == 200


async def test_tenant_lists_never_show_other_tenants(vault: Vault, world: dict[str, Any]) -> None:
    admin = world["tokens"]["tenant admin"]
    await vault.put("acme", "shared/own", {"v": "x"}, token=admin)
    listed = await vault.request("LIST", "secret/metadata/shared", token=admin)
    assert listed.json()["data"]["keys"] == ["own"]
    policies = await vault.request("LIST", "sys/policies/acl", token=admin)
    assert "pol" not in policies.json()["data"]["keys"]
    namespaces = await vault.request("LIST", "sys/namespaces", token=admin)
    assert namespaces.status_code in (403, 404)
    assert "acme2" not in namespaces.text
