"""`tenantvault transit …` against a real server: keys, encrypt/decrypt round trip, isolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import CLI, assert_clean, canary

pytestmark = pytest.mark.usefixtures("tenant")


def test_key_lifecycle(cli: CLI) -> None:
    assert cli("transit", "key", "create", "pii").code == 0
    assert cli("transit", "key", "list").out.split()[-1] == "pii"
    assert "Rotated key pii to version 2" in cli("transit", "key", "rotate", "pii").out
    read = json.loads(cli("transit", "key", "read", "-format=json", "pii").out)
    assert read["data"]["latest_version"] == 2
    refused = cli("transit", "key", "delete", "pii")
    assert refused.code != 0
    assert "deletion is not allowed" in refused.err
    assert cli("transit", "key", "config", "pii", "-deletion-allowed=true").code == 0
    assert cli("transit", "key", "delete", "pii").code == 0


def test_encrypt_then_decrypt_round_trips_bytes(cli: CLI, tmp_path: Path) -> None:
    secret = canary("plain-")
    source = tmp_path / "plain.txt"
    source.write_text(secret)
    cli("transit", "key", "create", "pii")
    encrypted = cli("transit", "encrypt", "-field=ciphertext", "pii", str(source))
    assert encrypted.code == 0, encrypted.err
    ciphertext = encrypted.out.strip()
    assert ciphertext.startswith("vault:v1:")
    assert secret not in ciphertext
    decrypted = cli("transit", "decrypt", "pii", ciphertext)
    assert decrypted.code == 0, decrypted.err
    assert decrypted.out == secret
    from_stdin = cli("transit", "encrypt", "-format=json", "pii", "-", stdin=secret)
    assert json.loads(from_stdin.out)["data"]["key_version"] == 1


def test_tampered_ciphertext_is_refused_without_echo(cli: CLI, tmp_path: Path) -> None:
    cli("transit", "key", "create", "pii")
    source = tmp_path / "p"
    source.write_text(canary())
    ciphertext = cli("transit", "encrypt", "-field=ciphertext", "pii", str(source)).out.strip()
    tampered = ciphertext[:-4] + ("AAAA" if not ciphertext.endswith("AAAA") else "BBBB")
    result = cli("transit", "decrypt", "pii", tampered)
    assert result.code == 1
    assert "Code: 400" in result.err
    assert_clean(result)


def test_datakey_and_random(cli: CLI) -> None:
    cli("transit", "key", "create", "pii")
    key = json.loads(cli("transit", "datakey", "-format=json", "pii", "-bits=128").out)
    assert key["data"]["ciphertext"].startswith("vault:v1:")
    assert len(key["data"]["plaintext"]) == 24  # base64 of 16 bytes
    wrapped = json.loads(cli("transit", "datakey", "-format=json", "-wrapped-only", "pii").out)
    assert "plaintext" not in wrapped["data"]
    random = cli("transit", "random", "-field=random_bytes", "-bytes=16")
    assert random.code == 0
    assert len(random.out.strip()) == 24


def test_another_tenant_cannot_use_the_key(cli: CLI, tmp_path: Path) -> None:
    cli("transit", "key", "create", "pii")
    source = tmp_path / "p"
    source.write_text(canary())
    ciphertext = cli("transit", "encrypt", "-field=ciphertext", "pii", str(source)).out.strip()
    owner = cli.namespace
    other = f"{owner}x"
    assert cli("tenant", "create", other, namespace=None).code == 0
    try:
        result = cli("transit", "decrypt", "pii", ciphertext, namespace=other)
        assert result.code == 1
        assert_clean(result)
    finally:
        cli("tenant", "delete", other, namespace=None)
