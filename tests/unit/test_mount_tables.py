"""Mount tables at rest: stores written before mount tables keep their data, every new mount's
records are sealed under the mount's own key, and disabling a mount destroys them."""

from __future__ import annotations

from pathlib import Path

import pytest

import tenantvault
from tenantvault import IntegrityError
from tenantvault._clock import system_clock
from tenantvault._request import Operation
from tenantvault._router import MountEntry
from tenantvault.backends import Backend, MemoryBackend
from tenantvault.crypto import Keyring, KeyType
from tenantvault.engines._protocol import MountStorage
from tenantvault.engines.kv import KVEngine
from tenantvault.engines.transit import TransitEngine
from tenantvault.testing import core_of
from tests.conftest import canary


def _legacy(backend: Backend, tenant: str, mount: str) -> MountStorage:
    """The records of a fixed-layout mount, exactly where and how the code before mount
    tables wrote them: storage mount `secret` / `transit` of the tenant, no mount key."""
    return MountStorage(
        backend,
        tenant=tenant,
        storage_mount=mount,
        key=None,
        binding=("", ""),
    )


async def test_a_store_written_before_mount_tables_keeps_its_data(tmp_path: Path) -> None:
    secret = canary("old-")
    url = f"sqlite://{tmp_path / 'data'}"
    async with tenantvault.open(url) as tv:
        core = core_of(tv)
        await tv.create_tenant("acme")
        # Make it look like an old store: no mount table, records in the fixed layout.
        await core.backend.delete("acme", "sys", "mounts")
        kv_store = _legacy(core.backend, "acme", "secret")
        await KVEngine(clock=system_clock).import_version(kv_store, "app/db", {"pw": secret})
        keyring = Keyring.generate("pii", KeyType.AES256_GCM96, now_ns=system_clock())
        transit_store = _legacy(core.backend, "acme", "transit")
        await TransitEngine(clock=system_clock).store_new(transit_store, keyring)
    async with tenantvault.open(url) as tv:
        acme = tv.tenant("acme")
        assert (await acme.kv.get("app/db")).data == {"pw": secret}
        ciphertext = await acme.transit.encrypt("pii", b"hello")
        assert await acme.transit.decrypt("pii", ciphertext) == b"hello"
        mounts = (await tv.request(Operation.READ, "sys/mounts", namespace="acme")).data or {}
        assert mounts["secret/"]["options"] == {"version": "2"}
        assert mounts["transit/"]["type"] == "transit"
        # Changing the table persists the fixed layout with it: the data stays readable.
        await tv.request(Operation.UPDATE, "sys/mounts/more", {"type": "kv"}, namespace="acme")
    async with tenantvault.open(url) as tv:
        assert (await tv.tenant("acme").kv.get("app/db")).data == {"pw": secret}


async def test_new_mount_records_are_sealed_under_the_mount_key() -> None:
    secret = canary("sealed-")
    async with tenantvault.open("memory://") as tv:
        core = core_of(tv)
        backend = core.backend
        assert isinstance(backend, MemoryBackend)
        await tv.create_tenant("acme")
        await tv.tenant("acme").kv.put("x", {"v": secret})
        mount = await core.mount_of("acme", "secret/")
        storage_mount = mount.storage.identity[1]
        assert storage_mount.startswith("mount/")
        keys = await backend.list("acme", storage_mount, "data/")
        raw = await backend.read("acme", storage_mount, f"data/{keys[0]}")
        assert raw is not None
        assert secret.encode() not in raw.value
        # The same bytes under another key or another mount do not open.
        await tv.request(Operation.UPDATE, "sys/mounts/other", {"type": "kv-v2"}, namespace="acme")
        await tv.tenant("acme").kv_at("other").put("x", {"v": "y"})
        other = (await core.mount_of("acme", "other/")).storage
        other_keys = await backend.list("acme", other.identity[1], "data/")
        await backend.write(
            "acme", other.identity[1], f"data/{other_keys[0]}", raw.value, expected_revision=None
        )
        with pytest.raises(IntegrityError):
            await tv.tenant("acme").kv_at("other").get("x")


async def test_disable_deletes_the_key_and_the_records() -> None:
    async with tenantvault.open("memory://") as tv:
        core = core_of(tv)
        await tv.create_tenant("acme")
        await tv.request(Operation.UPDATE, "sys/mounts/gone", {"type": "kv-v2"}, namespace="acme")
        await tv.tenant("acme").kv_at("gone").put("a/b", {"v": 1})
        storage_mount = (await core.mount_of("acme", "gone/")).storage.identity[1]
        assert await core.backend.list("acme", storage_mount, "") != []
        await tv.request(Operation.DELETE, "sys/mounts/gone", namespace="acme")
        assert await core.backend.list("acme", storage_mount, "") == []
        with pytest.raises(tenantvault.NotFoundError):
            await core.mount_of("acme", "gone/")


@pytest.mark.parametrize("junk", ["\n", " ", "!", "=="])
def test_a_mount_key_edited_at_rest_fails_closed(junk: str) -> None:
    """A lenient decoder would skip the junk and unseal with another key; the table is refused."""
    entry = MountEntry(
        path="secret/", type="kv", uuid="u", accessor="a", storage="s", key=bytes(range(32))
    )
    record = entry.to_record()
    assert MountEntry.from_record(record) == entry
    with pytest.raises(IntegrityError, match="stored mount table is not valid"):
        MountEntry.from_record({**record, "key": record["key"] + junk})
