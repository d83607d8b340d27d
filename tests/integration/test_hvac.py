"""hvac, the reference Python Vault client, drives `tenantvault serve` (dev and embedded)
through every endpoint of issue 3: namespaces, KV v2, ACL policies, tokens, health, seal
status and mounts; and no token of one tenant ever reaches another."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest
import requests

from tests.integration._support import assert_no_secret, canary, remember_secret, unique_name
from tests.integration.conftest import ALL_MODES, TenantVaultServer

pytestmark = [
    pytest.mark.integration,
    # Also in gateway mode: tenant data served by a real OpenBao, both tenancy strategies.
    pytest.mark.parametrize("tenantvault_server", ALL_MODES, indirect=True, scope="session"),
]

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
# Everything inside one tenant: the policy of a tenant's application administrator.
ADMIN_POLICY = """
path "secret/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl" { capabilities = ["list"] }
path "auth/token/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/mounts" { capabilities = ["read"] }
"""
APP_POLICY = """
path "secret/data/app/*" { capabilities = ["create", "read", "update", "patch"] }
path "secret/metadata/app/*" { capabilities = ["list", "read"] }
"""

Connect = Callable[..., hvac.Client]


@pytest.fixture
def connect(tenantvault_server: TenantVaultServer) -> Iterator[Connect]:
    """hvac clients for the server under test; closed (their sockets) after the test."""
    clients: list[hvac.Client] = []

    def make(token: str, namespace: str | None = None) -> hvac.Client:
        client = hvac.Client(
            url=tenantvault_server.addr, token=token, namespace=namespace, timeout=30
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.adapter.close()


@pytest.fixture
def root(connect: Connect, tenantvault_server: TenantVaultServer) -> hvac.Client:
    return connect(tenantvault_server.root_token)


@pytest.fixture
def tenant(root: hvac.Client) -> str:
    name = unique_name()
    root.sys.create_namespace(name)
    return name


@pytest.fixture
def ns(connect: Connect, tenantvault_server: TenantVaultServer, tenant: str) -> hvac.Client:
    """The root token acting inside `tenant`, as `hvac.Client(namespace=...)`."""
    return connect(tenantvault_server.root_token, namespace=tenant)


def issued(auth: dict[str, Any]) -> str:
    return remember_secret(str(auth["client_token"]))


def read(client: hvac.Client, path: str, version: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = client.secrets.kv.v2.read_secret_version(
        path, version=version, raise_on_deleted_version=True
    )
    return result


def merge_patch(client: hvac.Client, path: str, data: dict[str, Any]) -> Any:
    """`PATCH secret/data/<path>` with a JSON merge patch (hvac's own `patch` is read+write)."""
    return client.adapter.request(
        "PATCH", f"/v1/secret/data/{path}", json={"data": data}, headers=dict(MERGE_PATCH)
    )


def subkeys(client: hvac.Client, path: str, **params: int) -> dict[str, Any]:
    result: dict[str, Any] = client.adapter.get(f"/v1/secret/subkeys/{path}", params=params)
    return result


# -- namespaces ----------------------------------------------------------------------------


def namespace_keys(root: hvac.Client) -> list[str]:
    """The listed namespaces; an empty list is a 404 in Vault."""
    try:
        keys: list[str] = root.sys.list_namespaces()["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return []
    return keys


def test_namespace_create_list_delete(root: hvac.Client, connect: Connect) -> None:
    """A tenant is a namespace: created, listed with its info, deleted with everything in it."""
    name = unique_name()
    created = root.sys.create_namespace(name)
    assert created["data"]["path"] == f"{name}/"
    listed = root.sys.list_namespaces()["data"]
    assert f"{name}/" in listed["keys"]
    assert listed["key_info"][f"{name}/"]["path"] == f"{name}/"

    inside = connect(root.token, namespace=name)
    value = canary()
    inside.secrets.kv.v2.create_or_update_secret("app/db", {"password": value})
    token = issued(inside.auth.token.create(policies=["default"], ttl="1h")["auth"])

    deleted = root.sys.delete_namespace(name)
    assert getattr(deleted, "status_code", 200) in (200, 204)
    assert f"{name}/" not in namespace_keys(root)
    with pytest.raises(hvac.exceptions.Forbidden):
        connect(token, namespace=name).auth.token.lookup_self()

    # Re-created under the same name, the tenant is empty: nothing comes back to life.
    root.sys.create_namespace(name)
    again = connect(root.token, namespace=name)
    with pytest.raises(hvac.exceptions.InvalidPath) as missing:
        read(again, "app/db")
    assert value not in missing.value.text
    with pytest.raises(hvac.exceptions.Forbidden):
        connect(token, namespace=name).auth.token.lookup_self()
    root.sys.delete_namespace(name)


# -- KV v2 ---------------------------------------------------------------------------------


def test_kv_write_read_versions_and_cas(ns: hvac.Client) -> None:
    kv = ns.secrets.kv.v2
    first, second = canary(), canary()
    written = kv.create_or_update_secret("app/db", {"password": first}, cas=0)["data"]
    assert written["version"] == 1
    assert written["deletion_time"] == ""
    assert written["destroyed"] is False
    kv.create_or_update_secret("app/db", {"password": second, "user": "svc"}, cas=1)

    latest = read(ns, "app/db")["data"]
    assert latest["data"] == {"password": second, "user": "svc"}
    assert latest["metadata"]["version"] == 2
    assert read(ns, "app/db", version=1)["data"]["data"] == {"password": first}
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(ns, "app/db", version=7)
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(ns, "app/never-written")


def test_cas_conflicts_are_400(ns: hvac.Client, tenantvault_server: TenantVaultServer) -> None:
    """Check-and-set: 0 on an existing key, a stale version and a missing cas when required
    are all 400 (hvac: InvalidRequest) and change nothing."""
    kv = ns.secrets.kv.v2
    value = canary()
    kv.create_or_update_secret("app/cas", {"v": value}, cas=0)
    for stale in (0, 2, 5):
        with pytest.raises(hvac.exceptions.InvalidRequest) as conflict:
            kv.create_or_update_secret("app/cas", {"v": canary()}, cas=stale)
        assert conflict.value.errors == [
            "check-and-set parameter did not match the current version"
        ]
        assert_no_secret(conflict.value.text or "", "a CAS error")

    kv.update_metadata("app/cas", cas_required=True)
    with pytest.raises(hvac.exceptions.InvalidRequest) as required:
        kv.create_or_update_secret("app/cas", {"v": canary()})
    assert required.value.errors == ["check-and-set parameter required for this call"]
    assert read(ns, "app/cas")["data"]["data"] == {"v": value}
    assert kv.create_or_update_secret("app/cas", {"v": canary()}, cas=1)["data"]["version"] == 2

    # The raw status, not only hvac's mapping of it.
    response = httpx.post(
        f"{tenantvault_server.addr}/v1/secret/data/app/cas",
        headers={"X-Vault-Token": ns.token, "X-Vault-Namespace": ns.adapter.namespace},
        json={"options": {"cas": 1}, "data": {"v": canary()}},
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": ["check-and-set parameter did not match the current version"]
    }


def test_kv_patch_both_ways(ns: hvac.Client) -> None:
    """hvac's `patch` (read, then write with cas) and an HTTP merge-patch, with null removal."""
    kv = ns.secrets.kv.v2
    kv.create_or_update_secret("app/p", {"a": "1", "b": {"c": "2"}, "gone": "x"})
    # hvac's own patch reads without choosing raise_on_deleted_version: its warning, not ours.
    with pytest.warns(DeprecationWarning, match="raise_on_deleted_version"):
        assert kv.patch("app/p", {"d": "4"})["data"]["version"] == 2
    patched = merge_patch(ns, "app/p", {"a": "9", "gone": None, "b": {"e": "5"}})
    assert patched["data"]["version"] == 3
    assert read(ns, "app/p")["data"]["data"] == {"a": "9", "b": {"c": "2", "e": "5"}, "d": "4"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        merge_patch(ns, "app/absent", {"a": "1"})
    with (
        pytest.raises(hvac.exceptions.InvalidPath),
        pytest.warns(DeprecationWarning, match="raise_on_deleted_version"),
    ):
        kv.patch("app/absent", {"a": "1"})


def test_kv_delete_undelete_destroy(ns: hvac.Client) -> None:
    """Soft delete, undelete and destroy; deleted versions answer 404 with their metadata."""
    kv = ns.secrets.kv.v2
    values = [canary() for _ in range(3)]
    for value in values:
        kv.create_or_update_secret("app/life", {"v": value})

    kv.delete_latest_version_of_secret("app/life")
    with pytest.raises(hvac.exceptions.InvalidPath) as deleted:
        read(ns, "app/life")
    body = deleted.value.json
    assert body is not None
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["version"] == 3
    assert body["data"]["metadata"]["deletion_time"] != ""
    assert body["data"]["metadata"]["destroyed"] is False
    assert values[2] not in (deleted.value.text or "")
    # hvac's opt-in: the metadata of a deleted version instead of an exception.
    soft = kv.read_secret_version("app/life", raise_on_deleted_version=False)
    assert soft["data"]["data"] is None
    assert soft["data"]["metadata"]["version"] == 3

    kv.undelete_secret_versions("app/life", [3])
    assert read(ns, "app/life")["data"]["data"] == {"v": values[2]}

    kv.delete_secret_versions("app/life", [1, 2])
    for version in (1, 2):
        with pytest.raises(hvac.exceptions.InvalidPath) as gone:
            read(ns, "app/life", version=version)
        assert gone.value.json["data"]["metadata"]["deletion_time"] != ""
    kv.undelete_secret_versions("app/life", [1])
    assert read(ns, "app/life", version=1)["data"]["data"] == {"v": values[0]}

    kv.destroy_secret_versions("app/life", [1])
    with pytest.raises(hvac.exceptions.InvalidPath) as destroyed:
        read(ns, "app/life", version=1)
    metadata = destroyed.value.json["data"]["metadata"]
    assert metadata["destroyed"] is True
    assert metadata["deletion_time"] == ""
    assert values[0] not in (destroyed.value.text or "")
    kv.undelete_secret_versions("app/life", [1])  # a destroyed version stays destroyed
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(ns, "app/life", version=1)

    versions = kv.read_secret_metadata("app/life")["data"]["versions"]
    assert versions["1"]["destroyed"] is True
    assert versions["2"]["deletion_time"] != ""
    assert versions["3"]["deletion_time"] == ""


def test_kv_list_metadata_and_config(
    ns: hvac.Client, tenantvault_server: TenantVaultServer
) -> None:
    kv = ns.secrets.kv.v2
    for path in ("app/a", "app/b/c", "app/b/d", "other"):
        kv.create_or_update_secret(path, {"v": canary()})
    assert kv.list_secrets("app")["data"]["keys"] == ["a", "b/"]
    assert kv.list_secrets("app/b")["data"]["keys"] == ["c", "d"]
    assert kv.list_secrets("")["data"]["keys"] == ["app/", "other"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets("nothing-here")

    kv.update_metadata(
        "app/a",
        max_versions=2,
        cas_required=False,
        delete_version_after="1h",
        custom_metadata={"owner": "team-a"},
    )
    for _ in range(3):
        kv.create_or_update_secret("app/a", {"v": canary()})
    metadata = kv.read_secret_metadata("app/a")["data"]
    assert metadata["max_versions"] == 2
    assert metadata["delete_version_after"] == "1h0m0s"
    assert metadata["custom_metadata"] == {"owner": "team-a"}
    assert metadata["current_version"] == 4
    assert metadata["oldest_version"] == 3
    assert sorted(metadata["versions"]) == ["3", "4"]
    # delete_version_after schedules a deletion time in the future on each new version.
    assert metadata["versions"]["4"]["deletion_time"] != ""
    assert read(ns, "app/a")["data"]["metadata"]["version"] == 4

    if tenantvault_server.mode == "vault-prefix":
        # The documented difference of the prefix strategy: every tenant's KV shares one
        # upstream mount, so its mount-level limits are per secret only (README).
        with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot be set on the kv mount"):
            kv.configure(max_versions=5)
        # (hvac's configure() always sends max_versions, so the raw call sets only cas.)
        ns.adapter.post("/v1/secret/config", json={"cas_required": False})
        assert kv.read_configuration()["data"]["cas_required"] is False
    else:
        kv.configure(max_versions=5, cas_required=False, delete_version_after="2h")
        config = kv.read_configuration()["data"]
        assert config["max_versions"] == 5
        assert config["cas_required"] is False
        assert config["delete_version_after"] == "2h0m0s"

    kv.delete_metadata_and_all_versions("app/a")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("app/a")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(ns, "app/a")
    assert kv.list_secrets("app")["data"]["keys"] == ["b/"]


def test_kv_subkeys(ns: hvac.Client) -> None:
    ns.secrets.kv.v2.create_or_update_secret(
        "app/tree", {"a": canary(), "b": {"c": canary(), "d": {"e": canary()}}}
    )
    full = subkeys(ns, "app/tree")["data"]
    assert full["subkeys"] == {"a": None, "b": {"c": None, "d": {"e": None}}}
    assert full["metadata"]["version"] == 1
    assert subkeys(ns, "app/tree", depth=1)["data"]["subkeys"] == {"a": None, "b": None}
    assert subkeys(ns, "app/tree", depth=2, version=1)["data"]["subkeys"] == {
        "a": None,
        "b": {"c": None, "d": None},
    }
    with pytest.raises(hvac.exceptions.InvalidPath):
        subkeys(ns, "app/none")


# -- policies and tokens ---------------------------------------------------------------------


def test_acl_policies(ns: hvac.Client) -> None:
    ns.sys.create_or_update_acl_policy("app", APP_POLICY)
    assert ns.sys.read_acl_policy("app")["data"]["policy"] == APP_POLICY
    assert ns.sys.read_acl_policy("app")["data"]["name"] == "app"
    keys = ns.sys.list_acl_policies()["data"]["keys"]
    assert "app" in keys
    assert "default" in keys
    ns.sys.delete_acl_policy("app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        ns.sys.read_acl_policy("app")
    assert "app" not in ns.sys.list_acl_policies()["data"]["keys"]


def test_tokens_lifecycle(ns: hvac.Client, connect: Connect, tenant: str) -> None:
    """create / create_orphan / lookup(-self, -accessor) / renew(-self) / revoke(-self,
    -accessor), and revoking a parent revokes its children but not orphans."""
    ns.sys.create_or_update_acl_policy("admin", ADMIN_POLICY)
    parent_auth = ns.auth.token.create(policies=["admin"], ttl="1h", meta={"team": "a"})["auth"]
    parent = issued(parent_auth)
    assert parent_auth["policies"] == ["admin", "default"]
    assert parent_auth["orphan"] is False
    assert parent_auth["renewable"] is True

    looked = ns.auth.token.lookup(parent)["data"]
    assert looked["accessor"] == parent_auth["accessor"]
    assert looked["meta"] == {"team": "a"}
    assert looked["policies"] == ["admin", "default"]
    by_accessor = ns.auth.token.lookup_accessor(parent_auth["accessor"])["data"]
    assert by_accessor["id"] == ""  # an accessor never reveals the token
    assert by_accessor["accessor"] == parent_auth["accessor"]

    as_parent = connect(parent, namespace=tenant)
    assert as_parent.auth.token.lookup_self()["data"]["accessor"] == parent_auth["accessor"]
    renewed = ns.auth.token.renew(parent, increment="2h")["auth"]
    assert 3600 < renewed["lease_duration"] <= 7200
    assert as_parent.auth.token.renew_self(increment="3h")["auth"]["lease_duration"] > 7200

    child_auth = as_parent.auth.token.create(policies=["admin"], ttl="30m")["auth"]
    child = issued(child_auth)
    orphan_auth = as_parent.auth.token.create_orphan(policies=["admin"], ttl="30m")["auth"]
    orphan = issued(orphan_auth)
    assert orphan_auth["orphan"] is True
    assert ns.auth.token.lookup(orphan)["data"]["orphan"] is True

    ns.auth.token.revoke(parent)
    for gone in (parent, child):
        with pytest.raises(hvac.exceptions.Forbidden):
            connect(gone, namespace=tenant).auth.token.lookup_self()
    as_orphan = connect(orphan, namespace=tenant)
    assert as_orphan.auth.token.lookup_self()["data"]["orphan"] is True

    extra = issued(as_orphan.auth.token.create(policies=["admin"], ttl="10m")["auth"])
    as_orphan.auth.token.revoke_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        as_orphan.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        connect(extra, namespace=tenant).auth.token.lookup_self()

    last_auth = ns.auth.token.create(policies=["admin"], ttl="10m")["auth"]
    last = issued(last_auth)
    ns.auth.token.revoke_accessor(last_auth["accessor"])
    with pytest.raises(hvac.exceptions.Forbidden):
        connect(last, namespace=tenant).auth.token.lookup_self()


def test_app_token_is_confined_to_its_policy(
    ns: hvac.Client, connect: Connect, tenant: str
) -> None:
    """A tenant token works in its own tenant (with or without the namespace header) and
    only where its policy says."""
    ns.sys.create_or_update_acl_policy("app", APP_POLICY)
    token = issued(ns.auth.token.create(policies=["app"], ttl="1h")["auth"])
    app = connect(token, namespace=tenant)
    value = canary()
    app.secrets.kv.v2.create_or_update_secret("app/github", {"token": value})
    assert read(app, "app/github")["data"]["data"] == {"token": value}
    assert app.secrets.kv.v2.list_secrets("app")["data"]["keys"] == ["github"]
    # The token's own tenant is selected when no namespace is named.
    assert read(connect(token), "app/github")["data"]["data"] == {"token": value}
    for denied in (
        lambda: app.secrets.kv.v2.create_or_update_secret("other/x", {"v": canary()}),
        lambda: read(app, "other/x"),
        lambda: app.secrets.kv.v2.delete_metadata_and_all_versions("app/github"),
        lambda: app.sys.read_acl_policy("app"),
        lambda: app.auth.token.create(policies=["app"]),
    ):
        with pytest.raises(hvac.exceptions.Forbidden):
            denied()


def test_token_ttl_is_reported_as_granted(ns: hvac.Client) -> None:
    """Vault answers a create or renew with the TTL it granted: `ttl="1h"` is 3600 seconds,
    not 3599 (the `bao token create` table would say 59m59s)."""
    created = ns.auth.token.create(policies=["default"], ttl="1h")["auth"]
    issued(created)
    assert created["lease_duration"] == 3600
    renewed = ns.auth.token.renew(created["client_token"], increment="2h")["auth"]
    assert renewed["lease_duration"] == 7200


def test_renew_with_a_shorter_increment_shortens_the_ttl(ns: hvac.Client, connect: Connect) -> None:
    """Vault's renew sets the TTL to `increment` from now (capped by the max TTL), even when
    that is shorter than what is left: a client can shorten its own token's life."""
    created = ns.auth.token.create(policies=["default"], ttl="1h")["auth"]
    token = issued(created)
    renewed = ns.auth.token.renew(token, increment="10m")["auth"]
    assert renewed["lease_duration"] <= 600
    own = connect(token, namespace=ns.adapter.namespace)
    assert own.auth.token.lookup_self()["data"]["ttl"] <= 600
    assert own.auth.token.renew_self(increment="5m")["auth"]["lease_duration"] <= 300


# -- health, seal status, mounts -------------------------------------------------------------


def test_health_and_seal_status_are_vault_shaped(root: hvac.Client) -> None:
    """Vault answers sys/health and sys/seal-status with bare JSON (no envelope); hvac's
    `is_sealed()` and every monitoring check read the top-level fields."""
    assert root.sys.read_health_status().status_code == 200  # HEAD, hvac's default
    health = root.sys.read_health_status(method="GET")
    assert health["initialized"] is True
    assert health["sealed"] is False
    assert health["standby"] is False
    seal = root.sys.read_seal_status()
    assert seal["sealed"] is False
    assert seal["initialized"] is True
    assert seal["type"] == "shamir"
    assert root.sys.is_sealed() is False


def test_mounts_list_the_tenant_kv_v2(ns: hvac.Client) -> None:
    mounts = ns.sys.list_mounted_secrets_engines()
    assert mounts["data"]["secret/"]["type"] == "kv"
    assert mounts["data"]["secret/"]["options"] == {"version": "2"}
    assert ns.sys.retrieve_mount_option("secret", "version") == "2"


def test_mounts_also_at_top_level_like_vault(ns: hvac.Client) -> None:
    """Vault (and OpenBao) repeat the mount table at the top level of the sys/mounts answer
    for older clients, besides `data`."""
    mounts = ns.sys.list_mounted_secrets_engines()
    assert mounts.get("secret/", {}).get("type") == "kv"


# -- cross-tenant ---------------------------------------------------------------------------

TOKEN_KINDS = ["tenant-root", "app", "child", "orphan"]


@dataclass(frozen=True)
class Tenants:
    """Three tenants whose names share a prefix (`acme`, `acme-evil`, `acme2` style), each
    with a secret, a policy and a token of every kind."""

    names: list[str]
    tokens: dict[str, dict[str, str]]
    accessors: dict[str, str]
    secrets: dict[str, str]


@pytest.fixture
def prefix_tenants(root: hvac.Client, connect: Connect) -> Tenants:
    base = unique_name("acme")
    names = [base, f"{base}-evil", f"{base}2"]
    tokens: dict[str, dict[str, str]] = {}
    accessors: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for name in names:
        root.sys.create_namespace(name)
        inside = connect(root.token, namespace=name)
        inside.sys.create_or_update_acl_policy("admin", ADMIN_POLICY)
        secrets[name] = canary()
        inside.secrets.kv.v2.create_or_update_secret("app/existing", {"v": secrets[name]})
        tenant_root = inside.auth.token.create(policies=["root"], ttl="1h")["auth"]
        app = inside.auth.token.create(policies=["admin"], ttl="1h")["auth"]
        child = connect(issued(app), namespace=name).auth.token.create(
            policies=["admin"], ttl="1h"
        )["auth"]
        orphan = inside.auth.token.create_orphan(policies=["admin"], ttl="1h")["auth"]
        tokens[name] = {
            "tenant-root": issued(tenant_root),
            "app": issued(app),
            "child": issued(child),
            "orphan": issued(orphan),
        }
        accessors[name] = str(app["accessor"])
    return Tenants(names, tokens, accessors, secrets)


def _victims(tenants: Tenants, attacker: str) -> list[str]:
    return [name for name in tenants.names if name != attacker]


def _foreign_operations(client: hvac.Client) -> dict[str, Callable[[], Any]]:
    kv = client.secrets.kv.v2
    return {
        "read existing": lambda: read(client, "app/existing"),
        "read missing": lambda: read(client, "app/missing"),
        "read version": lambda: read(client, "app/existing", version=1),
        "write existing": lambda: kv.create_or_update_secret("app/existing", {"v": canary()}),
        "write new": lambda: kv.create_or_update_secret("app/new", {"v": canary()}),
        "write cas": lambda: kv.create_or_update_secret("app/existing", {"v": "x"}, cas=1),
        "merge patch": lambda: merge_patch(client, "app/existing", {"v": canary()}),
        "list root": lambda: kv.list_secrets(""),
        "list dir": lambda: kv.list_secrets("app"),
        "read metadata": lambda: kv.read_secret_metadata("app/existing"),
        "write metadata": lambda: kv.update_metadata("app/existing", max_versions=1),
        "subkeys": lambda: subkeys(client, "app/existing"),
        "delete latest": lambda: kv.delete_latest_version_of_secret("app/existing"),
        "delete versions": lambda: kv.delete_secret_versions("app/existing", [1]),
        "undelete": lambda: kv.undelete_secret_versions("app/existing", [1]),
        "destroy": lambda: kv.destroy_secret_versions("app/existing", [1]),
        "delete metadata": lambda: kv.delete_metadata_and_all_versions("app/existing"),
        "read config": lambda: kv.read_configuration(),
        "write config": lambda: kv.configure(max_versions=1),
        "list policies": lambda: client.sys.list_acl_policies(),
        "read policy": lambda: client.sys.read_acl_policy("admin"),
        "write policy": lambda: client.sys.create_or_update_acl_policy("admin", 'path "*" {}'),
        "delete policy": lambda: client.sys.delete_acl_policy("admin"),
        "create token": lambda: client.auth.token.create(policies=["admin"]),
        "create orphan": lambda: client.auth.token.create_orphan(policies=["admin"]),
        "lookup self": lambda: client.auth.token.lookup_self(),
        "renew self": lambda: client.auth.token.renew_self(),
        "mounts": lambda: client.sys.list_mounted_secrets_engines(),
    }


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_cross_tenant_every_operation_is_forbidden(
    kind: str, prefix_tenants: Tenants, connect: Connect, root: hvac.Client
) -> None:
    """A token of one tenant, naming another tenant (prefix collisions included) in
    X-Vault-Namespace, is refused with 403 on every operation and changes nothing."""
    for attacker in prefix_tenants.names:
        token = prefix_tenants.tokens[attacker][kind]
        for victim in _victims(prefix_tenants, attacker):
            client = connect(token, namespace=victim)
            for label, operation in _foreign_operations(client).items():
                with pytest.raises(hvac.exceptions.Forbidden) as denied:
                    operation()
                assert_no_secret(denied.value.text or "", f"403 body of {label}")
    for name in prefix_tenants.names:
        inside = connect(root.token, namespace=name)
        current = read(inside, "app/existing")["data"]
        assert current["data"] == {"v": prefix_tenants.secrets[name]}
        assert current["metadata"]["version"] == 1
        assert inside.secrets.kv.v2.list_secrets("app")["data"]["keys"] == ["existing"]
        assert "admin" in inside.sys.list_acl_policies()["data"]["keys"]
        for own in prefix_tenants.tokens[name].values():  # every token still works at home
            connect(own, namespace=name).auth.token.lookup_self()


def _raw(addr: str, method: str, path: str, token: str, namespace: str | None) -> requests.Response:
    headers = {"X-Vault-Token": token}
    if namespace is not None:
        headers["X-Vault-Namespace"] = namespace
    return requests.request(method, f"{addr}/v1/{path}", headers=headers, timeout=30)


# (method, path of something that exists in the victim, the same for something that does not)
PROBES = [
    ("GET", "secret/data/app/existing", "secret/data/app/missing"),
    ("GET", "secret/data/app/existing?version=1", "secret/data/app/existing?version=9"),
    ("GET", "secret/metadata/app/existing", "secret/metadata/app/missing"),
    ("LIST", "secret/metadata/app", "secret/metadata/nothing"),
    ("GET", "secret/subkeys/app/existing", "secret/subkeys/app/missing"),
    ("DELETE", "secret/data/app/existing", "secret/data/app/missing"),
    ("GET", "sys/policies/acl/admin", "sys/policies/acl/missing"),
]


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_cross_tenant_403_body_does_not_depend_on_existence(
    kind: str, prefix_tenants: Tenants, tenantvault_server: TenantVaultServer
) -> None:
    """The foreign 403 is byte-identical whether the path exists or not, through the
    namespace header and through the namespace path prefix."""
    addr = tenantvault_server.addr
    for attacker in prefix_tenants.names:
        token = prefix_tenants.tokens[attacker][kind]
        for victim in _victims(prefix_tenants, attacker):
            for method, existing, missing in PROBES:
                seen = []
                for path in (existing, missing):
                    for route, namespace in ((path, victim), (f"{victim}/{path}", None)):
                        response = _raw(addr, method, route, token, namespace)
                        assert response.status_code == 403, (method, route, kind)
                        seen.append(response.content)
                assert len(set(seen)) == 1, (method, existing, kind, seen)
                assert_no_secret(seen[0].decode(), "a cross-tenant 403 body")


def test_namespace_header_mismatch_is_403(
    prefix_tenants: Tenants, tenantvault_server: TenantVaultServer
) -> None:
    """A tenant token with X-Vault-Namespace of another tenant, or with a path prefix that
    disagrees with the header, is refused before anything else is looked at."""
    addr = tenantvault_server.addr
    own, other = prefix_tenants.names[0], prefix_tenants.names[1]
    token = prefix_tenants.tokens[own]["app"]
    assert _raw(addr, "GET", "secret/data/app/existing", token, own).status_code == 200
    assert _raw(addr, "GET", f"{own}/secret/data/app/existing", token, None).status_code == 200
    for method, path, namespace in (
        ("GET", "secret/data/app/existing", other),
        ("GET", "auth/token/lookup-self", other),
        ("GET", f"{other}/secret/data/app/existing", own),
        ("GET", f"{other}/auth/token/lookup-self", None),
        ("GET", "secret/data/app/existing", "root"),
    ):
        response = _raw(addr, method, path, token, namespace)
        assert response.status_code == 403, (path, namespace, response.text)


def test_foreign_token_ids_and_accessors_reveal_nothing(
    prefix_tenants: Tenants, connect: Connect
) -> None:
    """Looking up or revoking another tenant's token or accessor from inside one's own
    tenant answers exactly as for a token or accessor that does not exist (C-2)."""
    own, other = prefix_tenants.names[0], prefix_tenants.names[1]
    me = connect(prefix_tenants.tokens[own]["tenant-root"], namespace=own)
    victim_token = prefix_tenants.tokens[other]["app"]
    victim_accessor = prefix_tenants.accessors[other]
    fake_token = canary()
    fake_accessor = uuid.uuid4().hex[:24]

    def outcome(call: Callable[[], Any]) -> tuple[type[BaseException], list[Any] | None]:
        with pytest.raises(hvac.exceptions.VaultError) as error:
            call()
        assert_no_secret(error.value.text or "", "a token error")
        return type(error.value), error.value.errors

    assert outcome(lambda: me.auth.token.lookup(victim_token)) == outcome(
        lambda: me.auth.token.lookup(fake_token)
    )
    for call in (me.auth.token.lookup_accessor, me.auth.token.revoke_accessor):
        assert outcome(functools.partial(call, victim_accessor)) == outcome(
            functools.partial(call, fake_accessor)
        )
    assert outcome(lambda: me.auth.token.renew(victim_token)) == outcome(
        lambda: me.auth.token.renew(fake_token)
    )
    # Revoking a token that is not there (for this tenant) is a quiet no-op, as in Vault.
    assert me.auth.token.revoke(victim_token).status_code == 204
    # The victim's token is untouched.
    assert connect(victim_token, namespace=other).auth.token.lookup_self()["data"]["accessor"] == (
        victim_accessor
    )
