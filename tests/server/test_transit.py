"""Transit over HTTP: the envelope, batch statuses and tenant-bound keys."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import canary
from tests.server.conftest import Vault

pytestmark = pytest.mark.usefixtures("app")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_encrypt_decrypt_round_trip(vault: Vault) -> None:
    await vault.create_tenant("acme")
    secret = canary()
    created = await vault.root("POST", "transit/keys/pii", namespace="acme", json={})
    assert created.status_code in (200, 204)
    encrypted = await vault.root(
        "POST", "transit/encrypt/pii", namespace="acme", json={"plaintext": _b64(secret)}
    )
    assert encrypted.status_code == 200
    ciphertext = encrypted.json()["data"]["ciphertext"]
    assert ciphertext.startswith("vault:v1:")
    assert secret not in encrypted.text
    decrypted = await vault.root(
        "POST", "transit/decrypt/pii", namespace="acme", json={"ciphertext": ciphertext}
    )
    assert base64.b64decode(decrypted.json()["data"]["plaintext"]).decode() == secret
    listed = await vault.root("LIST", "transit/keys", namespace="acme")
    assert listed.json()["data"]["keys"] == ["pii"]


async def test_a_batch_with_a_failed_item_is_400_with_the_envelope(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.root("POST", "transit/keys/pii", namespace="acme", json={})
    response = await vault.root(
        "POST",
        "transit/decrypt/pii",
        namespace="acme",
        json={"batch_input": [{"ciphertext": "vault:v1:bogus"}]},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "error" in body["data"]["batch_results"][0]


async def test_ciphertext_of_one_tenant_does_not_decrypt_in_another(vault: Vault) -> None:
    for tenant in ("acme", "beta"):
        await vault.create_tenant(tenant)
        await vault.root("POST", "transit/keys/pii", namespace=tenant, json={})
    encrypted = await vault.root(
        "POST", "transit/encrypt/pii", namespace="acme", json={"plaintext": _b64(canary())}
    )
    ciphertext = encrypted.json()["data"]["ciphertext"]
    other = await vault.root(
        "POST", "transit/decrypt/pii", namespace="beta", json={"ciphertext": ciphertext}
    )
    assert other.status_code == 400
