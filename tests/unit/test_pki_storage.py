"""The pki engine's records at rest: a CA's private key is sealed with the mount key (no PEM,
no key bytes in the backend), and the record cannot be moved to another mount and read."""

from __future__ import annotations

import pytest

from tenantvault._core import Core
from tenantvault._exceptions import IntegrityError
from tenantvault._request import Operation, Request
from tenantvault.backends import MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines.pki._store import PkiStore


async def _core() -> Core:
    core = Core(MemoryBackend())
    core.strict_parameters = True
    await core.start()
    await core.initialize_root_token("root")
    return core


async def _call(core: Core, path: str, data: dict[str, object]) -> dict[str, object]:
    response = await core.handle(
        Request(operation=Operation.UPDATE, path=path, data=data, token="root")
    )
    return response.data or {}


async def test_ca_key_is_sealed_at_rest() -> None:
    core = await _core()
    for path in ("pki", "other"):
        await _call(core, f"sys/mounts/{path}", {"type": "pki"})
    exported = await _call(
        core, "pki/root/generate/exported", {"common_name": "Root", "key_type": "ec"}
    )
    key_line = str(exported["private_key"]).splitlines()[1]
    table = await core.router.table(SYSTEM_TENANT, "")
    storage = table.entries["pki/"].storage
    names = await core.backend.list(SYSTEM_TENANT, storage, "keys/")
    assert len(names) == 1
    raw = await core.backend.read(SYSTEM_TENANT, storage, "keys/" + names[0])
    assert raw is not None
    assert b"PRIVATE KEY" not in raw.value
    assert key_line.encode() not in raw.value
    # Through the mount's own storage it opens; copied under another mount it does not.
    own = PkiStore(table.mounts["pki/"].storage)
    record = await own.key(names[0])
    assert record is not None
    assert "PRIVATE KEY" in record["private_key"]
    other = table.entries["other/"].storage
    await core.backend.write(
        SYSTEM_TENANT, other, "keys/" + names[0], raw.value, expected_revision=None
    )
    with pytest.raises(IntegrityError):
        await PkiStore(table.mounts["other/"].storage).key(names[0])
