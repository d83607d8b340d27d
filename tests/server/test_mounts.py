"""sys/mounts and per-tenant mount tables over HTTP: Vault's shapes, statuses and texts
(checked against OpenBao 2.7.2 `bao server -dev`, inside a namespace and outside)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import create_app
from tests.conftest import canary
from tests.server.conftest import BASE_URL, Vault

MOUNT_ADMIN = """
path "sys/mounts" { capabilities = ["read"] }
path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete"] }
path "+/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "team/+/*" { capabilities = ["create", "read", "update", "delete", "list"] }
"""


async def enable(vault: Vault, tenant: str | None, path: str, body: dict[str, Any]) -> int:
    response = await vault.root("POST", f"sys/mounts/{path}", namespace=tenant, json=body)
    return response.status_code


async def errors(vault: Vault, method: str, path: str, body: Any = None, **kw: Any) -> list[str]:
    response = await vault.root(method, path, json=body, **kw)
    assert response.status_code == 400, response.text
    result: list[str] = response.json()["errors"]
    return result


async def test_enable_list_read_and_disable_kv1_kv2_and_transit(vault: Vault) -> None:
    await vault.create_tenant("acme")
    assert await enable(vault, "acme", "kv1", {"type": "kv", "options": {"version": "1"}}) == 204
    assert await enable(vault, "acme", "kv2", {"type": "kv-v2", "description": "two"}) == 204
    assert await enable(vault, "acme", "team/tr", {"type": "transit"}) == 204
    listed = await vault.root("GET", "sys/mounts", namespace="acme")
    body = listed.json()
    assert set(body["data"]) == {"sys/", "secret/", "transit/", "kv1/", "kv2/", "team/tr/"}
    assert body["kv2/"] == body["data"]["kv2/"]  # Vault also writes each mount at top level
    kv2 = body["data"]["kv2/"]
    assert (kv2["type"], kv2["description"], kv2["options"]) == ("kv", "two", {"version": "2"})
    assert kv2["accessor"].startswith("kv_")
    assert len(kv2["accessor"]) == len("kv_") + 8
    assert kv2["config"] == {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0}
    read = await vault.root("GET", "sys/mounts/team/tr", namespace="acme")
    assert read.status_code == 200
    assert read.json()["data"]["type"] == "transit"
    assert read.json()["data"]["options"] == {}
    disabled = await vault.root("DELETE", "sys/mounts/kv2", namespace="acme")
    assert disabled.status_code == 204
    again = await vault.root("DELETE", "sys/mounts/kv2", namespace="acme")
    assert again.status_code == 204  # Vault: a missing mount is not revealed
    assert await errors(vault, "GET", "sys/mounts/kv2", namespace="acme") == [
        "No secret engine mount at kv2/"
    ]


async def test_custom_mounts_serve_their_engines(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "apps/kv", {"type": "kv", "options": {"version": "2"}})
    await enable(vault, "acme", "legacy", {"type": "kv"})
    await enable(vault, "acme", "crypto", {"type": "transit"})
    put = await vault.root(
        "POST", "apps/kv/data/db", namespace="acme", json={"data": {"password": "p"}}
    )
    assert put.status_code == 200
    got = await vault.root("GET", "apps/kv/data/db", namespace="acme")
    assert got.json()["data"]["data"] == {"password": "p"}
    assert (await vault.root("GET", "secret/data/db", namespace="acme")).status_code == 404
    v1 = await vault.root("POST", "legacy/db", namespace="acme", json={"password": "q"})
    assert v1.status_code == 204
    assert (await vault.root("GET", "legacy/db", namespace="acme")).json()["data"] == {
        "password": "q"
    }
    key = await vault.root("POST", "crypto/keys/k", namespace="acme")
    assert key.status_code == 200
    assert (await vault.root("POST", "transit/keys/k", namespace="acme")).status_code == 200
    listed = await vault.root("LIST", "crypto/keys", namespace="acme")
    assert listed.json()["data"]["keys"] == ["k"]
    # The path-prefix namespace form reaches a custom mount too.
    by_prefix = await vault.root("GET", "acme/apps/kv/data/db")
    assert by_prefix.json()["data"]["data"] == {"password": "p"}


async def test_two_tenants_same_named_mounts_are_isolated(vault: Vault) -> None:
    secret = canary("acme-")
    for tenant in ("acme", "beta"):
        await vault.create_tenant(tenant)
        assert await enable(vault, tenant, "shared", {"type": "kv-v2"}) == 204
    await vault.root("POST", "shared/data/x", namespace="acme", json={"data": {"v": secret}})
    assert (await vault.root("GET", "shared/data/x", namespace="beta")).status_code == 404
    uuids = [
        (await vault.root("GET", "sys/mounts/shared", namespace=t)).json()["data"]["uuid"]
        for t in ("acme", "beta")
    ]
    assert uuids[0] != uuids[1]
    # Disabling beta's mount leaves acme's intact.
    await vault.root("DELETE", "sys/mounts/shared", namespace="beta")
    got = await vault.root("GET", "shared/data/x", namespace="acme")
    assert got.json()["data"]["data"] == {"v": secret}
    # A beta token never reaches acme's mount, by header or by path prefix.
    beta = await vault.tenant_admin("gamma")
    for response in (
        await vault.request("GET", "shared/data/x", token=beta, namespace="acme"),
        await vault.request("GET", "acme/shared/data/x", token=beta),
    ):
        assert response.status_code == 403


async def test_disable_destroys_the_data_and_reenable_starts_empty(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "kv", {"type": "kv-v2"})
    await vault.root("POST", "kv/data/x", namespace="acme", json={"data": {"v": 1}})
    await vault.root("DELETE", "sys/mounts/kv", namespace="acme")
    assert (await vault.root("GET", "kv/data/x", namespace="acme")).status_code == 404
    await enable(vault, "acme", "kv", {"type": "kv-v2"})
    assert (await vault.root("GET", "kv/data/x", namespace="acme")).status_code == 404
    assert (await vault.root("LIST", "kv/metadata", namespace="acme")).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("x", {}, "backend type must be specified as a string"),
        ("x", {"type": "bogus"}, "plugin not found in the catalog: bogus"),
        (
            "x",
            {"type": "transit", "options": {"version": "2"}},
            'secrets engine "transit" does not allow setting a version',
        ),
        ("y", {"type": "cubbyhole"}, 'mount type of "cubbyhole" is not mountable'),
        ("sys/x", {"type": "kv"}, 'cannot mount "sys/x/"'),
        ("auth/x", {"type": "kv"}, 'cannot mount "auth/x/"'),
        ("cubbyhole", {"type": "kv"}, 'cannot mount "cubbyhole/"'),
        ("secret", {"type": "kv"}, "path is already in use at secret/"),
        ("secret/sub", {"type": "kv"}, "path is already in use at secret/"),
        (
            "x",
            {"type": "kv", "options": {"version": "7"}},
            'nil backend of type "kv" returned from factory',
        ),
        (
            "x",
            {"type": "kv", "config": {"default_lease_ttl": "48h", "max_lease_ttl": "1h"}},
            "given default lease TTL greater than given max lease TTL",
        ),
        (
            "x",
            {"type": "kv", "config": {"default_lease_ttl": "10000h"}},
            "given default lease TTL greater than system max lease TTL of 2764800",
        ),
    ],
)
async def test_enable_refusals_are_vaults(
    vault: Vault, path: str, body: dict[str, Any], message: str
) -> None:
    await vault.create_tenant("acme")
    assert await errors(vault, "POST", f"sys/mounts/{path}", body, namespace="acme") == [message]


async def test_a_parent_path_conflicts_with_a_nested_mount(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "team/tr", {"type": "transit"})
    assert await errors(vault, "POST", "sys/mounts/team", {"type": "kv"}, namespace="acme") == [
        "path is already in use at team/tr/"
    ]
    # Siblings are fine: longest prefix picks between them.
    assert await enable(vault, "acme", "team/tr2", {"type": "kv-v2"}) == 204
    await vault.root("POST", "team/tr2/data/a", namespace="acme", json={"data": {"v": 2}})
    assert (await vault.root("POST", "team/tr/keys/a", namespace="acme")).status_code == 200


async def test_protected_prefixes_cannot_be_disabled_or_tuned(vault: Vault) -> None:
    assert await errors(vault, "DELETE", "sys/mounts/sys") == ['cannot unmount "sys/"']
    assert await errors(vault, "DELETE", "sys/mounts/cubbyhole") == ['cannot unmount "cubbyhole/"']
    assert await errors(vault, "POST", "sys/mounts/sys/tune", {"description": "x"}) == [
        "cannot tune parameter description of sys/"
    ]
    sys_mount = await vault.root("GET", "sys/mounts/sys")
    assert sys_mount.json()["data"]["type"] == "system"


async def test_mount_paths_and_tenant_ids_never_collide(vault: Vault) -> None:
    await vault.create_tenant("acme")
    # The root namespace cannot mount at a tenant's id, nor can a tenant mount at its own.
    assert await errors(vault, "POST", "sys/mounts/acme", {"type": "kv"}) == [
        "existing mount at acme/"
    ]
    assert await errors(vault, "POST", "sys/mounts/acme/kv", {"type": "kv"}) == [
        "existing mount at acme/"
    ]
    assert await errors(vault, "POST", "sys/mounts/acme", {"type": "kv"}, namespace="acme") == [
        "existing mount at acme/"
    ]
    # A tenant cannot take the name of a root mount (--dev mounts secret/ in the root).
    assert await errors(vault, "POST", "sys/namespaces/secret") == [
        "new namespace conflicts with existing mount: secret/"
    ]
    assert await enable(vault, None, "tools", {"type": "kv"}) == 204
    assert await errors(vault, "POST", "sys/namespaces/tools") == [
        "new namespace conflicts with existing mount: tools/"
    ]


async def test_tune_read_and_write(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "tr", {"type": "transit", "description": "tr"})
    tune = await vault.root("GET", "sys/mounts/tr/tune", namespace="acme")
    assert tune.json()["data"] == {
        "default_lease_ttl": 2764800,
        "description": "tr",
        "force_no_cache": False,
        "max_lease_ttl": 2764800,
    }
    changed = await vault.root(
        "POST",
        "sys/mounts/tr/tune",
        namespace="acme",
        json={"default_lease_ttl": "1h", "max_lease_ttl": "24h", "description": "new"},
    )
    assert changed.status_code == 204
    tune = await vault.root("GET", "sys/mounts/tr/tune", namespace="acme")
    assert tune.json()["data"]["default_lease_ttl"] == 3600
    assert tune.json()["data"]["max_lease_ttl"] == 86400
    assert tune.json()["data"]["description"] == "new"
    info = (await vault.root("GET", "sys/mounts/tr", namespace="acme")).json()["data"]
    assert info["config"]["default_lease_ttl"] == 3600
    assert await errors(
        vault, "POST", "sys/mounts/tr/tune", {"default_lease_ttl": "48h"}, namespace="acme"
    ) == ["backend max lease TTL of 86400 would be less than backend default lease TTL of 172800"]
    assert await errors(
        vault, "POST", "sys/mounts/tr/tune", {"max_lease_ttl": "1m"}, namespace="acme"
    ) == ["backend max lease TTL of 60 would be less than backend default lease TTL of 3600"]
    assert await errors(vault, "GET", "sys/mounts/nope/tune", namespace="acme") == [
        'cannot fetch sysview for path "nope/"'
    ]
    assert await errors(
        vault, "POST", "sys/mounts/nope/tune", {"description": "x"}, namespace="acme"
    ) == ['tune of path "nope/" failed: no mount entry found']


async def test_kv_version_tuning(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "kv1", {"type": "kv"})
    await enable(vault, "acme", "kv2", {"type": "kv-v2"})
    bad = {"options": {"version": "3"}}
    assert await errors(vault, "POST", "sys/mounts/kv1/tune", bad, namespace="acme") == [
        "invalid version provided: 3"
    ]
    down = {"options": {"version": "1"}}
    assert await errors(vault, "POST", "sys/mounts/kv2/tune", down, namespace="acme") == [
        "cannot downgrade mount from version 2"
    ]
    same = await vault.root(
        "POST", "sys/mounts/kv2/tune", namespace="acme", json={"options": {"version": "2"}}
    )
    assert same.status_code == 204


async def test_enable_versioning_makes_each_v1_key_version_1(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "kv1", {"type": "kv", "options": {"version": "1"}})
    await vault.root("POST", "kv1/a/b", namespace="acme", json={"foo": "bar", "ttl": "1h"})
    await vault.root("POST", "kv1/c", namespace="acme", json={"x": 1})
    upgraded = await vault.root(
        "POST", "sys/mounts/kv1/tune", namespace="acme", json={"options": {"version": "2"}}
    )
    assert upgraded.status_code == 200
    assert upgraded.json()["warnings"][0].startswith("Upgrading mount from version 1")
    got = await vault.root("GET", "kv1/data/a/b", namespace="acme")
    assert got.status_code == 200
    assert got.json()["data"]["data"] == {"foo": "bar", "ttl": "1h"}
    assert got.json()["data"]["metadata"]["version"] == 1
    assert (await vault.root("GET", "kv1/data/c", namespace="acme")).json()["data"]["data"] == {
        "x": 1
    }
    listed = await vault.root("LIST", "kv1/metadata", namespace="acme")
    assert listed.json()["data"]["keys"] == ["a/", "c"]
    info = (await vault.root("GET", "sys/mounts/kv1", namespace="acme")).json()["data"]
    assert info["options"] == {"version": "2"}


async def test_kv_v1_behaves_as_vaults(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "kv1", {"type": "kv"})
    assert (
        await vault.root("POST", "kv1/a/b", namespace="acme", json={"foo": "bar", "ttl": "1h"})
    ).status_code == 204
    await vault.root("POST", "kv1/c", namespace="acme", json={"x": 1})
    read = await vault.root("GET", "kv1/a/b", namespace="acme")
    body = read.json()
    assert (body["data"], body["lease_duration"], body["lease_id"], body["renewable"]) == (
        {"foo": "bar", "ttl": "1h"},
        3600,
        "",
        False,
    )
    assert (await vault.root("GET", "kv1/c", namespace="acme")).json()["lease_duration"] == 2764800
    for path in ("kv1/", "kv1"):
        listed = await vault.root("LIST", path, namespace="acme")
        assert listed.json()["data"]["keys"] == ["a/", "c"]
    assert (await vault.root("LIST", "kv1/zz", namespace="acme")).status_code == 404
    assert (await vault.root("GET", "kv1/missing", namespace="acme")).status_code == 404
    assert await errors(vault, "POST", "kv1/empty", {}, namespace="acme") == ["missing data fields"]
    assert await errors(vault, "POST", "kv1/dir/", {"a": 1}, namespace="acme") == [
        "cannot write to a path ending in '/'"
    ]
    assert (await vault.root("DELETE", "kv1/c", namespace="acme")).status_code == 204
    assert (await vault.root("DELETE", "kv1/c", namespace="acme")).status_code == 204
    assert (await vault.root("GET", "kv1/c", namespace="acme")).status_code == 404


async def test_policies_on_custom_mount_paths(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.write_policy("acme", "mounts", MOUNT_ADMIN)
    await vault.write_policy("acme", "none", 'path "other/*" { capabilities = ["read"] }')
    admin = str((await vault.create_token("acme", ["mounts"]))["client_token"])
    none = str((await vault.create_token("acme", ["none"]))["client_token"])
    ok = await vault.request(
        "POST", "sys/mounts/apps", token=admin, namespace="acme", json={"type": "kv-v2"}
    )
    assert ok.status_code == 204
    denied = await vault.request(
        "POST", "sys/mounts/apps2", token=none, namespace="acme", json={"type": "kv-v2"}
    )
    assert denied.status_code == 403
    # A tenant token needs no header: its own mounts are found in its own table.
    put = await vault.request("POST", "apps/data/x", token=admin, json={"data": {"v": 1}})
    assert put.status_code == 200
    assert (await vault.request("GET", "apps/data/x", token=none)).status_code == 403
    listed = await vault.request("GET", "sys/mounts", token=admin)
    assert "apps/" in listed.json()["data"]


async def test_ui_mounts_reads_the_real_table(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await enable(vault, "acme", "kv1", {"type": "kv"})
    found = await vault.root("GET", "sys/internal/ui/mounts/kv1/foo", namespace="acme")
    assert found.status_code == 200
    assert found.json()["data"]["path"] == "kv1/"
    assert found.json()["data"]["options"] == {}
    listing = await vault.root("GET", "sys/internal/ui/mounts", namespace="acme")
    assert set(listing.json()["data"]["secret"]) == {"secret/", "transit/", "kv1/"}
    assert set(listing.json()["data"]["auth"]) == {"token/"}


async def test_ui_mounts_without_a_token_lists_only_unauth_mounts_in_brief(vault: Vault) -> None:
    """As OpenBao: the listing needs no token, and then shows only mounts tuned
    `listing_visibility: "unauth"`, as type, description and options; `/<path>` does not."""
    await vault.create_tenant("acme")
    assert await enable(vault, "acme", "pub", {"type": "kv", "description": "open"}) == 204
    tuned = await vault.root(
        "POST", "sys/mounts/pub/tune", namespace="acme", json={"listing_visibility": "unauth"}
    )
    assert tuned.status_code == 204
    brief = {"pub/": {"type": "kv", "description": "open", "options": {}}}
    for listing in (
        await vault.request("GET", "sys/internal/ui/mounts", namespace="acme"),
        await vault.request("GET", "acme/sys/internal/ui/mounts"),
    ):
        assert listing.status_code == 200
        assert listing.json()["data"] == {"auth": {}, "secret": brief}
    # The root namespace's own table: its secret/ is not listed unauthenticated.
    root = await vault.request("GET", "sys/internal/ui/mounts")
    assert root.json()["data"] == {"auth": {}, "secret": {}}
    # Stricter than OpenBao (which answers 404 here): without a token, a tenant that does not
    # exist answers exactly like one that lists nothing, so tenant names cannot be probed.
    await vault.create_tenant("quiet")
    quiet = await vault.request("GET", "sys/internal/ui/mounts", namespace="quiet")
    for name in ("nope", "nope2"):
        missing = await vault.request("GET", "sys/internal/ui/mounts", namespace=name)
        assert (missing.status_code, missing.json()["data"]) == (200, quiet.json()["data"])
        assert missing.json()["data"] == {"auth": {}, "secret": {}}
    one = await vault.request("GET", "sys/internal/ui/mounts/pub/x", namespace="acme")
    assert (one.status_code, one.json()["errors"]) == (403, ["permission denied"])
    bad = await vault.request("GET", "sys/internal/ui/mounts", token=canary("no-"))
    assert bad.status_code == 403


async def test_ui_mounts_with_a_token_lists_the_mounts_it_can_reach(vault: Vault) -> None:
    """Vault's hasMountAccess, decided by the Core: anything granted under a mount shows it
    in full, unauth-listed mounts show too, and `/<path>` of an unreachable one is refused
    with the preflight text."""
    await vault.create_tenant("acme")
    for path in ("reach", "pub", "dark"):
        assert await enable(vault, "acme", path, {"type": "kv"}) == 204
    tuned = await vault.root(
        "POST", "sys/mounts/pub/tune", namespace="acme", json={"listing_visibility": "unauth"}
    )
    assert tuned.status_code == 204
    await vault.write_policy("acme", "r", 'path "reach/deep/x" { capabilities = ["read"] }')
    token = (await vault.create_token("acme", ["r"], no_default_policy=True))["client_token"]
    listing = await vault.request("GET", "sys/internal/ui/mounts", token=token)
    assert listing.status_code == 200
    data = listing.json()["data"]
    assert (set(data["secret"]), data["auth"]) == ({"reach/", "pub/"}, {})
    assert data["secret"]["pub/"]["config"]["listing_visibility"] == "unauth"
    assert "accessor" in data["secret"]["reach/"]
    dark = await vault.request("GET", "sys/internal/ui/mounts/dark/x", token=token)
    assert dark.status_code == 403
    assert dark.json()["errors"] == [
        "preflight capability check returned 403, please ensure client's policies grant "
        'access to path "dark/x/"'
    ]
    # The root token reaches everything, the token auth method included.
    full = (await vault.root("GET", "sys/internal/ui/mounts", namespace="acme")).json()["data"]
    assert set(full["secret"]) == {"secret/", "transit/", "reach/", "pub/", "dark/"}
    assert set(full["auth"]) == {"token/"}


async def test_listing_visibility_is_a_tune_field(vault: Vault) -> None:
    await vault.create_tenant("acme")
    assert await enable(vault, "acme", "kv", {"type": "kv"}) == 204
    bad = await errors(
        vault, "POST", "sys/mounts/kv/tune", {"listing_visibility": "bogus"}, namespace="acme"
    )
    assert bad == ["invalid listing_visibility bogus"]
    for value in ("hidden", ""):
        tuned = await vault.root(
            "POST", "sys/mounts/kv/tune", namespace="acme", json={"listing_visibility": value}
        )
        assert tuned.status_code == 204
        read = (await vault.root("GET", "sys/mounts/kv/tune", namespace="acme")).json()
        assert read["data"].get("listing_visibility") == (value or None)


async def test_the_dev_tutorial_path_in_the_root_namespace(vault: Vault) -> None:
    """`bao kv put secret/hello foo=bar` with the root token, as in Vault's first tutorial."""
    put = await vault.root("POST", "secret/data/hello", json={"data": {"foo": "bar"}})
    assert put.status_code == 200
    got = await vault.root("GET", "secret/data/hello")
    assert got.json()["data"]["data"] == {"foo": "bar"}
    mounts = (await vault.root("GET", "sys/mounts")).json()["data"]
    assert mounts["secret/"]["options"] == {"version": "2"}


async def test_a_tokenless_listing_is_recorded_under_no_tenant() -> None:
    """A stranger without a token cannot write into a tenant's audit trail by naming it: the
    anonymous listing is audited (root sees it), but no tenant's query shows it."""
    settings = ServerSettings(dev=True, dev_root_token=canary("root-"), access_log=False)
    async with create_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, settings.dev_root_token or "")
            admin = await vault.tenant_admin("acme")
            await vault.write_policy(
                "acme", "auditor", 'path "sys/audit/events" { capabilities = ["read"] }'
            )
            auditor = str((await vault.create_token("acme", ["auditor"]))["client_token"])
            assert admin
            listing = await vault.request("GET", "sys/internal/ui/mounts", namespace="acme")
            assert listing.status_code == 200
            request_id = listing.headers["x-request-id"]
            own = await vault.request(
                "GET", "sys/audit/events", token=auditor, namespace="acme", params={"limit": "1000"}
            )
            assert own.status_code == 200, own.text
            assert request_id not in own.text
            everything = await vault.root("GET", "sys/audit/events", params={"limit": "1000"})
            assert request_id in everything.text
