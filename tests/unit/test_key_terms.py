"""Key terms on the embedded store: `sys/rotate`'s new term wraps new tenant keys while old
ones still read; the re-wrap moves every tenant to the newest term; after the retention the
old terms are destroyed and the key file replaced, so a copy of the data directory taken
before the rotation does not open with the current key material (the key file) any more."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tenantvault._exceptions import ConfigurationError
from tenantvault.backends._sqlite import MASTER_KEY_FILENAME, SqliteBackend
from tenantvault.services._rewrap import run_rewrap


async def _write(backend: SqliteBackend, tenant: str, value: bytes) -> None:
    await backend.create_tenant(tenant)
    await backend.write(tenant, "secret", "k", value, expected_revision=0)


async def _read(backend: SqliteBackend, tenant: str) -> bytes:
    record = await backend.read(tenant, "secret", "k")
    assert record is not None
    return record.value


async def test_rotation_rewrap_and_retention_make_an_old_copy_unopenable(tmp_path: Path) -> None:
    live, copy = tmp_path / "live", tmp_path / "copy"
    backend = await SqliteBackend.open(live)
    await _write(backend, "acme", b"before the rotation")
    first = await backend.key_status()
    assert (first["term"], first["encryptions"]) == (1, 2)  # acme and the system tenant
    await backend.aclose()
    shutil.copytree(live, copy)  # a backup, taken before the rotation
    (copy / MASTER_KEY_FILENAME).unlink()  # key material is not part of a data backup
    old_key_file = (live / MASTER_KEY_FILENAME).read_bytes()

    backend = await SqliteBackend.open(live)
    try:
        assert await backend.rotate_key() == 2
        status = await backend.key_status()
        assert (status["term"], status["encryptions"]) == (2, 0)
        assert status["install_time"] > first["install_time"]
        # New writes use the new term; data from before still reads.
        await _write(backend, "beta", b"after the rotation")
        assert (await backend.key_status())["encryptions"] == 1
        assert await _read(backend, "acme") == b"before the rotation"

        # Within the retention: tenants move to the new term, the old term stays.
        report = await backend.rewrap_keys(retention_seconds=3600)
        assert (report.rewrapped, report.destroyed_terms) == (2, ())
        assert (await backend.key_status())["encryptions"] == 3
        assert (live / MASTER_KEY_FILENAME).read_bytes() == old_key_file

        # After the retention: the old term is destroyed and the key file replaced.
        report = await backend.rewrap_keys(retention_seconds=0)
        assert (report.rewrapped, report.destroyed_terms) == (0, (1,))
        assert (live / MASTER_KEY_FILENAME).read_bytes() != old_key_file
        assert not (live / (MASTER_KEY_FILENAME + ".next")).exists()
        assert await _read(backend, "acme") == b"before the rotation"
    finally:
        await backend.aclose()

    # The live store reopens with its current key file; the old copy does not.
    reopened = await SqliteBackend.open(live)
    try:
        assert await _read(reopened, "beta") == b"after the rotation"
        assert (await reopened.key_status())["term"] == 2
    finally:
        await reopened.aclose()
    with pytest.raises(ConfigurationError, match="master key does not match"):
        await SqliteBackend.open(copy, master_key_file=live / MASTER_KEY_FILENAME)
    # With its own, old key file the copy still opens: the retention is the restore window.
    (copy / MASTER_KEY_FILENAME).write_bytes(old_key_file)
    (copy / MASTER_KEY_FILENAME).chmod(0o600)
    restored = await SqliteBackend.open(copy)
    try:
        assert await _read(restored, "acme") == b"before the rotation"
    finally:
        await restored.aclose()


async def test_a_crash_between_database_and_key_file_is_recovered(tmp_path: Path) -> None:
    """The `.next` key file a crash left behind is adopted when the database was committed
    under it, and discarded when it was not."""
    data = tmp_path / "data"
    backend = await SqliteBackend.open(data)
    await _write(backend, "acme", b"v")
    await backend.rotate_key()
    await backend.rewrap_keys(retention_seconds=3600)
    await backend.aclose()
    key_file = data / MASTER_KEY_FILENAME
    current = key_file.read_bytes()
    # Not committed: a stray `.next` holding some other key is discarded.
    stray = data / (MASTER_KEY_FILENAME + ".next")
    stray.write_bytes(b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    stray.chmod(0o600)
    backend = await SqliteBackend.open(data)
    assert await _read(backend, "acme") == b"v"
    await backend.aclose()
    assert not stray.exists()
    assert key_file.read_bytes() == current
    # Committed: the database is under the `.next` key; the old file is replaced by it.
    backend = await SqliteBackend.open(data)
    await backend.rewrap_keys(retention_seconds=0)
    await backend.aclose()
    newest = key_file.read_bytes()
    key_file.rename(stray)
    key_file.write_bytes(current)
    key_file.chmod(0o600)
    backend = await SqliteBackend.open(data)
    assert await _read(backend, "acme") == b"v"
    await backend.aclose()
    assert key_file.read_bytes() == newest
    assert not stray.exists()


async def test_a_supplied_master_key_is_never_rewritten(tmp_path: Path) -> None:
    """An operator's key (variable or file) stays as given; only the terms rotate."""
    key = bytes(range(32))
    backend = await SqliteBackend.open(tmp_path / "data", master_key=key)
    try:
        await _write(backend, "acme", b"v")
        await backend.rotate_key()
        report = await backend.rewrap_keys(retention_seconds=0)
        assert report.destroyed_terms == (1,)
        assert not (tmp_path / "data" / MASTER_KEY_FILENAME).exists()
    finally:
        await backend.aclose()
    reopened = await SqliteBackend.open(tmp_path / "data", master_key=key)
    assert await _read(reopened, "acme") == b"v"
    await reopened.aclose()


async def test_the_rewrap_service_runs_until_cancelled(tmp_path: Path) -> None:
    backend = await SqliteBackend.open(tmp_path / "data")
    passes = 0
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        nonlocal passes
        passes += 1
        if passes == 2:
            stop.set()
        await asyncio.sleep(0)

    try:
        await _write(backend, "acme", b"v")
        await backend.rotate_key()
        task = asyncio.create_task(run_rewrap(backend, retention_seconds=0, sleep=sleep))
        await stop.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        status = await backend.key_status()
        assert (status["term"], status["encryptions"]) == (2, 2)
    finally:
        await backend.aclose()
