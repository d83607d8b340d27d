"""Transit key material at rest: sealed under the tenant's data key, never in any answer."""

from __future__ import annotations

import base64
from pathlib import Path

import tenantvault
from tenantvault.testing import core_of


async def test_key_material_is_not_in_the_database_files(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    async with tenantvault.open(f"sqlite://{directory}") as tv:
        await tv.create_tenant("acme")
        transit = tv.tenant("acme").transit
        await transit.create_key("pii")
        await transit.rotate_key("pii")
        await transit.create_key("ed", key_type="ed25519")
        store = (await core_of(tv).mount_of("acme", "transit/")).storage
        secrets: list[bytes] = []
        for name in ("pii", "ed"):
            keyring = await core_of(tv).transit.load(store, name)
            assert keyring is not None
            for version in keyring.versions.values():
                secrets += [version.key, version.hmac_key]
        record = await store.read("policy/pii")
        assert record is not None  # stored where OpenBao stores it, in the tenant's mount
    stored = b"".join(path.read_bytes() for path in directory.iterdir() if path.is_file())
    assert b"policy/pii" in stored  # the row is there...
    for secret in secrets:  # ...but sealed: no key in raw, hex or base64 form
        for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
            assert form not in stored


async def test_no_answer_carries_key_material() -> None:
    async with tenantvault.open("memory://") as tv:
        await tv.create_tenant("acme")
        transit = tv.tenant("acme").transit
        answers = [
            await transit.create_key("k"),
            await transit.rotate_key("k"),
            await transit.configure_key("k", deletion_allowed=True),
            await transit.read_key("k"),
            await transit.create_key("ed", key_type="ed25519"),
        ]
        store = (await core_of(tv).mount_of("acme", "transit/")).storage
        keyring = await core_of(tv).transit.load(store, "k")
        assert keyring is not None
        text = repr(answers) + repr(keyring)
        for version in keyring.versions.values():
            for secret in (version.key, version.hmac_key):
                assert base64.b64encode(secret).decode() not in text
                assert secret.hex() not in text
