"""Transit keys leaving and re-entering a mount: `export`, `backup`, `restore` and
`keys/<name>/trim`, with OpenBao 2.7.2's rules and texts; a backup blob that was altered,
forged or made elsewhere is one 400, never a 500 and never a restored key."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.conftest import canary
from tests.server.conftest import Vault


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
async def acme(vault: Vault) -> Vault:
    await vault.create_tenant("acme")
    return vault


async def _call(
    vault: Vault, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    reply = await vault.root(method, path, namespace="acme", json=body)
    return reply.status_code, (reply.json() if reply.content.strip() else None)


async def _key(vault: Vault, name: str, **fields: Any) -> None:
    status, _ = await _call(vault, "POST", f"transit/keys/{name}", fields)
    assert status == 200


async def test_export_gives_every_version_or_the_one_asked(acme: Vault) -> None:
    await _key(acme, "e", exportable=True)
    await _call(acme, "POST", "transit/keys/e/rotate")
    status, body = await _call(acme, "GET", "transit/export/encryption-key/e")
    assert status == 200
    data = body["data"]
    assert (data["name"], data["type"], sorted(data["keys"])) == ("e", "aes256-gcm96", ["1", "2"])
    assert all(len(base64.b64decode(key)) == 32 for key in data["keys"].values())
    latest = (await _call(acme, "GET", "transit/export/encryption-key/e/latest"))[1]["data"]
    assert latest["keys"] == {"2": data["keys"]["2"]}
    one = (await _call(acme, "GET", "transit/export/encryption-key/e/1"))[1]["data"]
    assert one["keys"] == {"1": data["keys"]["1"]}
    hmac = (await _call(acme, "GET", "transit/export/hmac-key/e/1"))[1]["data"]["keys"]["1"]
    assert hmac != data["keys"]["1"]


async def test_an_exported_key_decrypts_what_transit_encrypted(acme: Vault) -> None:
    await _key(acme, "e", exportable=True)
    secret = canary().encode()
    ciphertext = (await _call(acme, "POST", "transit/encrypt/e", {"plaintext": _b64(secret)}))[1][
        "data"
    ]["ciphertext"]
    key = (await _call(acme, "GET", "transit/export/encryption-key/e/1"))[1]["data"]["keys"]["1"]
    raw = base64.b64decode(ciphertext.removeprefix("vault:v1:"))
    assert AESGCM(base64.b64decode(key)).decrypt(raw[:12], raw[12:], None) == secret


async def test_ed25519_signing_and_public_keys(acme: Vault) -> None:
    await _key(acme, "ed", type="ed25519", exportable=True)
    await _key(acme, "edn", type="ed25519")
    signing = (await _call(acme, "GET", "transit/export/signing-key/ed"))[1]["data"]["keys"]["1"]
    public = (await _call(acme, "GET", "transit/export/public-key/ed"))[1]["data"]["keys"]["1"]
    assert base64.b64decode(signing)[32:] == base64.b64decode(public)
    # A public key is exportable whatever `exportable` says; the private key is not.
    assert (await _call(acme, "GET", "transit/export/public-key/edn"))[0] == 200
    status, body = await _call(acme, "GET", "transit/export/signing-key/edn")
    assert (status, body) == (400, {"errors": ["private key material is not exportable"]})


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("transit/export/encryption-key/plain", "private key material is not exportable"),
        ("transit/export/hmac-key/plain", "private key material is not exportable"),
        ("transit/export/signing-key/e", "signing not supported for the key"),
        ("transit/export/encryption-key/ed", "encryption not supported for the key"),
        ("transit/export/nope/e", "invalid export type: nope"),
        ("transit/export/encryption-key/e/2", "version does not exist or cannot be found"),
        (
            "transit/export/encryption-key/e/0",
            "version for export is below minimum decryption version",
        ),
        ("transit/export/encryption-key/e/x", "invalid key version"),
        (
            "transit/export/public-key/e",
            "unknown key type aes256-gcm96 for export type public-key",
        ),
    ],
)
async def test_export_refusals(acme: Vault, path: str, error: str) -> None:
    await _key(acme, "plain")
    await _key(acme, "e", exportable=True)
    await _key(acme, "ed", type="ed25519", exportable=True)
    assert await _call(acme, "GET", path) == (400, {"errors": [error]})


async def test_export_of_a_missing_key_is_404_and_export_is_read_only(acme: Vault) -> None:
    assert await _call(acme, "GET", "transit/export/encryption-key/missing") == (
        404,
        {"errors": []},
    )
    assert (await _call(acme, "POST", "transit/export/encryption-key/missing"))[0] == 405


async def _backup(vault: Vault, name: str) -> str:
    status, body = await _call(vault, "GET", f"transit/backup/{name}")
    assert status == 200, body
    blob: str = body["data"]["backup"]
    return blob


async def test_backup_and_restore_under_a_new_name_and_with_force(acme: Vault) -> None:
    await _key(acme, "k", exportable=True, allow_plaintext_backup=True)
    await _call(acme, "POST", "transit/keys/k/rotate")
    secret = canary().encode()
    ciphertext = (await _call(acme, "POST", "transit/encrypt/k", {"plaintext": _b64(secret)}))[1][
        "data"
    ]["ciphertext"]
    blob = await _backup(acme, "k")
    assert blob.startswith("tvb1:")
    assert await _call(acme, "POST", "transit/restore", {"backup": blob}) == (
        400,
        {"errors": ['key "k" already exists']},
    )
    assert await _call(acme, "POST", "transit/restore/k2", {"backup": blob}) == (204, None)
    assert (await _call(acme, "POST", "transit/restore/k2", {"backup": blob}))[0] == 400
    assert (await _call(acme, "POST", "transit/restore/k2", {"backup": blob, "force": True}))[
        0
    ] == 204
    _, body = await _call(acme, "POST", "transit/decrypt/k2", {"ciphertext": ciphertext})
    assert base64.b64decode(body["data"]["plaintext"]) == secret
    restored = (await _call(acme, "GET", "transit/keys/k2"))[1]["data"]
    assert (restored["name"], restored["latest_version"]) == ("k2", 2)
    # After deleting the original, a restore without a name brings it back.
    await _call(acme, "POST", "transit/keys/k/config", {"deletion_allowed": True})
    assert (await _call(acme, "DELETE", "transit/keys/k"))[0] == 204
    assert (await _call(acme, "POST", "transit/restore", {"backup": blob}))[0] == 204
    assert (await _call(acme, "GET", "transit/keys/k"))[0] == 200


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, "exporting is disallowed on the policy"),
        ({"exportable": True}, "plaintext backup is disallowed on the policy"),
    ],
)
async def test_backup_needs_exportable_and_plaintext_backup(
    acme: Vault, fields: dict[str, Any], error: str
) -> None:
    await _key(acme, "k", **fields)
    assert await _call(acme, "GET", "transit/backup/k") == (400, {"errors": [error]})
    assert await _call(acme, "GET", "transit/backup/missing") == (
        400,
        {"errors": ['key "missing" not found']},
    )


def _flip(blob: str, position: int) -> str:
    raw = bytearray(base64.b64decode(blob.removeprefix("tvb1:")))
    raw[position] ^= 0x01
    return "tvb1:" + base64.b64encode(bytes(raw)).decode()


async def test_an_altered_forged_or_foreign_backup_is_one_400(vault: Vault) -> None:
    for tenant in ("acme", "globex"):
        await vault.create_tenant(tenant)
    await vault.root(
        "POST",
        "transit/keys/k",
        namespace="acme",
        json={"exportable": True, "allow_plaintext_backup": True},
    )
    blob = (await vault.root("GET", "transit/backup/k", namespace="acme")).json()["data"]["backup"]
    forged = "tvb1:" + _b64(b'{"name":"k","type":"aes256-gcm96","versions":{}}')
    for bad in (
        _flip(blob, 0),
        _flip(blob, 40),
        _flip(blob, len(base64.b64decode(blob[5:])) - 1),
        blob[:-8],
        blob + "AAAA",
        forged,
        "e30=",
        "tvb1:!!!",
        "tvb1:",
        "x" * 5_000_000,
    ):
        reply = await vault.root(
            "POST", "transit/restore/x", namespace="acme", json={"backup": bad}
        )
        assert (reply.status_code, reply.json()) == (400, {"errors": ["invalid backup"]})
    # A blob is the mount's own: another tenant cannot restore it.
    foreign = await vault.root(
        "POST", "transit/restore/k", namespace="globex", json={"backup": blob}
    )
    assert (foreign.status_code, foreign.json()) == (400, {"errors": ["invalid backup"]})
    assert (await vault.root("GET", "transit/keys/x", namespace="acme")).status_code == 404
    assert (await vault.root("GET", "transit/keys/k", namespace="globex")).status_code == 404


async def test_restore_refusals(acme: Vault) -> None:
    assert await _call(acme, "POST", "transit/restore", {}) == (
        400,
        {"errors": ["'backup' must be supplied"]},
    )
    assert await _call(acme, "POST", "transit/restore/a/b", {"backup": "x"}) == (
        400,
        {"errors": ["key names cannot be paths"]},
    )
    assert (await _call(acme, "GET", "transit/restore"))[0] == 405


async def test_trim_deletes_old_versions_for_good(acme: Vault) -> None:
    await _key(acme, "t")
    secret = canary().encode()
    first = (await _call(acme, "POST", "transit/encrypt/t", {"plaintext": _b64(secret)}))[1][
        "data"
    ]["ciphertext"]
    for _ in range(4):
        await _call(acme, "POST", "transit/keys/t/rotate")
    steps: list[tuple[dict[str, Any], int, str | None]] = [
        ({}, 400, "missing min_available_version"),
        (
            {"min_available_version": 2},
            400,
            "minimum available version cannot be set when minimum encryption version is not set",
        ),
    ]
    for body, status, error in steps:
        assert await _call(acme, "POST", "transit/keys/t/trim", body) == (
            status,
            {"errors": [error]},
        )
    await _call(acme, "POST", "transit/keys/t/config", {"min_encryption_version": 3})
    assert (await _call(acme, "POST", "transit/keys/t/trim", {"min_available_version": 2}))[1] == {
        "errors": ["minimum available version cannot be greater than minimum decryption version"]
    }
    await _call(acme, "POST", "transit/keys/t/config", {"min_decryption_version": 3})
    for value, error in (
        (4, "minimum available version cannot be greater than minmum encryption version"),
        (0, "minimum available version should be positive"),
    ):
        assert (await _call(acme, "POST", "transit/keys/t/trim", {"min_available_version": value}))[
            1
        ] == {"errors": [error]}
    status, body = await _call(acme, "POST", "transit/keys/t/trim", {"min_available_version": 3})
    assert status == 200
    assert body["data"]["min_available_version"] == 3
    assert sorted(body["data"]["keys"]) == ["3", "4", "5"]
    assert (await _call(acme, "POST", "transit/keys/t/trim", {"min_available_version": 2}))[1] == {
        "errors": ["minimum available version cannot be decremented"]
    }
    lowered = await _call(acme, "POST", "transit/keys/t/config", {"min_decryption_version": 1})
    assert lowered == (
        400,
        {"errors": ["min decryption version should not be less then min available version"]},
    )
    # Version 1 is gone: its ciphertext can never be decrypted again.
    status, _ = await _call(acme, "POST", "transit/decrypt/t", {"ciphertext": first})
    assert status == 400
    assert await _call(acme, "POST", "transit/keys/missing/trim", {"min_available_version": 1}) == (
        400,
        {"errors": ["invalid key name"]},
    )
