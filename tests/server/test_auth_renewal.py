"""Renewing a login's token asks its auth method again, and logins' display names, as
OpenBao 2.7.2 `bao server -dev` answers (checked by hand: approle and jwt, root namespace and
namespace `acme`): a deleted role refuses renew, renew-self and renew-accessor with a 500 and
its text; the role's (and the mount's) current TTLs cap the renewal; a period set later
renews to the period."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import FakeClock
from tests.server.conftest import Vault
from tests.server.test_approle import clocked_app, login, ok, setup_role
from tests.server.test_approle import vault as clocked_vault
from tests.server.test_jwt_login import _login as jwt_login
from tests.server.test_jwt_login import _setup as jwt_setup
from tests.server.test_jwt_login import _token as jwt_token

__all__ = ["clocked_app", "clocked_vault"]  # fixtures, imported to be used here

APPROLE_GONE = (
    '1 error occurred:\n\t* failed to renew entry: role "app" does not exist during renewal\n\n'
)
JWT_GONE = (
    "1 error occurred:\n\t* failed to renew entry: role tools does not exist during renewal\n\n"
)


async def _approle_token(vault: Vault, tenant: str | None = None, **fields: Any) -> dict[str, Any]:
    role_id, secret_id = await setup_role(vault, tenant, **fields)
    auth: dict[str, Any] = (await ok(await login(vault, role_id, secret_id, tenant)))["auth"]
    return auth


async def _renewals(vault: Vault, auth: dict[str, Any], tenant: str | None) -> list[httpx.Response]:
    """The three ways to renew the token of `auth`: by value, itself, by accessor."""
    token = auth["client_token"]
    return [
        await vault.root("POST", "auth/token/renew", namespace=tenant, json={"token": token}),
        await vault.request("POST", "auth/token/renew-self", token=token, namespace=tenant),
        await vault.root(
            "POST",
            "auth/token/renew-accessor",
            namespace=tenant,
            json={"accessor": auth["accessor"]},
        ),
    ]


@pytest.mark.parametrize("tenant", [None, "acme"])
async def test_a_deleted_approle_role_refuses_every_renewal(
    clocked_vault: Vault, tenant: str | None
) -> None:
    vault = clocked_vault
    if tenant is not None:
        await vault.create_tenant(tenant)
    auth = await _approle_token(vault, tenant)
    for response in await _renewals(vault, auth, tenant):
        assert response.status_code == 200, (response.request.url, response.text)
    await ok(await vault.root("DELETE", "auth/approle/role/app", namespace=tenant), 204)
    for response in await _renewals(vault, auth, tenant):
        assert response.status_code == 500, response.text
        assert response.json() == {"errors": [APPROLE_GONE]}
    # The token itself still works until it expires, as in OpenBao.
    looked = await vault.request(
        "GET", "auth/token/lookup-self", token=auth["client_token"], namespace=tenant
    )
    assert looked.status_code == 200, looked.text


async def test_a_role_made_again_under_the_name_renews_again(clocked_vault: Vault) -> None:
    auth = await _approle_token(clocked_vault)
    await ok(await clocked_vault.root("DELETE", "auth/approle/role/app"), 204)
    await setup_role(clocked_vault)
    for response in await _renewals(clocked_vault, auth, None):
        assert response.status_code == 200, response.text


async def _renew_self(vault: Vault, auth: dict[str, Any], **body: Any) -> int:
    response = await vault.request(
        "POST", "auth/token/renew-self", token=auth["client_token"], json=body
    )
    granted: int = (await ok(response))["auth"]["lease_duration"]
    return granted


async def test_the_roles_current_ttls_cap_a_renewal(
    clocked_vault: Vault, clocked_app: tuple[Any, FakeClock]
) -> None:
    vault = clocked_vault
    auth = await _approle_token(vault, token_ttl="1h", token_max_ttl="3h")
    assert auth["lease_duration"] == 3600
    body = {"token_ttl": "10m", "token_max_ttl": "20m"}
    await ok(await vault.root("POST", "auth/approle/role/app", json=body), 204)
    # Without an increment the role's TTL now; with one, the role's max TTL now.
    assert await _renew_self(vault, auth) == 600
    assert await _renew_self(vault, auth, increment="2h") == 1200
    clocked_app[1].advance(300)
    assert await _renew_self(vault, auth, increment="2h") == 900
    # A period set on the role later renews to the period, whatever the increment.
    body = {"token_ttl": "0", "token_max_ttl": "0", "token_period": "30m"}
    await ok(await vault.root("POST", "auth/approle/role/app", json=body), 204)
    assert await _renew_self(vault, auth, increment="5m") == 1800


async def test_the_mounts_tuned_max_ttl_caps_a_renewal(clocked_vault: Vault) -> None:
    vault = clocked_vault
    auth = await _approle_token(vault, token_ttl="1h")
    body = {"max_lease_ttl": "15m", "default_lease_ttl": "5m"}
    await ok(await vault.root("POST", "sys/auth/approle/tune", json=body), 204)
    assert await _renew_self(vault, auth, increment="1h") == 900
    await ok(await vault.root("POST", "auth/approle/role/app", json={"token_ttl": 0}), 204)
    assert await _renew_self(vault, auth) == 300  # no role TTL: the mount's default


async def test_a_deleted_jwt_role_refuses_the_renewal(vault: Vault) -> None:
    await jwt_setup(vault, "acme")
    status, body = await jwt_login(vault, "acme", jwt_token())
    assert status == 200, body
    auth = body["auth"]
    for response in await _renewals(vault, auth, "acme"):
        assert response.status_code == 200, response.text
        assert response.json()["auth"]["lease_duration"] == 600  # the role's token_ttl
    await ok(await vault.root("DELETE", "auth/jwt/role/tools", namespace="acme"), 204)
    for response in await _renewals(vault, auth, "acme"):
        assert response.status_code == 500, response.text
        assert response.json() == {"errors": [JWT_GONE]}


@pytest.mark.parametrize(
    ("tenant", "mount", "shown"),
    [
        (None, "approle", "approle"),
        (None, "x/y", "x-y"),
        ("acme", "approle", "acme-auth-approle"),
        ("acme", "team/ar", "acme-auth-team-ar"),
    ],
)
async def test_approle_display_names_are_openbaos(
    clocked_vault: Vault, tenant: str | None, mount: str, shown: str
) -> None:
    vault = clocked_vault
    if tenant is not None:
        await vault.create_tenant(tenant)
    enabled = await vault.root(
        "POST", f"sys/auth/{mount}", namespace=tenant, json={"type": "approle"}
    )
    assert enabled.status_code == 204, enabled.text
    role = f"auth/{mount}/role/app"
    await ok(
        await vault.root("POST", role, namespace=tenant, json={"token_policies": "default"}), 204
    )
    role_id = (await ok(await vault.root("GET", f"{role}/role-id", namespace=tenant)))["data"][
        "role_id"
    ]
    secret = await ok(await vault.root("POST", f"{role}/secret-id", namespace=tenant, json={}))
    response = await vault.request(
        "POST",
        f"auth/{mount}/login",
        namespace=tenant,
        json={"role_id": role_id, "secret_id": secret["data"]["secret_id"]},
    )
    token = (await ok(response))["auth"]["client_token"]
    looked = await ok(
        await vault.request("GET", "auth/token/lookup-self", token=token, namespace=tenant)
    )
    assert looked["data"]["display_name"] == shown
    assert looked["data"]["path"] == f"auth/{mount}/login"
