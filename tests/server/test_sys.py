"""The sys/ endpoints over HTTP: tenants (namespaces), policies, mounts, preflight, health."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tenantvault.server import TenantVaultApp
from tests.server.conftest import READER_POLICY, Vault

pytestmark = pytest.mark.usefixtures("app")


async def test_namespace_create_read_list_delete(vault: Vault) -> None:
    created = await vault.root(
        "POST", "sys/namespaces/acme", json={"custom_metadata": {"team": "a"}}
    )
    assert created.status_code == 200
    assert created.json()["data"]["path"] == "acme/"
    assert (await vault.root("PUT", "sys/namespaces/beta")).status_code == 200
    read = await vault.root("GET", "sys/namespaces/acme")
    assert read.json()["data"]["custom_metadata"] == {"team": "a"}
    for listed in (
        await vault.root("LIST", "sys/namespaces"),
        await vault.root("GET", "sys/namespaces", params={"list": "true"}),
    ):
        assert listed.status_code == 200
        assert listed.json()["data"]["keys"] == ["acme/", "beta/"]
    deleted = await vault.root("DELETE", "sys/namespaces/acme")
    # OpenBao answers 200 with a status body (the bao CLI expects one); 204 is Vault's.
    assert deleted.status_code in (200, 204)
    assert (await vault.root("GET", "sys/namespaces/acme")).status_code == 404


async def test_namespace_errors(vault: Vault) -> None:
    first = await vault.root("POST", "sys/namespaces/acme")
    again = await vault.root("POST", "sys/namespaces/acme")
    # Idempotent, as in OpenBao: the existing tenant comes back unchanged.
    assert again.status_code == 200
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    for name in ("Acme", "root", "a_b", "x" * 64):
        assert (await vault.root("POST", f"sys/namespaces/{name}")).status_code == 400


async def test_empty_namespace_list_is_404(vault: Vault) -> None:
    response = await vault.root("LIST", "sys/namespaces")
    assert response.status_code == 404


async def test_tenant_token_cannot_manage_namespaces(vault: Vault) -> None:
    token = await vault.tenant_admin("acme")
    response = await vault.request("POST", "sys/namespaces/evil", token=token)
    # 400 "nested namespaces are not supported" or 403: never a tenant created.
    assert response.status_code in (400, 403)
    assert (await vault.root("GET", "sys/namespaces/evil")).status_code == 404
    listed = await vault.request("LIST", "sys/namespaces", token=token)
    assert listed.status_code in (403, 404)
    assert "acme" not in listed.text


async def test_policy_write_read_list_delete(vault: Vault) -> None:
    await vault.create_tenant("acme")
    written = await vault.root(
        "POST", "sys/policies/acl/reader", namespace="acme", json={"policy": READER_POLICY}
    )
    assert written.status_code == 204
    read = await vault.root("GET", "sys/policies/acl/reader", namespace="acme")
    assert read.json()["data"] == {"name": "reader", "policy": READER_POLICY}
    for listed in (
        await vault.root("LIST", "sys/policies/acl", namespace="acme"),
        await vault.root("GET", "sys/policies/acl", namespace="acme", params={"list": "true"}),
    ):
        assert listed.status_code == 200
        assert "reader" in listed.json()["data"]["keys"]
    legacy = await vault.root("GET", "sys/policy/reader", namespace="acme")
    assert legacy.json()["data"]["rules"] == READER_POLICY
    deleted = await vault.root("DELETE", "sys/policies/acl/reader", namespace="acme")
    assert deleted.status_code == 204
    assert (await vault.root("GET", "sys/policies/acl/reader", namespace="acme")).status_code == 404


async def test_policy_errors(vault: Vault) -> None:
    await vault.create_tenant("acme")
    bad_hcl = await vault.root(
        "PUT", "sys/policies/acl/p", namespace="acme", json={"policy": 'path "x" { capabilities = '}
    )
    assert bad_hcl.status_code == 400
    missing = await vault.root("PUT", "sys/policies/acl/p", namespace="acme", json={})
    assert missing.status_code == 400
    wrong_type = await vault.root(
        "PUT", "sys/policies/acl/p", namespace="acme", json={"policy": ["a"]}
    )
    assert wrong_type.status_code == 400


async def test_policies_are_per_tenant(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.create_tenant("beta")
    await vault.write_policy("acme", "reader", READER_POLICY)
    other = await vault.root("GET", "sys/policies/acl/reader", namespace="beta")
    assert other.status_code == 404


async def test_mounts_of_a_tenant_and_of_the_root_namespace(vault: Vault) -> None:
    token = await vault.tenant_admin("acme")
    mounts = await vault.request("GET", "sys/mounts", token=token, namespace="acme")
    assert mounts.status_code == 200
    assert mounts.json()["data"]["secret/"]["options"] == {"version": "2"}
    mount_uuid = mounts.json()["data"]["secret/"]["uuid"]
    root_mounts = await vault.root("GET", "sys/mounts")
    assert root_mounts.status_code == 200
    # --dev mounts the root namespace's own secret/, as `bao server -dev` does: another mount.
    assert set(root_mounts.json()["data"]) == {"sys/", "secret/"}
    assert root_mounts.json()["data"]["secret/"]["uuid"] != mount_uuid


async def test_ui_mounts_preflight(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.write_policy("acme", "reader", READER_POLICY)
    reader = (await vault.create_token("acme", ["reader"]))["client_token"]
    nothing = (await vault.create_token("acme", [], no_default_policy=True))["client_token"]
    ok = await vault.request("GET", "sys/internal/ui/mounts/secret/app/db", token=reader)
    assert ok.status_code == 200
    data = ok.json()["data"]
    assert (data["path"], data["type"], data["options"]) == ("secret/", "kv", {"version": "2"})
    denied = await vault.request("GET", "sys/internal/ui/mounts/secret/app", token=nothing)
    assert denied.status_code == 403
    missing = await vault.root("GET", "sys/internal/ui/mounts/nomount/x", namespace="acme")
    # OpenBao 2.7: a missing mount is a 403 too (no mount enumeration), with this text.
    assert missing.status_code == 403
    assert missing.json()["errors"] == [
        "preflight capability check returned 403, please ensure client's policies grant "
        'access to path "nomount/x/"'
    ]


async def test_capabilities_self(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.write_policy("acme", "reader", READER_POLICY)
    await vault.write_policy(
        "acme", "caps", 'path "sys/capabilities-self" { capabilities = ["update"] }'
    )
    token = (await vault.create_token("acme", ["reader", "caps"]))["client_token"]
    response = await vault.request(
        "POST",
        "sys/capabilities-self",
        token=token,
        json={"paths": ["secret/data/app/db", "secret/data/x"]},
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["secret/data/app/db"] == ["read"]
    assert data["secret/data/x"] == ["deny"]
    missing = await vault.request("POST", "sys/capabilities-self", token=token, json={})
    assert missing.status_code == 400


async def test_health_is_public_and_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sys/health")
    assert response.status_code == 200
    body = response.json()
    data = body.get("data", body)  # Vault sends health bare, without the envelope
    assert (data["initialized"], data["sealed"], data["standby"]) == (True, False, False)
    head = await client.head("/v1/sys/health")
    assert head.status_code == 200
    assert head.content == b""


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"standbyok": "true"}, 200),
        ({"perfstandbyok": "true", "standbyok": "false"}, 200),
        ({"activecode": "299"}, 299),
        ({"sealedcode": "500"}, 200),
        ({"activecode": "abc"}, 400),
        ({"activecode": "99"}, 400),
        ({"activecode": "600"}, 400),
        ({"activecode": "503"}, 400),
        ({"activecode": "301"}, 400),
        ({"activecode": "205"}, 400),
        ({"activecode": "429"}, 429),
        ({"activecode": "204"}, 204),
        ({"sealedcode": "599"}, 200),
        ({"standbyok": "maybe"}, 400),
    ],
)
async def test_health_query_parameters(
    client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    response = await client.get("/v1/sys/health", params=params)
    assert response.status_code == status


async def test_health_is_503_while_shutting_down(
    app: TenantVaultApp, client: httpx.AsyncClient
) -> None:
    await app.shutdown()
    response = await client.get("/v1/sys/health")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"errors": ["tenantvault is shutting down"]}


async def test_seal_status_is_public(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sys/seal-status")
    assert response.status_code == 200
    body = response.json()
    data = body.get("data", body)  # Vault sends seal-status bare, without the envelope
    assert data["sealed"] is False
    assert data["initialized"] is True


async def test_leader_is_public_and_bare(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sys/leader")
    assert response.status_code == 200
    assert response.json()["ha_enabled"] is False


async def test_openapi_document_is_public_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sys/internal/specs/openapi")
    assert response.status_code == 200
    spec = orjson.loads(response.content)
    assert spec["openapi"].startswith("3.")
    assert "/secret/data/{path}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["vaultToken"]["name"] == "X-Vault-Token"
