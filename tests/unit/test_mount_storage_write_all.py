"""`MountStorage.write_all`: all or none on the embedded store, in order elsewhere.

KV v2 writes a version's data and its metadata through it: on the embedded store one
transaction; on a backend without `write_all` one write after the other, stopping at the
first failure, so the metadata (what makes a version visible) is never written without the
data before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenantvault._exceptions import ConflictError
from tenantvault.backends import Backend, MemoryBackend
from tenantvault.backends._sqlite import SqliteBackend
from tenantvault.crypto import AeadKey, random_key
from tenantvault.engines._protocol import MountStorage
from tests.conftest import canary


@pytest.fixture(params=["memory", "sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened: Backend
    if request.param == "memory":
        opened = MemoryBackend()
    else:
        opened = await SqliteBackend.open(tmp_path / "data")
    try:
        await opened.create_tenant("acme")
        yield opened
    finally:
        await opened.aclose()


def _storage(backend: Backend) -> MountStorage:
    return MountStorage(
        backend,
        tenant="acme",
        storage_mount="m-1",
        key=AeadKey(random_key()),
        binding=("incarnation", "mount-uuid"),
    )


async def test_every_write_lands_sealed_with_its_revision(backend: Backend) -> None:
    storage = _storage(backend)
    secret = canary("write-all-").encode()
    revisions = await storage.write_all([("data/a", secret, 0), ("meta/a", b"meta", 0)])
    assert revisions == sorted(revisions)
    assert len(set(revisions)) == 2
    data = await storage.read("data/a")
    assert data is not None
    assert (data.value, data.revision) == (secret, revisions[0])
    # Sealed under the mount key on its way to the backend, as `write` seals.
    raw = await backend.read("acme", "m-1", "data/a")
    assert raw is not None
    assert secret not in raw.value


async def test_a_failed_check_stops_the_writes_after_it(backend: Backend) -> None:
    storage = _storage(backend)
    meta = await storage.write("meta/a", b"m0", expected_revision=0)
    with pytest.raises(ConflictError):
        await storage.write_all([("meta/a", b"m1", meta + 100), ("data/b", b"d", 0)])
    assert await storage.read("data/b") is None
    found = await storage.read("meta/a")
    assert found is not None
    assert found.value == b"m0"


async def test_the_embedded_store_writes_all_or_none(tmp_path: Path) -> None:
    async with await SqliteBackend.open(tmp_path / "data") as backend:
        await backend.create_tenant("acme")
        storage = _storage(backend)
        meta = await storage.write("meta/a", b"m0", expected_revision=0)
        with pytest.raises(ConflictError):
            await storage.write_all([("data/a", b"d", 0), ("meta/a", b"m1", meta + 100)])
        # The data before the failed check was not kept either.
        assert await storage.read("data/a") is None
