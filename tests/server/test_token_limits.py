"""What a token may mint over HTTP: Vault's status codes and error texts (issue 8: 1, 10)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Vault

pytestmark = pytest.mark.usefixtures("app")

MAKER = 'path "auth/token/*" { capabilities = ["create", "update", "read"] }'
SUDOER = 'path "auth/token/*" { capabilities = ["create", "update", "read", "sudo"] }'


@pytest.fixture
async def tenant(vault: Vault) -> str:
    await vault.create_tenant("acme")
    await vault.write_policy("acme", "maker", MAKER)
    await vault.write_policy("acme", "sudoer", SUDOER)
    return "acme"


async def _token(vault: Vault, tenant: str, policy: str, **fields: Any) -> str:
    return str((await vault.create_token(tenant, [policy], **fields))["client_token"])


@pytest.mark.parametrize("path", ["auth/token/create", "auth/token/create-orphan"])
@pytest.mark.parametrize(
    ("num_uses", "error", "uses_left"),
    [
        (3, "restricted use token cannot generate child tokens", 2),
        # The last use: to Vault the token is already gone while this request runs.
        (1, "parent token lookup failed: no parent found", 0),
    ],
)
async def test_a_use_limited_token_gets_400_for_a_child(
    vault: Vault, tenant: str, path: str, num_uses: int, error: str, uses_left: int
) -> None:
    """Item 1: the answers OpenBao 2.7 gives to a request that is otherwise fine; the refused
    request still counts as a use."""
    limited = await _token(vault, tenant, "sudoer", num_uses=num_uses)
    response = await vault.request("POST", path, token=limited, json={"policies": ["sudoer"]})
    assert (response.status_code, response.json()) == (400, {"errors": [error]})
    for _ in range(uses_left):
        assert (await vault.request("GET", "auth/token/lookup-self", token=limited)).is_success
    after = await vault.request("GET", "auth/token/lookup-self", token=limited)
    assert (after.status_code, after.json()) == (403, {"errors": ["permission denied"]})


async def test_period_needs_root_or_sudo(vault: Vault, tenant: str) -> None:
    """Item 10: a periodic token renews forever, so only root or sudo may ask for one."""
    plain = await _token(vault, tenant, "maker")
    denied = await vault.request(
        "POST", "auth/token/create", token=plain, json={"policies": ["maker"], "period": "1h"}
    )
    assert (denied.status_code, denied.json()) == (
        400,
        {"errors": ["root or sudo privileges required to create periodic token"]},
    )
    for no_period in ("0", "0s", 0, ""):
        fine = await vault.request(
            "POST", "auth/token/create", token=plain, json={"period": no_period}
        )
        assert fine.status_code == 200, (no_period, fine.text)
    sudo = await _token(vault, tenant, "sudoer")
    for token in (sudo, vault.root_token):
        made = await vault.request(
            "POST",
            "auth/token/create",
            token=token,
            namespace=tenant,
            json={"policies": ["sudoer"], "period": "1h"},
        )
        assert made.status_code == 200, made.text
        assert made.json()["auth"]["lease_duration"] == 3600
        periodic = made.json()["auth"]["client_token"]
        looked = await vault.request("GET", "auth/token/lookup-self", token=periodic)
        assert looked.json()["data"]["period"] == 3600


async def test_a_root_namespace_token_gives_a_tenant_token_default_unless_told(
    vault: Vault,
) -> None:
    """OpenBao: root creating a token in a namespace without `policies` gets `default` only;
    inside its own namespace a token's children inherit its policies."""
    await vault.tenant_admin("acme")
    made = await vault.root("POST", "auth/token/create", namespace="acme", json={})
    assert made.status_code == 200, made.text
    assert made.json()["auth"]["policies"] == ["default"]
    child = made.json()["auth"]["client_token"]
    assert (
        await vault.request("GET", "secret/data/app", token=child, namespace="acme")
    ).status_code == 403
    orphan = await vault.root("POST", "auth/token/create-orphan", namespace="acme", json={})
    assert orphan.json()["auth"]["policies"] == ["default"]
    in_root = await vault.root("POST", "auth/token/create", json={})
    assert in_root.json()["auth"]["policies"] == ["root"]
    admin = str((await vault.create_token("acme", ["admin"]))["client_token"])
    inherited = await vault.request(
        "POST", "auth/token/create", token=admin, namespace="acme", json={}
    )
    assert inherited.json()["auth"]["policies"] == ["admin", "default"]
