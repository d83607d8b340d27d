"""Upstream engines per tenant on a real OpenBao: a mount of a type tenantvault does not
implement (totp) is enabled, used, tuned and disabled in the tenant's upstream namespace,
through tenantvault's authorization and audit; the prefix strategy refuses it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.upstream._tenancy import NamespaceTenancy
from tenantvault.upstream.engines import Gateway
from tests._openbao import OpenBaoDev
from tests.conftest import canary
from tests.integration._support import BaoCLI, bao_executable
from tests.server.conftest import BASE_URL, Vault
from tests.upstream._gateway_app import gateway_app, tenancy_for

_TOTP = {"type": "totp", "description": "one-time codes"}
_KEY = {"generate": True, "issuer": "tenantvault", "account_name": "ci@acme"}


async def _app(strategy: str, openbao_dev: OpenBaoDev) -> AsyncIterator[tuple[Vault, Gateway]]:
    root_token = canary("root-")
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with gateway_app(settings, openbao_dev, tenancy_for(strategy)) as (app, gateway):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            # The queryable audit store (`serve` enables it from its settings).
            audit = await vault.root("PUT", "sys/audit/store", json={"type": "store"})
            assert audit.status_code == 204, audit.text
            yield vault, gateway


@pytest.fixture
async def namespaced(openbao_dev: OpenBaoDev) -> AsyncIterator[tuple[Vault, Gateway]]:
    async for pair in _app("namespace", openbao_dev):
        yield pair


@pytest.fixture
async def prefixed(openbao_dev: OpenBaoDev) -> AsyncIterator[tuple[Vault, Gateway]]:
    async for pair in _app("prefix", openbao_dev):
        yield pair


def _upstream_mounts(server: OpenBaoDev, gateway: Gateway, tenant: str, home: Path) -> Any:
    """`bao secrets list` in the tenant's upstream namespace, as an operator runs it."""
    tenancy = gateway.tenancy
    assert isinstance(tenancy, NamespaceTenancy)
    bao = BaoCLI(bao_executable(), server.addr, home)
    result = bao.run(
        "secrets",
        "list",
        "-format=json",
        token=server.root_token,
        namespace=tenancy.namespace(tenant),
    )
    assert result.code == 0, result.text
    return json.loads(result.out)


async def _enable_totp(vault: Vault, tenant: str, path: str = "otp") -> httpx.Response:
    return await vault.root("POST", f"sys/mounts/{path}", namespace=tenant, json=_TOTP)


async def _events(vault: Vault, tenant: str, prefix: str) -> list[dict[str, Any]]:
    response = await vault.root(
        "GET",
        "sys/audit/events",
        params={"tenant": tenant, "path_prefix": prefix, "limit": "1000"},
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]["events"]
    return events


async def test_a_totp_mount_is_the_upstreams_own_in_the_tenants_namespace(
    namespaced: tuple[Vault, Gateway], openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    vault, gateway = namespaced
    await vault.create_tenant("acme")
    enabled = await _enable_totp(vault, "acme")
    assert enabled.status_code == 204, enabled.text
    upstream = _upstream_mounts(openbao_dev, gateway, "acme", tmp_path)
    assert upstream["otp/"]["type"] == "totp"
    assert upstream["otp/"]["description"] == "one-time codes"
    listed = await vault.root("GET", "sys/mounts", namespace="acme")
    assert listed.json()["data"]["otp/"]["type"] == "totp"

    key = await vault.root(
        "POST",
        "otp/keys/ci",
        namespace="acme",
        json={"generate": True, "issuer": "tenantvault", "account_name": "ci@acme"},
    )
    assert key.status_code == 200, key.text
    assert key.json()["data"]["url"].startswith("otpauth://totp/tenantvault:ci@acme")
    code = await vault.root("GET", "otp/code/ci", namespace="acme")
    assert code.status_code == 200, code.text
    checked = await vault.root(
        "POST", "otp/code/ci", namespace="acme", json={"code": code.json()["data"]["code"]}
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["data"] == {"valid": True}
    keys = await vault.root("LIST", "otp/keys", namespace="acme")
    assert keys.json()["data"]["keys"] == ["ci"]

    tuned = await vault.root(
        "POST", "sys/mounts/otp/tune", namespace="acme", json={"max_lease_ttl": "2h"}
    )
    assert tuned.status_code == 204, tuned.text
    upstream = _upstream_mounts(openbao_dev, gateway, "acme", tmp_path)
    assert upstream["otp/"]["config"]["max_lease_ttl"] == 7200

    disabled = await vault.root("DELETE", "sys/mounts/otp", namespace="acme")
    assert disabled.status_code == 204, disabled.text
    assert "otp/" not in _upstream_mounts(openbao_dev, gateway, "acme", tmp_path)
    gone = await vault.root("GET", "otp/code/ci", namespace="acme")
    assert gone.status_code == 404, gone.text


async def test_policy_limited_access_is_refused_by_tenantvault_and_audited(
    namespaced: tuple[Vault, Gateway],
) -> None:
    vault, _ = namespaced
    await vault.create_tenant("acme")
    assert (await _enable_totp(vault, "acme")).status_code == 204
    made = await vault.root("POST", "otp/keys/ci", namespace="acme", json=_KEY)
    assert made.status_code == 200, made.text
    await vault.write_policy(
        "acme",
        "codes",
        'path "otp/code/*" { capabilities = ["read"] }\n'
        'path "otp/keys/*" { capabilities = ["update"] }\n',
    )
    token = str((await vault.create_token("acme", ["codes"]))["client_token"])

    code = await vault.request("GET", "otp/code/ci", token=token, namespace="acme")
    assert code.status_code == 200, code.text
    # A write needs create and update both (the upstream's existence check is not ours).
    refused = await vault.request(
        "POST", "otp/keys/other", token=token, namespace="acme", json={"generate": True}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json() == {"errors": ["permission denied"]}
    deleted = await vault.request("DELETE", "otp/keys/ci", token=token, namespace="acme")
    assert deleted.status_code == 403, deleted.text
    # Refused before anything went upstream: the key is not there.
    missing = await vault.root("GET", "otp/keys/other", namespace="acme")
    assert missing.status_code in (400, 404), missing.text

    events = await _events(vault, "acme", "otp/keys/")
    refused_ids = {refused.headers["x-request-id"], deleted.headers["x-request-id"]}
    answered = [
        event
        for event in events
        if event["type"] == "response" and event["request"].get("id") in refused_ids
    ]
    assert len(answered) == 2, events
    assert all(event.get("error") == "permission denied" for event in answered), answered


async def test_another_tenant_cannot_reach_the_mount(
    namespaced: tuple[Vault, Gateway], openbao_dev: OpenBaoDev
) -> None:
    vault, gateway = namespaced
    await vault.create_tenant("acme")
    await vault.create_tenant("beta")
    assert (await _enable_totp(vault, "acme")).status_code == 204
    made = await vault.root("POST", "otp/keys/ci", namespace="acme", json=_KEY)
    assert made.status_code == 200, made.text

    through = await vault.root("GET", "otp/code/ci", namespace="beta")
    assert through.status_code == 404, through.text
    # Defense in depth: beta's own upstream token is refused in acme's namespace upstream.
    tenancy = gateway.tenancy
    assert isinstance(tenancy, NamespaceTenancy)
    beta = await gateway.tokens.get("beta")
    async with httpx.AsyncClient(base_url=openbao_dev.addr) as direct:
        crossed = await direct.get(
            "/v1/otp/code/ci",
            headers={"X-Vault-Token": beta, "X-Vault-Namespace": tenancy.namespace("acme")},
        )
        assert crossed.status_code == 403, crossed.text
        # Nor can acme's own token manage its namespace: mounts are tenantvault's to make.
        acme = await gateway.tokens.get("acme")
        mounted = await direct.post(
            "/v1/sys/mounts/mine",
            json={"type": "totp"},
            headers={"X-Vault-Token": acme, "X-Vault-Namespace": tenancy.namespace("acme")},
        )
        assert mounted.status_code == 403, mounted.text


async def test_upstream_mounts_stay_where_the_upstream_has_them(
    namespaced: tuple[Vault, Gateway],
) -> None:
    vault, _ = namespaced
    await vault.create_tenant("acme")
    assert (await _enable_totp(vault, "acme")).status_code == 204
    again = await _enable_totp(vault, "acme")
    assert again.status_code == 400, again.text
    assert again.json()["errors"] == ["path is already in use at otp/"]
    moved = await vault.root(
        "POST", "sys/remount", namespace="acme", json={"from": "otp", "to": "codes"}
    )
    assert moved.status_code == 400, moved.text
    unknown = await vault.root(
        "POST", "sys/mounts/x", namespace="acme", json={"type": "no-such-engine"}
    )
    assert unknown.status_code == 400, unknown.text
    assert "no-such-engine" in unknown.json()["errors"][0]
    in_root = await vault.root("POST", "sys/mounts/otp", json=_TOTP)
    assert in_root.status_code == 400, in_root.text
    assert "root namespace" in in_root.json()["errors"][0]


async def test_upstream_auth_methods_are_refused_with_the_reason(
    namespaced: tuple[Vault, Gateway],
) -> None:
    vault, _ = namespaced
    await vault.create_tenant("acme")
    refused = await vault.root(
        "POST", "sys/auth/userpass", namespace="acme", json={"type": "userpass"}
    )
    assert refused.status_code == 400, refused.text
    assert "tenantvault's own auth methods" in refused.json()["errors"][0]
    own = await vault.root("POST", "sys/auth/approle", namespace="acme", json={"type": "approle"})
    assert own.status_code == 204, own.text


async def test_the_prefix_strategy_refuses_upstream_engine_types(
    prefixed: tuple[Vault, Gateway],
) -> None:
    vault, _ = prefixed
    await vault.create_tenant("acme")
    refused = await _enable_totp(vault, "acme")
    assert refused.status_code == 400, refused.text
    assert "prefix tenancy strategy" in refused.json()["errors"][0]
    kv = await vault.root("POST", "sys/mounts/team", namespace="acme", json={"type": "kv"})
    assert kv.status_code == 204, kv.text
    listed = await vault.root("GET", "sys/mounts", namespace="acme")
    assert "otp/" not in listed.json()["data"]


async def _upstream_leases(
    server: OpenBaoDev, gateway: Gateway, tenant: str, prefix: str
) -> list[str]:
    """The upstream's own leases under `prefix` in the tenant's namespace (operator's view)."""
    tenancy = gateway.tenancy
    assert isinstance(tenancy, NamespaceTenancy)
    async with httpx.AsyncClient(base_url=server.addr) as direct:
        listed = await direct.request(
            "LIST",
            f"/v1/sys/leases/lookup/{prefix}",
            headers={
                "X-Vault-Token": server.root_token,
                "X-Vault-Namespace": tenancy.namespace(tenant),
            },
        )
    if listed.status_code == 404:
        return []
    assert listed.status_code == 200, listed.text
    keys: list[str] = listed.json()["data"]["keys"]
    return keys


async def _ssh_otp(vault: Vault, tenant: str) -> None:
    enabled = await vault.root("POST", "sys/mounts/ssh", namespace=tenant, json={"type": "ssh"})
    assert enabled.status_code == 204, enabled.text
    role = await vault.root(
        "POST",
        "ssh/roles/otp",
        namespace=tenant,
        json={"key_type": "otp", "default_user": "deploy", "cidr_list": "127.0.0.0/8"},
    )
    assert role.status_code == 204, role.text


async def test_an_upstream_dynamic_secret_is_a_tenant_lease_revoked_upstream(
    namespaced: tuple[Vault, Gateway], openbao_dev: OpenBaoDev
) -> None:
    vault, gateway = namespaced
    await vault.create_tenant("acme")
    await vault.create_tenant("beta")
    await _ssh_otp(vault, "acme")
    creds = await vault.root("POST", "ssh/creds/otp", namespace="acme", json={"ip": "127.0.0.1"})
    assert creds.status_code == 200, creds.text
    body = creds.json()
    otp = body["data"]["key"]
    upstream = await _upstream_leases(openbao_dev, gateway, "acme", "ssh/creds/otp/")
    assert len(upstream) == 1
    # The client holds tenantvault's lease id, never the upstream's.
    lease_id = body["lease_id"]
    assert lease_id.startswith("ssh/creds/otp/")
    assert upstream[0] not in lease_id
    assert body["lease_duration"] > 0
    looked = await vault.root(
        "PUT", "sys/leases/lookup", namespace="acme", json={"lease_id": lease_id}
    )
    assert looked.status_code == 200, looked.text

    # Another tenant cannot revoke it: a lease id names no tenant, beta's space has none.
    other = await vault.root(
        "PUT", "sys/leases/revoke", namespace="beta", json={"lease_id": lease_id}
    )
    assert other.status_code == 204, other.text  # as for any lease it does not know
    assert len(await _upstream_leases(openbao_dev, gateway, "acme", "ssh/creds/otp/")) == 1

    revoked = await vault.root(
        "PUT", "sys/leases/revoke", namespace="acme", json={"lease_id": lease_id}
    )
    assert revoked.status_code == 204, revoked.text
    assert await _upstream_leases(openbao_dev, gateway, "acme", "ssh/creds/otp/") == []
    # The one-time password went with the upstream lease.
    verified = await vault.root("POST", "ssh/verify", namespace="acme", json={"otp": otp})
    assert verified.status_code == 400, verified.text


async def test_revoking_the_token_revokes_its_upstream_leases(
    namespaced: tuple[Vault, Gateway], openbao_dev: OpenBaoDev
) -> None:
    vault, gateway = namespaced
    await vault.create_tenant("acme")
    await _ssh_otp(vault, "acme")
    await vault.write_policy(
        "acme", "ops", 'path "ssh/creds/*" { capabilities = ["create", "update"] }\n'
    )
    token = str((await vault.create_token("acme", ["ops"]))["client_token"])
    creds = await vault.request(
        "POST", "ssh/creds/otp", token=token, namespace="acme", json={"ip": "127.0.0.2"}
    )
    assert creds.status_code == 200, creds.text
    assert len(await _upstream_leases(openbao_dev, gateway, "acme", "ssh/creds/otp/")) == 1
    revoked = await vault.root("POST", "auth/token/revoke", namespace="acme", json={"token": token})
    assert revoked.status_code == 204, revoked.text
    assert await _upstream_leases(openbao_dev, gateway, "acme", "ssh/creds/otp/") == []


async def test_the_documented_service_policy_covers_upstream_engines(
    openbao_dev: OpenBaoDev,
) -> None:
    """tenantvault's own token with only `service_policy()` enables, tunes and disables a
    tenant's upstream engine; the tenant's token does the rest."""
    tenancy = tenancy_for("namespace")
    name = f"tenantvault-{tenancy.root}"
    async with httpx.AsyncClient(
        base_url=openbao_dev.addr, headers={"X-Vault-Token": openbao_dev.root_token}
    ) as operator:
        written = await operator.put(
            f"/v1/sys/policies/acl/{name}", json={"policy": tenancy.service_policy()}
        )
        assert written.status_code == 204, written.text
        minted = await operator.post(
            "/v1/auth/token/create", json={"policies": [name], "no_default_policy": True}
        )
        service_token = minted.json()["auth"]["client_token"]
    root_token = canary("root-")
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with gateway_app(settings, openbao_dev, tenancy, service_token=service_token) as (
        app,
        _,
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            await vault.create_tenant("acme")
            await _ssh_otp(vault, "acme")
            tuned = await vault.root(
                "POST", "sys/mounts/ssh/tune", namespace="acme", json={"max_lease_ttl": "1h"}
            )
            assert tuned.status_code == 204, tuned.text
            creds = await vault.root(
                "POST", "ssh/creds/otp", namespace="acme", json={"ip": "127.0.0.1"}
            )
            assert creds.status_code == 200, creds.text
            lease_id = creds.json()["lease_id"]
            revoked = await vault.root(
                "PUT", "sys/leases/revoke", namespace="acme", json={"lease_id": lease_id}
            )
            assert revoked.status_code == 204, revoked.text
            disabled = await vault.root("DELETE", "sys/mounts/ssh", namespace="acme")
            assert disabled.status_code == 204, disabled.text
