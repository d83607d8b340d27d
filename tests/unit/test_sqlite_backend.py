"""The embedded SQLite backend: key handling, encryption at rest, tamper evidence, CAS and list."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tenantvault._exceptions import (
    BackendError,
    BackendUnavailableError,
    ClosedError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidPathError,
    NotFoundError,
)
from tenantvault.backends import _sqlite
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.backends._sqlite import DB_FILENAME, MASTER_KEY_FILENAME, SqliteBackend

CANARY = b"CANARY-plaintext-must-never-touch-disk-7f3a9c"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def backend(data_dir: Path) -> AsyncIterator[SqliteBackend]:
    opened = await SqliteBackend.open(data_dir)
    try:
        yield opened
    finally:
        await opened.aclose()


@contextlib.contextmanager
def raw_db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The database opened with the stdlib, as an attacker with file access would."""
    with contextlib.closing(sqlite3.connect(data_dir / DB_FILENAME)) as conn:
        with conn:  # commits on success
            yield conn


def store_bytes(data_dir: Path) -> bytes:
    """Everything SQLite keeps on disk: the database file and its WAL."""
    parts = []
    for suffix in ("", "-wal"):
        path = data_dir / (DB_FILENAME + suffix)
        if path.exists():
            parts.append(path.read_bytes())
    return b"".join(parts)


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftover_temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def db_digest(data_dir: Path) -> str:
    return hashlib.sha256((data_dir / DB_FILENAME).read_bytes()).hexdigest()


async def make_store(data_dir: Path, **kwargs: object) -> None:
    """A store with one tenant and one record, closed again."""
    backend = await SqliteBackend.open(data_dir, **kwargs)  # type: ignore[arg-type]
    try:
        await backend.create_tenant("acme")
        await backend.write("acme", "secret", "k", b"v", expected_revision=0)
    finally:
        await backend.aclose()


# -- opening and the master key ----------------------------------------------------------------


async def test_first_open_creates_a_0600_key_file_in_a_0700_data_dir(data_dir: Path) -> None:
    await make_store(data_dir)
    assert file_mode(data_dir) == 0o700
    key_file = data_dir / MASTER_KEY_FILENAME
    assert file_mode(key_file) == 0o600
    lines = key_file.read_bytes().splitlines()
    assert len(lines) == 1
    assert len(base64.b64decode(lines[0], validate=True)) == 32
    assert leftover_temp_files(data_dir) == []


async def test_reopening_with_the_same_key_file_reads_the_data(data_dir: Path) -> None:
    await make_store(data_dir)
    async with await SqliteBackend.open(data_dir) as backend:
        record = await backend.read("acme", "secret", "k")
    assert record is not None
    assert record.value == b"v"
    assert record.revision == 1


async def test_an_explicit_master_key_is_used_and_no_key_file_is_created(data_dir: Path) -> None:
    key = os.urandom(32)
    await make_store(data_dir, master_key=key)
    assert not (data_dir / MASTER_KEY_FILENAME).exists()
    async with await SqliteBackend.open(data_dir, master_key=key) as backend:
        assert await backend.read("acme", "secret", "k") is not None


async def test_a_master_key_file_holds_one_line_of_base64(tmp_path: Path, data_dir: Path) -> None:
    key_file = tmp_path / "supplied.key"
    key_file.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    key_file.chmod(0o600)
    await make_store(data_dir, master_key_file=key_file)
    assert not (data_dir / MASTER_KEY_FILENAME).exists()
    async with await SqliteBackend.open(data_dir, master_key_file=key_file) as backend:
        assert await backend.read("acme", "secret", "k") is not None


async def test_a_missing_master_key_file_is_a_configuration_error(
    tmp_path: Path, data_dir: Path
) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        await SqliteBackend.open(data_dir, master_key_file=tmp_path / "absent.key")


@pytest.mark.parametrize(
    "content",
    [b"", b"not base64 at all!", base64.b64encode(b"x" * 31), base64.b64encode(b"x" * 33)],
)
async def test_a_malformed_master_key_file_is_refused_without_echoing_it(
    tmp_path: Path, data_dir: Path, content: bytes
) -> None:
    key_file = tmp_path / "bad.key"
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    with pytest.raises(ConfigurationError, match="malformed") as caught:
        await SqliteBackend.open(data_dir, master_key_file=key_file)
    if content:
        assert content.decode() not in str(caught.value)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
async def test_a_master_key_of_the_wrong_size_is_refused(data_dir: Path, length: int) -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        await SqliteBackend.open(data_dir, master_key=b"k" * length)


async def test_master_key_and_master_key_file_together_are_refused(
    tmp_path: Path, data_dir: Path
) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        await SqliteBackend.open(
            data_dir, master_key=os.urandom(32), master_key_file=tmp_path / "k"
        )


async def test_a_wrong_master_key_is_refused_and_leaves_the_store_untouched(
    data_dir: Path,
) -> None:
    await make_store(data_dir)
    before = db_digest(data_dir)
    with pytest.raises(ConfigurationError, match="master key does not match this data directory"):
        await SqliteBackend.open(data_dir, master_key=os.urandom(32))
    assert db_digest(data_dir) == before
    async with await SqliteBackend.open(data_dir) as backend:
        assert await backend.read("acme", "secret", "k") is not None


async def test_a_wrong_master_key_file_is_refused(tmp_path: Path, data_dir: Path) -> None:
    await make_store(data_dir)
    other = tmp_path / "other.key"
    other.write_bytes(base64.b64encode(os.urandom(32)))
    other.chmod(0o600)
    with pytest.raises(ConfigurationError, match="does not match"):
        await SqliteBackend.open(data_dir, master_key_file=other)


async def test_a_replaced_default_key_file_is_refused(data_dir: Path) -> None:
    await make_store(data_dir)
    (data_dir / MASTER_KEY_FILENAME).write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    with pytest.raises(ConfigurationError, match="does not match"):
        await SqliteBackend.open(data_dir)


async def test_a_missing_key_file_over_existing_data_is_refused_not_recreated(
    data_dir: Path,
) -> None:
    await make_store(data_dir)
    key_file = data_dir / MASTER_KEY_FILENAME
    saved = key_file.read_bytes()
    key_file.unlink()
    before = db_digest(data_dir)
    with pytest.raises(ConfigurationError, match="master key file missing for an existing store"):
        await SqliteBackend.open(data_dir)
    assert not key_file.exists()
    assert db_digest(data_dir) == before
    key_file.write_bytes(saved)
    key_file.chmod(0o600)
    async with await SqliteBackend.open(data_dir) as backend:
        record = await backend.read("acme", "secret", "k")
    assert record is not None
    assert record.value == b"v"


async def test_the_backend_ignores_the_environment(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env_key_file = elsewhere / "env.key"
    env_key_file.write_bytes(base64.b64encode(os.urandom(32)))
    monkeypatch.setenv("TENANTVAULT_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("TENANTVAULT_MASTER_KEY_FILE", str(env_key_file))
    monkeypatch.setenv("TENANTVAULT_DATA_DIR", str(elsewhere))
    await make_store(data_dir)
    monkeypatch.delenv("TENANTVAULT_MASTER_KEY")
    monkeypatch.delenv("TENANTVAULT_MASTER_KEY_FILE")
    monkeypatch.delenv("TENANTVAULT_DATA_DIR")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["env.key"]
    async with await SqliteBackend.open(data_dir) as backend:
        assert await backend.read("acme", "secret", "k") is not None
    source = inspect.getsource(_sqlite)
    assert "environ" not in source
    assert "getenv" not in source


async def test_the_database_runs_in_wal_mode(data_dir: Path) -> None:
    await make_store(data_dir)
    with raw_db(data_dir) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- encryption at rest and tamper evidence ----------------------------------------------------


async def test_plaintext_never_reaches_the_database_files(
    backend: SqliteBackend, data_dir: Path
) -> None:
    await backend.create_tenant("acme")
    for i in range(20):
        await backend.write("acme", "secret", f"k{i}", CANARY * (i + 1), expected_revision=None)
    record = await backend.read("acme", "secret", "k3")
    assert record is not None
    assert record.value == CANARY * 4
    assert CANARY not in store_bytes(data_dir)
    await backend.aclose()
    assert CANARY not in store_bytes(data_dir)


def _copy_value(data_dir: Path, source: tuple[str, str, str], target: tuple[str, str, str]) -> None:
    with raw_db(data_dir) as conn:
        (value,) = conn.execute(
            "SELECT value FROM records WHERE tenant = ? AND mount = ? AND key = ?", source
        ).fetchone()
        updated = conn.execute(
            "UPDATE records SET value = ? WHERE tenant = ? AND mount = ? AND key = ?",
            (value, *target),
        )
        assert updated.rowcount == 1


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (("acme", "secret", "a"), ("globex", "secret", "a")),  # another tenant, same place
        (("acme", "secret", "a"), ("acme", "secret", "b")),  # another key, same tenant
        (("acme", "secret", "a"), ("acme", "other", "a")),  # another mount, same key
        (("acme", "secret", "data/x/1"), ("acme", "secret", "data/x/2")),  # another version
    ],
    ids=["cross-tenant", "cross-key", "cross-mount", "cross-version"],
)
async def test_a_value_moved_to_another_row_fails_to_open(
    data_dir: Path, source: tuple[str, str, str], target: tuple[str, str, str]
) -> None:
    async with await SqliteBackend.open(data_dir) as backend:
        for tenant in ("acme", "globex"):
            await backend.create_tenant(tenant)
            for mount, key in [("secret", "a"), ("secret", "b"), ("other", "a")]:
                await backend.write(tenant, mount, key, CANARY, expected_revision=0)
            for version in ("1", "2"):
                await backend.write(
                    tenant, "secret", f"data/x/{version}", CANARY, expected_revision=0
                )
    _copy_value(data_dir, source, target)
    async with await SqliteBackend.open(data_dir) as backend:
        with pytest.raises(IntegrityError) as caught:
            await backend.read(*target)
        assert CANARY.decode() not in str(caught.value)
        record = await backend.read(*source)
        assert record is not None
        assert record.value == CANARY


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
async def test_a_flipped_bit_in_a_stored_value_fails_to_open(data_dir: Path, position: int) -> None:
    await make_store(data_dir)
    with raw_db(data_dir) as conn:
        (value,) = conn.execute("SELECT value FROM records WHERE key = 'k'").fetchone()
        tampered = bytearray(value)
        tampered[position] ^= 0x04
        conn.execute("UPDATE records SET value = ? WHERE key = 'k'", (bytes(tampered),))
    async with await SqliteBackend.open(data_dir) as backend:
        with pytest.raises(IntegrityError):
            await backend.read("acme", "secret", "k")


async def test_a_tampered_wrapped_data_key_fails_to_open(data_dir: Path) -> None:
    await make_store(data_dir)
    with raw_db(data_dir) as conn:
        (wrapped,) = conn.execute(
            "SELECT wrapped_key FROM tenants WHERE tenant = 'acme'"
        ).fetchone()
        tampered = bytearray(wrapped)
        tampered[-3] ^= 0x01
        conn.execute("UPDATE tenants SET wrapped_key = ? WHERE tenant = 'acme'", (bytes(tampered),))
    async with await SqliteBackend.open(data_dir) as backend:
        with pytest.raises(IntegrityError):
            await backend.read("acme", "secret", "k")


async def test_another_tenants_wrapped_key_does_not_open_for_this_tenant(data_dir: Path) -> None:
    async with await SqliteBackend.open(data_dir) as backend:
        for tenant in ("acme", "globex"):
            await backend.create_tenant(tenant)
            await backend.write(tenant, "secret", "k", CANARY, expected_revision=0)
    with raw_db(data_dir) as conn:
        (key_id, wrapped) = conn.execute(
            "SELECT key_id, wrapped_key FROM tenants WHERE tenant = 'acme'"
        ).fetchone()
        (value,) = conn.execute("SELECT value FROM records WHERE tenant = 'acme'").fetchone()
        conn.execute(
            "UPDATE tenants SET key_id = ?, wrapped_key = ? WHERE tenant = 'globex'",
            (key_id, wrapped),
        )
        conn.execute("UPDATE records SET value = ? WHERE tenant = 'globex'", (value,))
    async with await SqliteBackend.open(data_dir) as backend:
        with pytest.raises(IntegrityError):
            await backend.read("globex", "secret", "k")


async def test_deleted_tenant_rows_restored_from_a_copy_cannot_be_decrypted(
    data_dir: Path,
) -> None:
    """Crypto-shred: once the data key is gone, saved ciphertext is useless, even after the
    tenant id is taken again."""
    async with await SqliteBackend.open(data_dir) as backend:
        await backend.create_tenant("acme")
        await backend.write("acme", "secret", "k", CANARY, expected_revision=0)
    with raw_db(data_dir) as conn:
        saved = conn.execute(
            "SELECT tenant, mount, key, revision, value FROM records WHERE tenant = 'acme'"
        ).fetchall()
        (old_wrapped,) = conn.execute(
            "SELECT wrapped_key FROM tenants WHERE tenant = 'acme'"
        ).fetchone()
    assert saved

    async with await SqliteBackend.open(data_dir) as backend:
        await backend.delete_tenant("acme")
        assert old_wrapped not in store_bytes(data_dir)  # shredded on disk, not just unlinked
        await backend.create_tenant("acme")
        assert await backend.read("acme", "secret", "k") is None  # starts empty

    with raw_db(data_dir) as conn:
        conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)", saved)

    async with await SqliteBackend.open(data_dir) as backend:
        with pytest.raises(IntegrityError):
            await backend.read("acme", "secret", "k")
    assert old_wrapped not in store_bytes(data_dir)


# -- tenants -----------------------------------------------------------------------------------


async def test_the_system_tenant_exists_but_is_never_listed(backend: SqliteBackend) -> None:
    assert await backend.has_tenant(SYSTEM_TENANT)
    assert await backend.list_tenants() == []
    await backend.write(SYSTEM_TENANT, "sys", "root", b"r", expected_revision=0)
    record = await backend.read(SYSTEM_TENANT, "sys", "root")
    assert record is not None
    assert record.value == b"r"
    with pytest.raises(ConflictError):
        await backend.create_tenant(SYSTEM_TENANT)
    with pytest.raises(NotFoundError):
        await backend.delete_tenant(SYSTEM_TENANT)
    assert await backend.has_tenant(SYSTEM_TENANT)


async def test_tenants_are_created_listed_sorted_and_deleted(backend: SqliteBackend) -> None:
    for tenant in ("zeta", "acme", "m-1"):
        await backend.create_tenant(tenant)
    assert await backend.list_tenants() == ["acme", "m-1", "zeta"]
    assert await backend.has_tenant("acme")
    await backend.delete_tenant("acme")
    assert not await backend.has_tenant("acme")
    assert await backend.list_tenants() == ["m-1", "zeta"]


async def test_creating_an_existing_tenant_conflicts(backend: SqliteBackend) -> None:
    await backend.create_tenant("acme")
    with pytest.raises(ConflictError, match="acme"):
        await backend.create_tenant("acme")


async def test_deleting_a_missing_tenant_is_not_found(backend: SqliteBackend) -> None:
    with pytest.raises(NotFoundError, match="tenant 'ghost' not found"):
        await backend.delete_tenant("ghost")


async def test_every_verb_on_a_missing_tenant_is_not_found(backend: SqliteBackend) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        await backend.read("ghost", "secret", "k")
    with pytest.raises(NotFoundError, match="not found"):
        await backend.write("ghost", "secret", "k", b"v", expected_revision=None)
    with pytest.raises(NotFoundError, match="not found"):
        await backend.delete("ghost", "secret", "k")
    with pytest.raises(NotFoundError, match="not found"):
        await backend.list("ghost", "secret", "")
    assert not await backend.has_tenant("ghost")


async def test_a_recreated_tenant_starts_empty(backend: SqliteBackend) -> None:
    await backend.create_tenant("acme")
    old = await backend.write("acme", "secret", "k", b"v", expected_revision=0)
    await backend.delete_tenant("acme")
    await backend.create_tenant("acme")
    assert await backend.read("acme", "secret", "k") is None
    assert await backend.list("acme", "secret", "") == []
    # Revisions are never reused, so a stale check-and-set from before cannot pass (no ABA).
    assert await backend.write("acme", "secret", "k", b"w", expected_revision=0) > old


async def test_tenants_do_not_see_each_other(backend: SqliteBackend) -> None:
    await backend.create_tenant("acme")
    await backend.create_tenant("globex")
    await backend.write("acme", "secret", "k", b"acme's", expected_revision=0)
    assert await backend.read("globex", "secret", "k") is None
    assert await backend.list("globex", "secret", "") == []
    assert not await backend.delete("globex", "secret", "k")
    await backend.delete_tenant("globex")
    assert await backend.read("acme", "secret", "k") is not None


# -- records and check-and-set -----------------------------------------------------------------


@pytest.fixture
async def acme(backend: SqliteBackend) -> SqliteBackend:
    await backend.create_tenant("acme")
    return backend


async def test_values_round_trip_exactly(acme: SqliteBackend) -> None:
    for key, value in [("empty", b""), ("bin", bytes(range(256))), ("big", os.urandom(1 << 20))]:
        await acme.write("acme", "secret", key, value, expected_revision=None)
        record = await acme.read("acme", "secret", key)
        assert record is not None
        assert record.value == value
    assert await acme.read("acme", "secret", "absent") is None


async def test_unconditional_writes_bump_the_revision(acme: SqliteBackend) -> None:
    first = await acme.write("acme", "secret", "k", b"1", expected_revision=None)
    second = await acme.write("acme", "secret", "k", b"2", expected_revision=None)
    assert second > first > 0
    record = await acme.read("acme", "secret", "k")
    assert record is not None
    assert (record.value, record.revision) == (b"2", second)


async def test_expected_revision_zero_writes_only_an_absent_key(acme: SqliteBackend) -> None:
    assert await acme.write("acme", "secret", "k", b"1", expected_revision=0) > 0
    with pytest.raises(ConflictError, match="record changed"):
        await acme.write("acme", "secret", "k", b"2", expected_revision=0)
    record = await acme.read("acme", "secret", "k")
    assert record is not None
    assert record.value == b"1"


async def test_expected_revision_n_writes_only_at_revision_n(acme: SqliteBackend) -> None:
    first = await acme.write("acme", "secret", "k", b"1", expected_revision=0)
    second = await acme.write("acme", "secret", "k", b"2", expected_revision=first)
    assert second > first
    for stale in (first, second + 1, -1):
        with pytest.raises(ConflictError):
            await acme.write("acme", "secret", "k", b"x", expected_revision=stale)
    with pytest.raises(ConflictError, match="record changed"):
        await acme.write("acme", "secret", "absent", b"x", expected_revision=first)
    record = await acme.read("acme", "secret", "k")
    assert record is not None
    assert (record.value, record.revision) == (b"2", second)


async def test_conflict_messages_never_carry_the_value(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "k", CANARY, expected_revision=0)
    with pytest.raises(ConflictError) as caught:
        await acme.write("acme", "secret", "k", CANARY, expected_revision=0)
    assert CANARY.decode() not in str(caught.value)


async def test_delete_reports_whether_the_key_existed(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "k", b"v", expected_revision=0)
    assert await acme.delete("acme", "secret", "k") is True
    assert await acme.read("acme", "secret", "k") is None
    assert await acme.delete("acme", "secret", "k") is False


async def test_delete_checks_the_expected_revision(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "k", b"v", expected_revision=0)
    await acme.write("acme", "secret", "k", b"v", expected_revision=1)
    with pytest.raises(ConflictError):
        await acme.delete("acme", "secret", "k", expected_revision=1)
    with pytest.raises(ConflictError):
        await acme.delete("acme", "secret", "k", expected_revision=0)
    assert await acme.read("acme", "secret", "k") is not None
    assert await acme.delete("acme", "secret", "k", expected_revision=2) is True
    with pytest.raises(ConflictError):
        await acme.delete("acme", "secret", "k", expected_revision=2)
    assert await acme.delete("acme", "secret", "k", expected_revision=0) is False


async def test_concurrent_cas_writes_have_exactly_one_winner(acme: SqliteBackend) -> None:
    revision = await acme.write("acme", "secret", "k", b"start", expected_revision=0)
    results = await asyncio.gather(
        *(
            acme.write("acme", "secret", "k", f"writer-{i}".encode(), expected_revision=revision)
            for i in range(100)
        ),
        return_exceptions=True,
    )
    winners = [i for i, result in enumerate(results) if isinstance(result, int)]
    assert len(winners) == 1
    losers = [result for result in results if isinstance(result, BaseException)]
    assert len(losers) == 99
    assert all(isinstance(result, ConflictError) for result in losers)
    record = await acme.read("acme", "secret", "k")
    assert record is not None
    assert (record.value, record.revision) == (f"writer-{winners[0]}".encode(), results[winners[0]])


async def test_concurrent_create_only_writes_have_exactly_one_winner(acme: SqliteBackend) -> None:
    results = await asyncio.gather(
        *(acme.write("acme", "secret", "new", b"v", expected_revision=0) for _ in range(100)),
        return_exceptions=True,
    )
    assert sum(isinstance(result, int) for result in results) == 1
    assert sum(isinstance(result, ConflictError) for result in results) == 99


# -- list --------------------------------------------------------------------------------------


async def test_list_returns_immediate_children_sorted_with_folders_marked(
    acme: SqliteBackend,
) -> None:
    for key in ["b", "a/x", "a/y/z", "a", "c/d/e/f", "a-b", "a0", "app/1"]:
        await acme.write("acme", "secret", key, b"v", expected_revision=None)
    assert await acme.list("acme", "secret", "") == ["a", "a-b", "a/", "a0", "app/", "b", "c/"]
    assert await acme.list("acme", "secret", "a/") == ["x", "y/"]
    assert await acme.list("acme", "secret", "a/y/") == ["z"]
    assert await acme.list("acme", "secret", "c/") == ["d/"]
    assert await acme.list("acme", "secret", "nothing/") == []
    assert await acme.list("acme", "other", "") == []


async def test_list_handles_non_ascii_prefixes_and_names(acme: SqliteBackend) -> None:
    keys = ["é/a", "é/ß/x", "é0", "éa/x", "z/\U0010ffff", "z/\U0010ffff/q", "z/\ue000", "zz"]
    for key in keys:
        await acme.write("acme", "secret", key, b"v", expected_revision=None)
    assert await acme.list("acme", "secret", "é/") == ["a", "ß/"]
    assert await acme.list("acme", "secret", "z/") == ["\ue000", "\U0010ffff", "\U0010ffff/"]
    assert await acme.list("acme", "secret", "z/\U0010ffff/") == ["q"]
    assert await acme.list("acme", "secret", "") == ["z/", "zz", "é/", "é0", "éa/"]


async def test_list_pages_through_many_children_and_deep_folders(acme: SqliteBackend) -> None:
    leaves = [f"dir/leaf-{i:04d}" for i in range(1200)]
    folders = [f"dir/sub-{i:03d}/v/{j}" for i in range(300) for j in range(3)]
    for key in leaves + folders:
        await acme.write("acme", "secret", key, b"v", expected_revision=None)
    listed = await acme.list("acme", "secret", "dir/")
    expected = sorted([k.split("/")[1] for k in leaves] + [f"sub-{i:03d}/" for i in range(300)])
    assert listed == expected


async def test_list_rejects_a_prefix_without_trailing_slash(acme: SqliteBackend) -> None:
    with pytest.raises(InvalidPathError):
        await acme.list("acme", "secret", "a")


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [
        ("a/", "a0"),
        ("é/", "é0"),
        ("a\U0010ffff", "b"),
        ("a\ud7ff", "a\ue000"),
        ("\U0010ffff\U0010ffff", None),
    ],
)
def test_prefix_upper_bound_is_the_least_string_above_the_prefix_range(
    prefix: str, bound: str | None
) -> None:
    assert _sqlite._prefix_upper_bound(prefix) == bound


# -- lifecycle and errors ----------------------------------------------------------------------


async def test_it_is_a_backend_named_sqlite_whose_repr_shows_only_the_data_dir(
    backend: SqliteBackend, data_dir: Path
) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == "sqlite"
    assert repr(backend) == f"SqliteBackend(data_dir={str(data_dir)!r})"
    key_b64 = (data_dir / MASTER_KEY_FILENAME).read_text().strip()
    assert key_b64 not in repr(backend)


async def test_aclose_is_idempotent_and_later_calls_are_refused(data_dir: Path) -> None:
    backend = await SqliteBackend.open(data_dir)
    await backend.create_tenant("acme")
    await backend.aclose()
    await backend.aclose()
    with pytest.raises(ClosedError):
        await backend.read("acme", "secret", "k")
    with pytest.raises(ClosedError):
        await backend.write("acme", "secret", "k", b"v", expected_revision=None)
    with pytest.raises(ClosedError):
        await backend.list_tenants()


async def test_calls_in_flight_at_close_complete_first(data_dir: Path) -> None:
    backend = await SqliteBackend.open(data_dir)
    await backend.create_tenant("acme")
    writes = [
        asyncio.ensure_future(backend.write("acme", "secret", f"k{i}", b"v", expected_revision=0))
        for i in range(20)
    ]
    await asyncio.sleep(0)
    await backend.aclose()
    revisions = await asyncio.gather(*writes)
    assert len(set(revisions)) == 20
    async with await SqliteBackend.open(data_dir) as reopened:
        assert len(await reopened.list("acme", "secret", "")) == 20


async def test_a_full_disk_is_reported_as_storage_full(acme: SqliteBackend) -> None:
    await acme._call(
        lambda conn: conn.execute(
            "PRAGMA max_page_count = " + str(conn.execute("PRAGMA page_count").fetchone()[0])
        )
    )
    with pytest.raises(BackendUnavailableError, match="storage full") as caught:
        await acme.write("acme", "secret", "big", CANARY * 10_000, expected_revision=None)
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert CANARY.decode() not in str(caught.value)
    assert await acme.read("acme", "secret", "big") is None


async def test_a_locked_database_is_reported_as_unavailable(
    acme: SqliteBackend, data_dir: Path
) -> None:
    await acme._call(lambda conn: conn.execute("PRAGMA busy_timeout = 50"))
    with contextlib.closing(sqlite3.connect(data_dir / DB_FILENAME, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(BackendUnavailableError, match="locked") as caught:
                await acme.write("acme", "secret", "k", b"v", expected_revision=None)
        finally:
            other.execute("ROLLBACK")
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert await acme.write("acme", "secret", "k", b"v", expected_revision=None) > 0


@pytest.fixture
def not_a_database(data_dir: Path) -> Path:
    data_dir.mkdir(mode=0o700)
    (data_dir / DB_FILENAME).write_bytes(b"this is not an sqlite database" * 100)
    (data_dir / DB_FILENAME).chmod(0o600)
    return data_dir


async def test_a_file_that_is_not_a_database_is_a_backend_error(not_a_database: Path) -> None:
    data_dir = not_a_database
    with pytest.raises(BackendError, match="corrupt") as caught:
        await SqliteBackend.open(data_dir)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def _group_or_world_bits(data_dir: Path) -> dict[str, int]:
    return {
        path.name: path.stat().st_mode & 0o077
        for path in data_dir.iterdir()
        if path.name.startswith(DB_FILENAME)
    }


async def test_database_files_are_owner_only(data_dir: Path) -> None:
    async with await SqliteBackend.open(data_dir) as backend:
        await backend.create_tenant("acme")
        await backend.write("acme", "secret", "k", b"v", expected_revision=None)
        modes = _group_or_world_bits(data_dir)  # while open: the -wal and -shm files exist
    assert len(modes) >= 2
    assert set(modes.values()) == {0}, modes
