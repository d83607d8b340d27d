"""The transit contract: every endpoint, run unchanged against every backend.

Expected behaviour is OpenBao's transit (reference/vault-api.md §D.3); where a test pins a
message, it is the message `bao server -dev` gives for the same request.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

import tenantvault
from tenantvault import (
    DecryptionError,
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
    Operation,
    PermissionDeniedError,
    Response,
)
from tenantvault.testing import core_of
from tests.conftest import FakeClock

CIPHERTEXT = re.compile(r"vault:v(\d+):([A-Za-z0-9+/]+={0,2})\Z")
ZEROS = "vault:v1:" + "A" * 40  # 30 zero bytes: a well-formed ciphertext that no key made


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


async def call(
    tv: tenantvault.TenantVault,
    path: str,
    data: dict[str, Any] | None = None,
    *,
    operation: Operation = Operation.UPDATE,
) -> Response:
    return await tv.request(operation, f"transit/{path}", data, namespace="acme")


async def failure(tv: tenantvault.TenantVault, path: str, data: dict[str, Any]) -> str:
    """The single error message of a refused request (always a 400 in transit)."""
    with pytest.raises((InvalidRequestError, DecryptionError)) as caught:
        await call(tv, path, data)
    assert caught.value.status == 400
    return caught.value.message


@pytest.fixture
async def transit(acme: tenantvault.Tenant) -> tenantvault.Transit:
    return acme.transit


# -- encrypt and decrypt -------------------------------------------------------------------


async def test_encrypt_then_decrypt_returns_the_plaintext(transit: tenantvault.Transit) -> None:
    for plaintext in (b"hello", b"", b"\x00\xff" * 1000, "ключ 🔑".encode()):
        ciphertext = await transit.encrypt("pii", plaintext)
        assert await transit.decrypt("pii", ciphertext) == plaintext


async def test_ciphertext_is_vault_format_nonce_body_tag(transit: tenantvault.Transit) -> None:
    ciphertext = await transit.encrypt("pii", b"hello")
    match = CIPHERTEXT.match(ciphertext)
    assert match is not None
    assert match.group(1) == "1"
    assert len(base64.b64decode(match.group(2))) == 12 + len(b"hello") + 16


async def test_every_encryption_uses_a_fresh_nonce(transit: tenantvault.Transit) -> None:
    ciphertexts = {await transit.encrypt("pii", b"same") for _ in range(50)}
    assert len(ciphertexts) == 50
    nonces = {base64.b64decode(c.split(":")[2])[:12] for c in ciphertexts}
    assert len(nonces) == 50


async def test_encrypt_answers_ciphertext_and_key_version(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    response = await call(tv, "encrypt/pii", {"plaintext": b64(b"x")})
    assert response.status == 200
    assert set(response.data or {}) == {"ciphertext", "key_version"}
    assert (response.data or {})["key_version"] == 1
    decrypted = await call(tv, "decrypt/pii", {"ciphertext": (response.data or {})["ciphertext"]})
    assert decrypted.data == {"plaintext": b64(b"x")}


async def test_plaintext_must_be_base64(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    assert await failure(tv, "encrypt/pii", {}) == "missing plaintext to encrypt"
    assert await failure(tv, "encrypt/pii", {"plaintext": "!!"}) == (
        "illegal base64 data at input byte 0"
    )
    assert await failure(tv, "encrypt/pii", {"plaintext": "aGVsbG8"}) == (
        "illegal base64 data at input byte 4"
    )


async def test_decrypt_errors_carry_vaults_messages(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("k")
    cases = {
        "garbage": "invalid ciphertext: no prefix",
        "vault:v1": "invalid ciphertext: wrong number of fields",
        "vault:vx:abc": "invalid ciphertext: version number could not be decoded",
        "vault:v9:abc": "invalid ciphertext: version is too new",
        "vault:v1:abc": "invalid ciphertext: could not decode base64",
        "vault:v1:YWJj": "invalid ciphertext length",
        ZEROS: "cipher: message authentication failed",
    }
    for ciphertext, message in cases.items():
        assert await failure(tv, "decrypt/k", {"ciphertext": ciphertext}) == message
    assert await failure(tv, "decrypt/k", {}) == "missing ciphertext to decrypt"
    assert await failure(tv, "decrypt/nope", {"ciphertext": ZEROS}) == "encryption key not found"


async def test_decrypt_failure_is_one_exception_class_for_the_python_api(
    transit: tenantvault.Transit,
) -> None:
    good = await transit.encrypt("k", b"secret")
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    for bad in (flipped, ZEROS, "garbage"):
        with pytest.raises(DecryptionError):
            await transit.decrypt("k", bad)


async def test_chacha20_poly1305_keys_round_trip_and_name_their_failure(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("cc", key_type="chacha20-poly1305")
    ciphertext = await transit.encrypt("cc", b"hello")
    assert await transit.decrypt("cc", ciphertext) == b"hello"
    assert await failure(tv, "decrypt/cc", {"ciphertext": ZEROS}) == (
        "chacha20poly1305: message authentication failed"
    )


async def test_aes128_keys_round_trip(transit: tenantvault.Transit) -> None:
    await transit.create_key("small", key_type="aes128-gcm96")
    assert (await transit.read_key("small")).type == "aes128-gcm96"
    assert await transit.decrypt("small", await transit.encrypt("small", b"x")) == b"x"


async def test_associated_data_is_bound_to_the_ciphertext(
    tv: tenantvault.Transit, transit: tenantvault.Transit
) -> None:
    ciphertext = await transit.encrypt("k", b"body", associated_data=b"header")
    assert await transit.decrypt("k", ciphertext, associated_data=b"header") == b"body"
    for wrong in (None, b"other"):
        with pytest.raises(DecryptionError, match="message authentication failed"):
            await transit.decrypt("k", ciphertext, associated_data=wrong)


async def test_a_caller_can_never_choose_the_nonce(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    """CVE-2023-4680: `nonce` is refused everywhere, convergent keys included."""
    await transit.create_key("plain")
    await transit.create_key("conv", derived=True, convergent_encryption=True)
    nonce = b64(b"\x00" * 12)
    refused = "nonce provided when not allowed"
    for name, extra in (("plain", {}), ("conv", {"context": b64(b"c")})):
        body = {"plaintext": b64(b"x"), "nonce": nonce, **extra}
        assert await failure(tv, f"encrypt/{name}", body) == refused
        batch = {"batch_input": [{"plaintext": b64(b"x"), "nonce": nonce, **extra}]}
        assert await failure(tv, f"encrypt/{name}", batch) == refused
    assert await failure(tv, "datakey/plaintext/plain", {"nonce": nonce}) == refused


# -- keys ----------------------------------------------------------------------------------


async def test_key_read_has_vaults_fields(transit: tenantvault.Transit, clock: FakeClock) -> None:
    created = await transit.create_key("pii")
    assert created == await transit.read_key("pii")
    assert created == tenantvault.KeyInfo(
        allow_plaintext_backup=False,
        auto_rotate_period=0,
        deletion_allowed=False,
        derived=False,
        exportable=False,
        imported_key=False,
        keys={"1": clock.now // 1_000_000_000},
        latest_version=1,
        min_available_version=0,
        min_decryption_version=1,
        min_encryption_version=0,
        name="pii",
        soft_deleted=False,
        supports_decryption=True,
        supports_derivation=True,
        supports_encryption=True,
        supports_signing=False,
        type="aes256-gcm96",
    )


async def test_creating_an_existing_key_returns_it_unchanged(transit: tenantvault.Transit) -> None:
    await transit.create_key("k")
    await transit.rotate_key("k")
    again = await transit.create_key("k", key_type="chacha20-poly1305")
    assert again.type == "aes256-gcm96"
    assert again.latest_version == 2


async def test_key_creation_checks(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "rot13"}, "unknown key type"),  # never echoes the submitted value
        ({"type": "rsa-2048"}, "key type rsa-2048 is not supported"),
        ({"convergent_encryption": True}, "convergent encryption requires derivation"),
        ({"auto_rotate_period": "30m"}, "auto rotate period must be 0 to disable or at least"),
        ({"key_size": 64}, "key_size is not valid for algorithm aes256-gcm96"),
        ({"type": "hmac", "key_size": 8}, "invalid key_size 8"),
        (
            {"type": "hmac", "derived": True},
            "key derivation and convergent encryption not supported for keys of type hmac",
        ),
        (
            {"type": "ed25519", "derived": True, "convergent_encryption": True},
            "convergent encryption not supported for keys of type ed25519",
        ),
    ]
    for body, message in cases:
        assert (await failure(tv, "keys/k", body)).startswith(message)
    with pytest.raises(NotFoundError):
        await call(tv, "keys/k", operation=Operation.READ)


async def test_key_names_are_validated(transit: tenantvault.Transit) -> None:
    for bad in ("-dash", "a b", "x/../y", "", "k*"):
        with pytest.raises(InvalidPathError):
            await transit.encrypt(bad, b"x")


async def test_list_keys(transit: tenantvault.Transit) -> None:
    assert await transit.list_keys() == []
    for name in ("b", "a", "c.d"):
        await transit.create_key(name)
    assert await transit.list_keys() == ["a", "b", "c.d"]


async def test_missing_key_reads_and_lists_as_not_found(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    with pytest.raises(NotFoundError):
        await call(tv, "keys/nope", operation=Operation.READ)
    with pytest.raises(NotFoundError):
        await call(tv, "keys", operation=Operation.LIST)


async def test_delete_needs_deletion_allowed(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    ciphertext = await transit.encrypt("k", b"x")
    with pytest.raises(InvalidRequestError) as refused:
        await transit.delete_key("k")
    assert refused.value.message == (
        "error deleting policy k: deletion is not allowed for this key"
    )
    await transit.configure_key("k", deletion_allowed=True)
    response = await call(tv, "keys/k", operation=Operation.DELETE)
    assert response.status == 204
    assert await transit.list_keys() == []
    with pytest.raises(InvalidRequestError, match="encryption key not found"):
        await transit.decrypt("k", ciphertext)
    with pytest.raises(InvalidRequestError) as missing:
        await transit.delete_key("k")
    assert missing.value.message == "error deleting policy k: could not delete key; not found"


async def test_a_deleted_and_recreated_key_cannot_open_old_ciphertexts(
    transit: tenantvault.Transit,
) -> None:
    old = await transit.encrypt("k", b"x")
    await transit.configure_key("k", deletion_allowed=True)
    await transit.delete_key("k")
    await transit.create_key("k")
    with pytest.raises(DecryptionError, match="message authentication failed"):
        await transit.decrypt("k", old)


# -- rotation and version policy -----------------------------------------------------------


async def test_rotation_keeps_old_ciphertexts_readable(transit: tenantvault.Transit) -> None:
    v1 = await transit.encrypt("k", b"one")
    rotated = await transit.rotate_key("k")
    assert rotated.latest_version == 2
    assert set(rotated.keys or ()) == {"1", "2"}
    v2 = await transit.encrypt("k", b"two")
    assert v2.startswith("vault:v2:")
    assert await transit.decrypt("k", v1) == b"one"
    assert await transit.decrypt("k", v2) == b"two"
    assert (await transit.encrypt("k", b"old", key_version=1)).startswith("vault:v1:")


async def test_rewrap_moves_a_ciphertext_to_the_latest_version(
    transit: tenantvault.Transit,
) -> None:
    old = await transit.encrypt("k", b"payload")
    await transit.rotate_key("k")
    await transit.rotate_key("k")
    new = await transit.rewrap("k", old)
    assert new.startswith("vault:v3:")
    assert await transit.decrypt("k", new) == b"payload"
    assert (await transit.rewrap("k", old, key_version=2)).startswith("vault:v2:")


async def test_min_decryption_version_refuses_older_ciphertexts(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    v1 = await transit.encrypt("k", b"x")
    await transit.rotate_key("k")
    configured = await transit.configure_key("k", min_decryption_version=2)
    assert configured.min_decryption_version == 2
    assert set(configured.keys or ()) == {"2"}  # older versions are archived, as in Vault
    message = "ciphertext or signature version is disallowed by policy (too old)"
    assert await failure(tv, "decrypt/k", {"ciphertext": v1}) == message
    assert await failure(tv, "rewrap/k", {"ciphertext": v1}) == message
    # Lowering it again brings the version back.
    await transit.configure_key("k", min_decryption_version=1)
    assert await transit.decrypt("k", v1) == b"x"


async def test_min_encryption_version_refuses_older_versions(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("k")
    await transit.rotate_key("k")
    await transit.configure_key("k", min_encryption_version=2)
    body = {"plaintext": b64(b"x"), "key_version": 1}
    assert await failure(tv, "encrypt/k", body) == (
        "requested version for encryption is less than the minimum encryption key version"
    )
    body["key_version"] = 3
    assert await failure(tv, "encrypt/k", body) == (
        "requested version for encryption is higher than the latest key version"
    )


async def test_no_operation_uses_a_version_below_min_decryption_version(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    """Issue 8.6: `encrypt key_version=1` under min_decryption_version=2 made ciphertext the
    server then refused to decrypt. OpenBao has archived v1 and says "no such key version"
    for every operation that names it (answers recorded from `bao server -dev` 2.7.2)."""
    await transit.create_key("k")
    await transit.create_key("ed", key_type="ed25519")
    await transit.create_key("d", derived=True)
    for name in ("k", "ed", "d"):
        await transit.rotate_key(name)
        await transit.rotate_key(name)
        await transit.configure_key(name, min_decryption_version=2)
    v2 = await transit.encrypt("k", b"x", key_version=2)
    gone = "no such key version"
    context = b64(b"ctx")
    for path, body in (
        ("encrypt/k", {"plaintext": b64(b"x"), "key_version": 1}),
        ("encrypt/d", {"plaintext": b64(b"x"), "context": context, "key_version": 1}),
        ("rewrap/k", {"ciphertext": v2, "key_version": 1}),
        ("hmac/k", {"input": b64(b"m"), "key_version": 1}),
        ("hmac/ed", {"input": b64(b"m"), "key_version": 1}),
        ("hmac/k", {"input": "", "key_version": 1, "batch_input": [{"input": ""}]}),
        ("datakey/plaintext/k", {"key_version": 1}),
        ("datakey/wrapped/d", {"context": context, "key_version": 1}),
        ("sign/ed", {"input": b64(b"m"), "key_version": 1}),
    ):
        assert await failure(tv, path, body) == gone, path
    with pytest.raises(InvalidRequestError, match=f"^{gone}$"):
        await transit.encrypt("k", b"x", key_version=1)
    with pytest.raises(InvalidRequestError, match=f"^{gone}$"):
        await transit.rewrap("k", v2, key_version=1)
    # The neighbours keep OpenBao's answers: 0 is the latest, 2 works, 4 is too new.
    assert (await transit.encrypt("k", b"x", key_version=2)).startswith("vault:v2:")
    assert (await transit.encrypt("k", b"x", key_version=0)).startswith("vault:v3:")
    assert await failure(tv, "encrypt/k", {"plaintext": "", "key_version": 4}) == (
        "requested version for encryption is higher than the latest key version"
    )
    assert await failure(tv, "hmac/k", {"input": "", "key_version": 4}) == (
        "key version does not exist; latest key version is 3"
    )
    # Batches fail the item, not the request: encrypt 400, rewrap and sign 200.
    item = {"plaintext": "", "key_version": 1, "reference": "old"}
    response = await call(tv, "encrypt/k", {"batch_input": [item, {"plaintext": ""}]})
    results = (response.data or {})["batch_results"]
    assert response.status == 400
    assert results[0] == {"error": gone, "reference": "old"}
    assert results[1]["key_version"] == 3
    response = await call(tv, "rewrap/k", {"batch_input": [{"ciphertext": v2, "key_version": 1}]})
    assert response.status == 200
    assert (response.data or {})["batch_results"] == [{"error": gone, "reference": ""}]
    response = await call(
        tv, "sign/ed", {"key_version": 1, "batch_input": [{"input": "", "reference": "r"}]}
    )
    assert response.status == 200
    assert (response.data or {})["batch_results"] == [
        {"key_version": 0, "error": gone, "reference": "r"}
    ]
    # Lowering the minimum brings the version back, as OpenBao restores it from its archive.
    await transit.configure_key("k", min_decryption_version=1)
    old = await transit.encrypt("k", b"x", key_version=1)
    assert await transit.decrypt("k", old) == b"x"


async def test_key_config_checks(tv: tenantvault.TenantVault, transit: tenantvault.Transit) -> None:
    await transit.create_key("k")
    await transit.rotate_key("k")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"min_decryption_version": 5}, "cannot set min decryption version of 5, latest key"),
        ({"min_encryption_version": 3}, "cannot set min encryption version of 3, latest key"),
        ({"min_encryption_version": -1}, "min encryption version cannot be negative"),
        ({"min_decryption_version": -1}, "min decryption version cannot be negative"),
        ({"auto_rotate_period": "59m"}, "auto rotate period must be 0 to disable or at least"),
        (
            {"min_decryption_version": 2, "min_encryption_version": 1},
            "cannot set min encryption/decryption values",
        ),
    ]
    for body, message in cases:
        assert (await failure(tv, "keys/k/config", body)).startswith(message)
    assert (await transit.read_key("k")).min_decryption_version == 1  # nothing half-applied
    assert await failure(tv, "keys/nope/config", {}) == "no existing key named nope could be found"
    assert await failure(tv, "keys/nope/rotate", {}) == "key not found"
    forced = await call(tv, "keys/k/config", {"min_decryption_version": 0})
    assert forced.warnings is not None
    assert "forcing minimum to 1" in forced.warnings[0]
    period = await transit.configure_key("k", auto_rotate_period="24h")
    assert period.auto_rotate_period == 86400


async def test_due_keys_rotate_on_schedule_and_old_ciphertexts_still_open(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit, clock: FakeClock
) -> None:
    await transit.create_key("daily", auto_rotate_period="24h")
    await transit.create_key("manual")
    old = await transit.encrypt("daily", b"x")
    assert await core_of(tv).transit.rotate_due_keys(clock()) == []
    clock.advance(24 * 3600 + 1)
    assert await core_of(tv).transit.rotate_due_keys(clock()) == [("acme", "daily")]
    assert await core_of(tv).transit.rotate_due_keys(clock()) == []  # once per period
    assert (await transit.read_key("daily")).latest_version == 2
    assert (await transit.read_key("manual")).latest_version == 1
    assert await transit.decrypt("daily", old) == b"x"
    assert (await transit.encrypt("daily", b"y")).startswith("vault:v2:")


# -- encrypt with upsert -------------------------------------------------------------------


async def _token(tv: tenantvault.TenantVault, capabilities: str) -> tenantvault.TenantVault:
    acme = tv.tenant("acme")
    await acme.policies.write(
        "p", f'path "transit/encrypt/*" {{ capabilities = [{capabilities}] }}'
    )
    token = await acme.tokens.create(policies=["p"])
    return tv.with_token(token.token)


async def test_upsert_needs_create_capability(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    updater = await _token(tv, '"update"')
    with pytest.raises(PermissionDeniedError):
        await updater.tenant("acme").transit.encrypt("fresh", b"x")
    await tv.tenant("acme").transit.create_key("existing")
    assert (await updater.tenant("acme").transit.encrypt("existing", b"x")).startswith("vault:")


async def test_upsert_with_create_capability_creates_the_key(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    creator = await _token(tv, '"create"')
    await creator.tenant("acme").transit.encrypt("fresh", b"x")
    assert (await tv.tenant("acme").transit.read_key("fresh")).derived is False
    # With only `create`, encrypting under the key that now exists needs `update`.
    with pytest.raises(PermissionDeniedError):
        await creator.tenant("acme").transit.encrypt("fresh", b"y")
    await creator.tenant("acme").transit.encrypt("derived", b"x", context=b"ctx")
    info = await tv.tenant("acme").transit.read_key("derived")
    assert info.derived is True
    assert info.kdf == "hkdf_sha256"


async def test_upsert_options(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    body = {"plaintext": b64(b"x"), "type": "chacha20-poly1305"}
    await call(tv, "encrypt/cc", body)
    assert (await tv.tenant("acme").transit.read_key("cc")).type == "chacha20-poly1305"
    assert await failure(tv, "encrypt/e", {**body, "type": "ed25519"}) == (
        "unknown key type ed25519"
    )
    assert await failure(tv, "encrypt/c", {**body, "convergent_encryption": True}) == (
        "convergent encryption requires derivation to be enabled, so context is required"
    )
    assert await tv.tenant("acme").transit.list_keys() == ["cc"]


async def test_encrypt_needs_an_encryption_key_type(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("ed", key_type="ed25519")
    assert await failure(tv, "encrypt/ed", {"plaintext": b64(b"x")}) == (
        "message encryption not supported for key type ed25519"
    )
    assert await failure(tv, "decrypt/ed", {"ciphertext": ZEROS}) == (
        "message decryption not supported for key type ed25519"
    )


# -- batches -------------------------------------------------------------------------------


async def test_batch_encrypt_keeps_order_and_references(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    items = [{"plaintext": b64(f"p{i}".encode()), "reference": f"r{i}"} for i in range(5)]
    response = await call(tv, "encrypt/k", {"batch_input": items})
    assert response.status == 200
    results = (response.data or {})["batch_results"]
    assert [r["reference"] for r in results] == [f"r{i}" for i in range(5)]
    assert all(set(r) == {"ciphertext", "key_version", "reference"} for r in results)
    back = await call(
        tv,
        "decrypt/k",
        {
            "batch_input": [
                {"ciphertext": r["ciphertext"], "reference": r["reference"]} for r in results
            ]
        },
    )
    assert (back.data or {})["batch_results"] == [
        {"plaintext": b64(f"p{i}".encode()), "reference": f"r{i}"} for i in range(5)
    ]


async def test_a_failed_batch_item_makes_it_a_400_with_the_whole_envelope(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("k")
    items = [{"plaintext": b64(b"ok"), "reference": "a"}, {"plaintext": "!!", "reference": "b"}]
    response = await call(tv, "encrypt/k", {"batch_input": items})
    assert response.status == 400
    results = (response.data or {})["batch_results"]
    assert set(results[0]) == {"ciphertext", "key_version", "reference"}
    assert results[1] == {"error": "illegal base64 data at input byte 0", "reference": "b"}
    partial = await call(
        tv, "encrypt/k", {"batch_input": items, "partial_failure_response_code": 207}
    )
    assert partial.status == 207
    only_failures = await call(
        tv,
        "encrypt/k",
        {"batch_input": [items[1]], "partial_failure_response_code": 207},
    )
    assert only_failures.status == 400
    odd = await call(tv, "encrypt/k", {"batch_input": items, "partial_failure_response_code": 42})
    assert odd.status == 400
    assert odd.warnings is not None


async def test_batch_decrypt_reports_failures_per_item(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    good = await transit.encrypt("k", b"x")
    response = await call(
        tv,
        "decrypt/k",
        {"batch_input": [{"ciphertext": good}, {"ciphertext": "garbage"}, {"ciphertext": ""}]},
    )
    assert response.status == 400
    assert (response.data or {})["batch_results"] == [
        {"plaintext": b64(b"x"), "reference": ""},
        {"plaintext": "", "error": "invalid ciphertext: no prefix", "reference": ""},
        {"plaintext": "", "error": "missing ciphertext to decrypt", "reference": ""},
    ]
    results = await transit.decrypt_batch("k", [good, ZEROS])
    assert results[0].value == b"x"
    assert results[0].ok
    assert results[1].error == "cipher: message authentication failed"


async def test_batch_rewrap_answers_200_with_item_errors(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    good = await transit.encrypt("k", b"x")
    await transit.rotate_key("k")
    response = await call(
        tv,
        "rewrap/k",
        {"batch_input": [{"ciphertext": good, "reference": "g"}, {"ciphertext": "x"}]},
    )
    assert response.status == 200  # as OpenBao does for rewrap
    results = (response.data or {})["batch_results"]
    assert results[0]["key_version"] == 2
    assert results[0]["reference"] == "g"
    assert results[1] == {"error": "invalid ciphertext: no prefix", "reference": ""}


async def test_batch_shape_checks(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("k")
    assert await failure(tv, "encrypt/k", {"batch_input": []}) == "missing batch input to process"
    mixed = {"batch_input": [{"plaintext": "", "context": b64(b"c")}, {"plaintext": ""}]}
    assert await failure(tv, "encrypt/k", mixed) == (
        "context should be set either in all the request blocks or in none"
    )
    assert (
        await failure(
            tv,
            "decrypt/k",
            {
                **mixed,
                "batch_input": [{"ciphertext": ZEROS, "context": b64(b"c")}, {"ciphertext": ZEROS}],
            },
        )
        == "context should be set either in all the request blocks or in none"
    )
    for bad in ("x", [1], [{"plaintext": 5}], [{"reference": "r"}]):
        message = await failure(tv, "encrypt/k", {"batch_input": bad})
        assert message.startswith("failed to parse batch input")


# -- derived keys and convergent encryption ------------------------------------------------


async def test_derived_keys_need_the_same_context(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("d", derived=True)
    ciphertext = await transit.encrypt("d", b"x", context=b"tenant-1")
    assert await transit.decrypt("d", ciphertext, context=b"tenant-1") == b"x"
    with pytest.raises(DecryptionError, match="message authentication failed"):
        await transit.decrypt("d", ciphertext, context=b"tenant-2")
    missing = await failure(tv, "encrypt/d", {"plaintext": b64(b"x")})
    assert missing.startswith("missing 'context' for key derivation")
    assert (await failure(tv, "decrypt/d", {"ciphertext": ciphertext})).startswith(
        "missing 'context' for key derivation"
    )
    assert await failure(tv, "decrypt/d", {"ciphertext": ciphertext, "context": "!"}) == (
        "illegal base64 data at input byte 0"
    )


async def test_convergent_encryption_is_deterministic_per_context(
    transit: tenantvault.Transit,
) -> None:
    info = await transit.create_key("c", derived=True, convergent_encryption=True)
    assert info.convergent_encryption is True
    assert info.convergent_encryption_version == -1
    first = await transit.encrypt("c", b"alice@example.com", context=b"t1")
    assert await transit.encrypt("c", b"alice@example.com", context=b"t1") == first
    assert await transit.encrypt("c", b"bob@example.com", context=b"t1") != first
    assert await transit.encrypt("c", b"alice@example.com", context=b"t2") != first
    assert await transit.decrypt("c", first, context=b"t1") == b"alice@example.com"


async def test_batches_with_derived_keys(transit: tenantvault.Transit) -> None:
    await transit.create_key("d", derived=True)
    contexts = [b"a", b"b", b"c"]
    encrypted = await transit.encrypt_batch("d", [b"1", b"2", b"3"], contexts=contexts)
    ciphertexts = [str(r.value) for r in encrypted]
    decrypted = await transit.decrypt_batch("d", ciphertexts, contexts=contexts)
    assert [r.value for r in decrypted] == [b"1", b"2", b"3"]
    swapped = await transit.decrypt_batch("d", ciphertexts, contexts=contexts[::-1])
    assert [r.ok for r in swapped] == [False, True, False]


# -- data keys, random bytes, hashes -------------------------------------------------------


async def test_datakeys(tv: tenantvault.TenantVault, transit: tenantvault.Transit) -> None:
    await transit.create_key("k")
    for bits in (128, 256, 512):
        key = await transit.datakey("k", bits=bits)
        assert key.plaintext is not None
        assert len(key.plaintext) == bits // 8
        assert await transit.decrypt("k", key.ciphertext) == key.plaintext
    wrapped = await call(tv, "datakey/wrapped/k", {})
    assert set(wrapped.data or {}) == {"ciphertext", "key_version"}
    assert await failure(tv, "datakey/other/k", {}) == (
        "Invalid path, must be 'plaintext' or 'wrapped'"
    )
    assert await failure(tv, "datakey/plaintext/k", {"bits": 100}) == "invalid bit length"
    assert await failure(tv, "datakey/plaintext/nope", {}) == "encryption key not found"


async def test_random_bytes(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    default = await call(tv, "random", {})
    assert len(base64.b64decode((default.data or {})["random_bytes"])) == 32
    hex_bytes = await call(tv, "random/8", {"format": "hex"})
    assert re.fullmatch(r"[0-9a-f]{16}", (hex_bytes.data or {})["random_bytes"])
    sourced = await call(tv, "random/platform/4", {})
    assert len(base64.b64decode((sourced.data or {})["random_bytes"])) == 4
    assert await failure(tv, "random/0", {}) == "'bytes' cannot be less than 1"
    assert await failure(tv, "random", {"bytes": 128 * 1024 + 1}) == (
        "'bytes' should be less than 131072"
    )
    assert await failure(tv, "random", {"format": "b32"}) == (
        'unsupported encoding format; must be "hex" or "base64"'
    )
    assert len(await tv.tenant("acme").transit.random(5)) == 5


async def test_hash(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    response = await call(tv, "hash", {"input": b64(b"hello")})
    assert response.data == {"sum": hashlib.sha256(b"hello").hexdigest()}
    wide = await call(tv, "hash/sha2-512", {"input": b64(b"hello"), "format": "base64"})
    assert wide.data == {"sum": b64(hashlib.sha512(b"hello").digest())}
    assert await failure(tv, "hash", {"input": b64(b"x"), "algorithm": "md5"}) == (
        "unsupported algorithm"
    )


# -- HMAC ----------------------------------------------------------------------------------


async def test_hmac_and_verify(tv: tenantvault.TenantVault, transit: tenantvault.Transit) -> None:
    await transit.create_key("k")
    for algorithm, size in (("sha2-224", 28), ("sha2-256", 32), ("sha2-384", 48), ("sha2-512", 64)):
        mac = await transit.hmac("k", b"message", algorithm=algorithm)
        assert mac.startswith("vault:v1:")
        assert len(base64.b64decode(mac.split(":")[2])) == size
        assert await transit.verify_hmac("k", b"message", mac, algorithm=algorithm)
        assert not await transit.verify_hmac("k", b"massage", mac, algorithm=algorithm)
    in_url = await call(tv, "hmac/k/sha2-512", {"input": b64(b"message")})
    assert (in_url.data or {})["hmac"] == await transit.hmac("k", b"message", algorithm="sha2-512")
    assert await failure(tv, "hmac/k/md5", {"input": b64(b"x")}) == "unsupported algorithm"
    assert await failure(tv, "hmac/k", {}) == "missing input for HMAC"
    assert await failure(tv, "hmac/k", {"key_version": 7, "input": ""}) == (
        "key version does not exist; latest key version is 1"
    )
    assert await failure(tv, "hmac/nope", {"input": ""}) == "encryption key not found"


async def test_hmac_verify_messages(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("k")
    mac = await transit.hmac("k", b"m")
    await transit.rotate_key("k")
    cases = {
        "xx": "invalid HMAC to verify: no prefix",
        "vault:v1": "invalid HMAC: wrong number of fields",
        "vault:vz:AAAA": "invalid HMAC: version number could not be decoded",
        "vault:v1:!!": "unable to decode verification HMAC as base64: illegal base64 data at "
        "input byte 0",
        "vault:v5:AAAA": "invalid HMAC: version is too new",
    }
    for bad, message in cases.items():
        assert await failure(tv, "verify/k", {"input": b64(b"m"), "hmac": bad}) == message
    await transit.configure_key("k", min_decryption_version=2)
    assert await failure(tv, "verify/k", {"input": b64(b"m"), "hmac": mac}) == (
        "cannot verify HMAC: version is too old (disallowed by policy)"
    )


async def test_hmac_keys(tv: tenantvault.TenantVault, transit: tenantvault.Transit) -> None:
    info = await transit.create_key("h", key_type="hmac")
    assert info.key_size == 32
    assert info.keys is None  # Vault shows no versions of an HMAC key
    big = await transit.create_key("h64", key_type="hmac", key_size=64)
    assert big.key_size == 64
    mac = await transit.hmac("h", b"m")
    assert await transit.verify_hmac("h", b"m", mac)
    assert await failure(tv, "encrypt/h", {"plaintext": ""}) == (
        "message encryption not supported for key type hmac"
    )
    assert await failure(tv, "sign/h", {"input": ""}) == "key type hmac does not support signing"


async def test_hmac_batches(tv: tenantvault.TenantVault, transit: tenantvault.Transit) -> None:
    await transit.create_key("k")
    mac = await transit.hmac("k", b"m")
    response = await call(
        tv, "hmac/k", {"batch_input": [{"input": b64(b"m"), "reference": "r"}, {"input": "!"}]}
    )
    assert response.status == 200
    assert (response.data or {})["batch_results"] == [
        {"hmac": mac, "reference": "r"},
        {
            "error": "unable to decode input as base64: illegal base64 data at input byte 0",
            "reference": "",
        },
    ]
    verified = await call(
        tv,
        "verify/k",
        {"batch_input": [{"input": b64(b"m"), "hmac": mac}, {"input": b64(b"n"), "hmac": mac}]},
    )
    # OpenBao leaves `valid` out when it is false.
    assert (verified.data or {})["batch_results"] == [
        {"valid": True, "reference": ""},
        {"reference": ""},
    ]


# -- signatures ----------------------------------------------------------------------------


async def test_ed25519_sign_and_verify(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit, clock: FakeClock
) -> None:
    info = await transit.create_key("ed", key_type="ed25519")
    assert info.supports_signing is True
    assert info.keys is not None
    entry = info.keys["1"]
    assert entry["name"] == "ed25519"
    assert len(base64.b64decode(entry["public_key"])) == 32
    signature = await transit.sign("ed", b"message")
    assert signature.startswith("vault:v1:")
    assert await transit.sign("ed", b"message") == signature  # Ed25519 is deterministic
    assert await transit.verify("ed", b"message", signature)
    assert not await transit.verify("ed", b"messagE", signature)
    jws = await call(tv, "sign/ed", {"input": b64(b"message"), "marshaling_algorithm": "jws"})
    raw = base64.b64decode(signature.split(":")[2])
    jws_body = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert (jws.data or {})["signature"] == f"vault:v1:{jws_body}"
    checked = await call(
        tv,
        "verify/ed",
        {
            "input": b64(b"message"),
            "signature": (jws.data or {})["signature"],
            "marshaling_algorithm": "jws",
        },
    )
    assert checked.data == {"valid": True}


async def test_signature_errors(tv: tenantvault.TenantVault, transit: tenantvault.Transit) -> None:
    await transit.create_key("ed", key_type="ed25519")
    await transit.create_key("aes")
    body = {"input": b64(b"m")}
    assert await failure(tv, "sign/aes", body) == "key type aes256-gcm96 does not support signing"
    assert await failure(tv, "sign/nope", body) == "signing key not found"
    assert await failure(tv, "sign/ed", {**body, "key_version": 9}) == (
        "requested version for signing is higher than the latest key version"
    )
    assert await failure(tv, "sign/ed/bogus", body) == 'invalid hash algorithm "bogus"'
    assert await failure(tv, "verify/ed", body) == (
        "neither a 'signature' nor an 'hmac' were given to verify"
    )
    assert await failure(tv, "verify/ed", {**body, "signature": "garbage"}) == (
        "invalid signature: no prefix"
    )
    assert await failure(tv, "verify/ed", {**body, "signature": "vault:v3:AAAA"}) == (
        "invalid signature: version is too new"
    )
    assert await failure(tv, "verify/aes", {**body, "signature": "vault:v1:AAAA"}) == (
        "key type aes256-gcm96 does not support verification"
    )
    invalid = await call(tv, "verify/ed", {**body, "signature": "vault:v1:AAAA"})
    assert invalid.data == {"valid": False}


async def test_derived_ed25519_keys_sign_per_context(
    tv: tenantvault.TenantVault, transit: tenantvault.Transit
) -> None:
    await transit.create_key("ded", key_type="ed25519", derived=True)
    info = await transit.read_key("ded")
    assert info.keys is not None
    assert info.keys["1"]["public_key"] == ""
    signed = await call(tv, "sign/ded", {"input": b64(b"m"), "context": b64(b"alice")})
    data = signed.data or {}
    with_context = await call(tv, "keys/ded", {"context": b64(b"alice")}, operation=Operation.READ)
    assert (with_context.data or {})["keys"]["1"]["public_key"] == data["public_key"]
    assert await transit.verify("ded", b"m", data["signature"], context=b"alice")
    assert not await transit.verify("ded", b"m", data["signature"], context=b"bob")
    assert (await failure(tv, "sign/ded", {"input": b64(b"m")})).startswith(
        "error deriving key: missing 'context' for key derivation"
    )


async def test_sign_batches(tv: tenantvault.TenantVault, transit: tenantvault.Transit) -> None:
    await transit.create_key("ed", key_type="ed25519")
    signature = await transit.sign("ed", b"m")
    response = await call(
        tv, "sign/ed", {"batch_input": [{"input": b64(b"m"), "reference": "r"}, {"input": "!"}]}
    )
    assert response.status == 200
    assert (response.data or {})["batch_results"] == [
        {"signature": signature, "key_version": 1, "reference": "r"},
        {
            "key_version": 0,
            "error": "unable to decode input as base64: illegal base64 data at input byte 0",
            "reference": "",
        },
    ]
    verified = await call(
        tv,
        "verify/ed",
        {
            "batch_input": [
                {"input": b64(b"m"), "signature": signature, "reference": "good"},
                {"input": b64(b"x"), "signature": signature},
                {"input": b64(b"m"), "signature": "garbage"},
            ]
        },
    )
    assert verified.status == 200
    assert (verified.data or {})["batch_results"] == [
        {"valid": True, "reference": "good"},
        {"valid": False, "reference": ""},
        {"valid": False, "error": "invalid signature: no prefix", "reference": ""},
    ]
    with pytest.raises(InvalidRequestError, match="missing 'signature'"):
        await call(
            tv,
            "verify/ed",
            {"batch_input": [{"input": b64(b"m"), "signature": signature}, {"input": "x"}]},
        )


# -- the mount -----------------------------------------------------------------------------


async def test_transit_is_listed_among_the_tenants_mounts(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    mounts = await tv.request(Operation.READ, "sys/mounts", namespace="acme")
    assert (mounts.data or {})["transit/"]["type"] == "transit"


async def test_transit_needs_a_tenant(tv: tenantvault.TenantVault) -> None:
    with pytest.raises(NotFoundError):
        await tv.request(Operation.UPDATE, "transit/encrypt/k", {"plaintext": ""})


async def test_acl_paths_and_capabilities(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    acme = tv.tenant("acme")
    ciphertext = await acme.transit.encrypt("k", b"x")
    await acme.policies.write(
        "decrypt-only", 'path "transit/decrypt/k" { capabilities = ["update"] }'
    )
    token = await acme.tokens.create(policies=["decrypt-only"])
    scoped = tv.with_token(token.token).tenant("acme").transit
    assert await scoped.decrypt("k", ciphertext) == b"x"
    for denied in (
        scoped.encrypt("k", b"x"),
        scoped.read_key("k"),
        scoped.list_keys(),
        scoped.rotate_key("k"),
        scoped.decrypt("other", ciphertext),
    ):
        with pytest.raises(PermissionDeniedError):
            await denied


async def test_tenant_deletion_destroys_its_keys(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    ciphertext = await tv.tenant("acme").transit.encrypt("k", b"x")
    await tv.delete_tenant("acme")
    await tv.create_tenant("acme")
    assert await tv.tenant("acme").transit.list_keys() == []
    await tv.tenant("acme").transit.create_key("k")
    with pytest.raises(DecryptionError, match="message authentication failed"):
        await tv.tenant("acme").transit.decrypt("k", ciphertext)
