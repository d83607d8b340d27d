"""Real clients drive transit on `tenantvault serve` (dev and embedded): hvac's
`secrets.transit.*` methods and `bao write/read/list transit/...`, batches and derived keys
included, and a tenant's transit stays invisible to another tenant's token."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import hvac
import hvac.exceptions
import pytest

from tests.integration._support import BaoCLI, BaoResult, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

TRANSIT_POLICY = (
    'path "transit/*" { capabilities = ["create", "read", "update", "delete", "list"] }'
)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.fixture
def tenant(tenantvault_server: TenantVaultServer) -> Iterator[hvac.Client]:
    """hvac acting as root inside a fresh tenant (X-Vault-Namespace)."""
    root = hvac.Client(url=tenantvault_server.addr, token=tenantvault_server.root_token)
    name = unique_name()
    root.sys.create_namespace(name)
    client = hvac.Client(
        url=tenantvault_server.addr, token=tenantvault_server.root_token, namespace=name
    )
    yield client
    client.adapter.close()
    root.adapter.close()


# -- hvac ----------------------------------------------------------------------------------


def test_hvac_key_management(tenant: hvac.Client) -> None:
    transit = tenant.secrets.transit
    created = transit.create_key("pii")["data"]
    assert created["type"] == "aes256-gcm96"
    assert transit.read_key("pii")["data"]["latest_version"] == 1
    transit.create_key("ed", key_type="ed25519")
    assert transit.list_keys()["data"]["keys"] == ["ed", "pii"]
    assert transit.rotate_key("pii")["data"]["latest_version"] == 2
    configured = transit.update_key_configuration(
        "pii", min_decryption_version=2, deletion_allowed=True, auto_rotate_period="24h"
    )["data"]
    assert configured["min_decryption_version"] == 2
    assert configured["auto_rotate_period"] == 86400
    transit.delete_key("pii")
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key("pii")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="deletion is not allowed"):
        transit.delete_key("ed")


def test_hvac_encrypt_decrypt_rewrap(tenant: hvac.Client) -> None:
    transit = tenant.secrets.transit
    encrypted = transit.encrypt_data("pii", b64(b"hello"))["data"]  # upsert creates the key
    assert encrypted["ciphertext"].startswith("vault:v1:")
    plaintext = transit.decrypt_data("pii", encrypted["ciphertext"])["data"]["plaintext"]
    assert base64.b64decode(plaintext) == b"hello"
    transit.rotate_key("pii")
    rewrapped = transit.rewrap_data("pii", encrypted["ciphertext"])["data"]
    assert rewrapped["key_version"] == 2
    again = transit.decrypt_data("pii", rewrapped["ciphertext"])["data"]["plaintext"]
    assert base64.b64decode(again) == b"hello"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        transit.decrypt_data("pii", "vault:v1:" + "A" * 40)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no prefix"):
        transit.decrypt_data("pii", "garbage")


def test_hvac_batches(tenant: hvac.Client) -> None:
    transit = tenant.secrets.transit
    transit.create_key("pii")
    items = [{"plaintext": b64(f"item {i}".encode()), "reference": f"r{i}"} for i in range(10)]
    results = transit.encrypt_data("pii", plaintext=None, batch_input=items)["data"]
    encrypted = results["batch_results"]
    assert [item["reference"] for item in encrypted] == [f"r{i}" for i in range(10)]
    back = transit.decrypt_data(
        "pii",
        ciphertext=None,
        batch_input=[{"ciphertext": item["ciphertext"]} for item in encrypted],
    )["data"]["batch_results"]
    assert [base64.b64decode(item["plaintext"]) for item in back] == [
        f"item {i}".encode() for i in range(10)
    ]
    # One bad item: Vault answers 400 with the whole envelope; hvac raises on the 400.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.encrypt_data("pii", plaintext=None, batch_input=[*items, {"plaintext": "!"}])


def test_hvac_derived_and_convergent_keys(tenant: hvac.Client) -> None:
    transit = tenant.secrets.transit
    transit.create_key("d", derived=True)
    context = b64(b"customer-42")
    ciphertext = transit.encrypt_data("d", b64(b"x"), context=context)["data"]["ciphertext"]
    assert transit.decrypt_data("d", ciphertext, context=context)["data"]["plaintext"] == b64(b"x")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        transit.decrypt_data("d", ciphertext, context=b64(b"customer-43"))
    batch = [
        {"plaintext": b64(b"a"), "context": b64(b"c1")},
        {"plaintext": b64(b"b"), "context": b64(b"c2")},
    ]
    results = transit.encrypt_data("d", plaintext=None, batch_input=batch)["data"]["batch_results"]
    decrypted = transit.decrypt_data(
        "d",
        ciphertext=None,
        batch_input=[
            {"ciphertext": r["ciphertext"], "context": item["context"]}
            for r, item in zip(results, batch, strict=True)
        ],
    )["data"]["batch_results"]
    assert [r["plaintext"] for r in decrypted] == [b64(b"a"), b64(b"b")]
    transit.create_key("c", derived=True, convergent_encryption=True)
    first = transit.encrypt_data("c", b64(b"same"), context=context)["data"]["ciphertext"]
    second = transit.encrypt_data("c", b64(b"same"), context=context)["data"]["ciphertext"]
    assert first == second


def test_hvac_datakey_random_hash_hmac(tenant: hvac.Client) -> None:
    transit = tenant.secrets.transit
    transit.create_key("k")
    datakey = transit.generate_data_key("k", "plaintext", bits=512)["data"]
    assert len(base64.b64decode(datakey["plaintext"])) == 64
    opened = transit.decrypt_data("k", datakey["ciphertext"])["data"]["plaintext"]
    assert opened == datakey["plaintext"]
    wrapped = transit.generate_data_key("k", "wrapped")["data"]
    assert "plaintext" not in wrapped
    random_hex = transit.generate_random_bytes(n_bytes=16, output_format="hex")["data"]
    assert len(random_hex["random_bytes"]) == 32
    digest = transit.hash_data(b64(b"hello"), algorithm="sha2-256")["data"]["sum"]
    assert digest == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    mac = transit.generate_hmac("k", b64(b"message"), algorithm="sha2-512")["data"]["hmac"]
    verified = transit.verify_signed_data(
        "k", b64(b"message"), hmac=mac, hash_algorithm="sha2-512"
    )["data"]
    assert verified["valid"] is True


def test_hvac_sign_verify(tenant: hvac.Client) -> None:
    transit = tenant.secrets.transit
    transit.create_key("ed", key_type="ed25519")
    signature = transit.sign_data("ed", b64(b"payload"))["data"]["signature"]
    assert transit.verify_signed_data("ed", b64(b"payload"), signature=signature)["data"]["valid"]
    forged = transit.verify_signed_data("ed", b64(b"payloaD"), signature=signature)["data"]
    assert forged["valid"] is False


def test_hvac_other_tenants_token_sees_nothing(
    tenant: hvac.Client, tenantvault_server: TenantVaultServer
) -> None:
    tenant.secrets.transit.create_key("private")
    other_name = unique_name()
    root = hvac.Client(url=tenantvault_server.addr, token=tenantvault_server.root_token)
    root.sys.create_namespace(other_name)
    other = hvac.Client(
        url=tenantvault_server.addr, token=tenantvault_server.root_token, namespace=other_name
    )
    other.sys.create_or_update_policy("transit", TRANSIT_POLICY)
    token = other.auth.token.create(policies=["transit"])["auth"]["client_token"]
    outsider = hvac.Client(
        url=tenantvault_server.addr, token=token, namespace=tenant.adapter.namespace
    )
    try:
        with pytest.raises(hvac.exceptions.Forbidden):
            outsider.secrets.transit.list_keys()
        with pytest.raises(hvac.exceptions.Forbidden):
            outsider.secrets.transit.encrypt_data("private", b64(b"x"))
        own = hvac.Client(url=tenantvault_server.addr, token=token, namespace=other_name)
        with pytest.raises(hvac.exceptions.InvalidPath):
            own.secrets.transit.list_keys()  # its own tenant has no keys: 404, nothing shown
        own.adapter.close()
    finally:
        for client in (root, other, outsider):
            client.adapter.close()


# -- the bao CLI ---------------------------------------------------------------------------


def ok(result: BaoResult) -> Any:
    assert result.code == 0, f"bao failed ({result.code}):\n{result.err}\n{result.out}"
    return json.loads(result.out) if result.out.lstrip().startswith(("{", "[")) else result.out


@pytest.fixture
def in_tenant(bao: BaoCLI, tenantvault_server: TenantVaultServer) -> Any:
    name = unique_name()
    ok(bao.run("namespace", "create", name, token=tenantvault_server.root_token))

    def run(*args: str, stdin: str | None = None) -> BaoResult:
        return bao.run(*args, token=tenantvault_server.root_token, namespace=name, stdin=stdin)

    return run


def test_bao_write_encrypt_decrypt(in_tenant: Any) -> None:
    ok(in_tenant("write", "transit/keys/pii", "type=aes256-gcm96"))
    encrypted = ok(
        in_tenant("write", "-format=json", "transit/encrypt/pii", f"plaintext={b64(b'hello')}")
    )["data"]
    decrypted = ok(
        in_tenant(
            "write", "-format=json", "transit/decrypt/pii", f"ciphertext={encrypted['ciphertext']}"
        )
    )["data"]
    assert base64.b64decode(decrypted["plaintext"]) == b"hello"
    listed = ok(in_tenant("list", "-format=json", "transit/keys"))
    assert listed == ["pii"]
    info = ok(in_tenant("read", "-format=json", "transit/keys/pii"))["data"]
    assert info["latest_version"] == 1
    ok(in_tenant("write", "transit/keys/pii/config", "min_encryption_version=0"))
    ok(in_tenant("write", "transit/encrypt/pii", f"plaintext={b64(b'x')}", "key_version=1"))
    refused = in_tenant("write", "transit/decrypt/pii", "ciphertext=vault:v1:" + "A" * 40)
    assert refused.code != 0
    assert "Code: 400" in refused.err
    assert "cipher: message authentication failed" in refused.err


def test_bao_write_force_rotate_and_rewrap(in_tenant: Any) -> None:
    """`bao write -f` (the documented way to rotate) sends the JSON body `null`."""
    ok(in_tenant("write", "-f", "transit/keys/pii"))
    encrypted = ok(
        in_tenant("write", "-format=json", "transit/encrypt/pii", f"plaintext={b64(b'hello')}")
    )["data"]
    ok(in_tenant("write", "-f", "transit/keys/pii/rotate"))
    rewrapped = ok(
        in_tenant(
            "write", "-format=json", "transit/rewrap/pii", f"ciphertext={encrypted['ciphertext']}"
        )
    )["data"]
    assert rewrapped["key_version"] == 2


def test_bao_write_batches_and_derived_keys(in_tenant: Any) -> None:
    ok(in_tenant("write", "transit/keys/d", "derived=true"))
    batch = {
        "batch_input": [
            {"plaintext": b64(b"one"), "context": b64(b"c1"), "reference": "a"},
            {"plaintext": b64(b"two"), "context": b64(b"c2"), "reference": "b"},
        ]
    }
    results = ok(
        in_tenant("write", "-format=json", "transit/encrypt/d", "-", stdin=json.dumps(batch))
    )["data"]["batch_results"]
    assert [r["reference"] for r in results] == ["a", "b"]
    back = {
        "batch_input": [
            {"ciphertext": r["ciphertext"], "context": item["context"]}
            for r, item in zip(results, batch["batch_input"], strict=True)
        ]
    }
    decrypted = ok(
        in_tenant("write", "-format=json", "transit/decrypt/d", "-", stdin=json.dumps(back))
    )["data"]["batch_results"]
    assert [base64.b64decode(r["plaintext"]) for r in decrypted] == [b"one", b"two"]
    ciphertext = results[0]["ciphertext"]
    missing = in_tenant("write", "transit/decrypt/d", f"ciphertext={ciphertext}")
    assert missing.code != 0
    assert "missing 'context' for key derivation" in missing.err


def test_bao_write_sign_hmac_datakey_random(in_tenant: Any) -> None:
    ok(in_tenant("write", "transit/keys/ed", "type=ed25519"))
    signature = ok(in_tenant("write", "-format=json", "transit/sign/ed", f"input={b64(b'msg')}"))[
        "data"
    ]["signature"]
    verified = ok(
        in_tenant(
            "write",
            "-format=json",
            "transit/verify/ed",
            f"input={b64(b'msg')}",
            f"signature={signature}",
        )
    )["data"]
    assert verified["valid"] is True
    ok(in_tenant("write", "transit/keys/k", "type=aes256-gcm96"))
    mac = ok(in_tenant("write", "-format=json", "transit/hmac/k/sha2-384", "input=YQ=="))["data"]
    assert len(base64.b64decode(mac["hmac"].split(":")[2])) == 48
    datakey = ok(in_tenant("write", "-format=json", "transit/datakey/plaintext/k", "bits=256"))
    assert len(base64.b64decode(datakey["data"]["plaintext"])) == 32
    random_bytes = ok(in_tenant("write", "-format=json", "transit/random/24", "format=base64"))[
        "data"
    ]
    assert len(base64.b64decode(random_bytes["random_bytes"])) == 24


def test_bao_secrets_list_shows_transit(in_tenant: Any) -> None:
    mounts = ok(in_tenant("secrets", "list", "-format=json"))
    assert mounts["transit/"]["type"] == "transit"
