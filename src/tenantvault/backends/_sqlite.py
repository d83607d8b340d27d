"""The embedded backend: one SQLite database in WAL mode, every value sealed under its tenant's key.

Layout of the data directory (mode 0700; opening refuses looser modes, see `_permissions`):

- `tenantvault.db` (+ `-wal`, `-shm`): tables `meta` (schema version, master key check),
  `tenants` (per-tenant data key, wrapped by the master key) and `records`.
- `master.key` (mode 0600), unless a key or key file is supplied: one line holding the
  standard base64 encoding of 32 random bytes, created on first start only.
- `tenantvault.lock` (mode 0600): locked while a process has the store open (`_lock`);
  holds that process's id.

Tenant data keys are wrapped by the store's key terms (`seal._terms`: `meta.keyring`, sealed
under the master key; `tenants.key_term` says which), rotated by `sys/rotate` and re-wrapped
to the newest term by `rewrap_keys`, which destroys older terms once unused and retained.

Each value is sealed with AES-256-GCM under its tenant's data key, with associated data
binding it to (tenant, tenant key id, mount, key): a blob copied to any other row fails to
open. Each incarnation of a tenant gets a fresh key id and data key, so deleting a tenant
(which deletes its wrapped key) makes its old rows undecryptable, in backups too.

All SQLite work runs on one dedicated worker thread that owns the connection: statements are
serialized, the event loop never blocks on disk, and each check-and-set is one transaction.
Writes (and reads the record cache cannot answer) queue for that thread's next flush: the
reads first, from the committed state, then every queued write as one group commit (one
transaction, one fsync); the callers of a flush hear back through one wake-up of their event
loop per step, not one thread hand-off each.

Point reads of hot records skip that thread: `_record_cache` keeps the committed state of the
keys being read (sealed, as stored), filled by the worker after each read and updated by it
after each commit, so a read of a cached key costs one decryption and no thread hop. That
is exact only for the database's sole writer: an open store holds the data directory's lock
(`_lock`), and a second process, or a second store in this one, is refused.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

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
from tenantvault.backends._lock import DataDirLock, lock_data_dir
from tenantvault.backends._permissions import check_private
from tenantvault.backends._protocol import SYSTEM_TENANT, Record
from tenantvault.backends._record_cache import MISS, CacheKey, RecordCache, SealedRecord
from tenantvault.crypto import (
    KEY_SIZE,
    AeadKey,
    decode_master_key,
    encode_aad,
    encode_master_key,
    random_key,
    unwrap_key,
    wrap_key,
)
from tenantvault.crypto._master_key import rewrap_key
from tenantvault.seal._terms import KeyTerms, RewrapReport, install_time

__all__ = ["DB_FILENAME", "MASTER_KEY_FILENAME", "SqliteBackend"]

DB_FILENAME: Final = "tenantvault.db"
MASTER_KEY_FILENAME: Final = "master.key"

_T = TypeVar("_T")

_SCHEMA_VERSION: Final = b"1"
# The database and the files SQLite keeps next to it in WAL mode (same mode as the database).
_DB_SUFFIXES: Final = ("", "-wal", "-shm")
_BUSY_TIMEOUT_MS: Final = 5000
_KEY_CHECK_PLAINTEXT: Final = b"tenantvault master key check"
_KEY_CHECK_AAD: Final = encode_aad("tenantvault:key-check")
_RECORD_LABEL: Final = "tenantvault:record"
# The record cache's bounds: the hot set of a busy server (tokens, policies, mount tables and
# the secrets being read) fits many times over; a large secret is read from disk each time.
_CACHE_ENTRIES: Final = 10_000
_CACHE_BYTES: Final = 32 * 1024 * 1024
_CACHE_VALUE_BYTES: Final = 64 * 1024
# How long opening a store waits for another store of this process on the same data
# directory to close (see `_lock`); a store of another process is refused at once.
_LOCK_WAIT_SECONDS: Final = 10.0

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta ( name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS tenants ("
    " tenant TEXT PRIMARY KEY, key_id TEXT NOT NULL, wrapped_key BLOB NOT NULL,"
    " created_at TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS records ("
    " tenant TEXT NOT NULL REFERENCES tenants(tenant) ON DELETE CASCADE,"
    " mount TEXT NOT NULL, key TEXT NOT NULL, revision INTEGER NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY (tenant, mount, key)) WITHOUT ROWID",
)

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_CANTOPEN: Final = 14
_SQLITE_PROTOCOL: Final = 15
_SQLITE_NOTADB: Final = 26


class SqliteBackend:
    """The `Backend` on an embedded SQLite database; open one with `await SqliteBackend.open()`."""

    def __init__(self, data_dir: Path) -> None:
        # Internal: use `open()`, which also opens the database and checks the master key.
        self._data_dir = Path(data_dir)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tenantvault-sqlite")
        self._pending: list[_Pending] = []
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False
        self._closed = False
        # Changed by the worker thread only, read from the loop (it locks itself).
        self._cache = RecordCache(
            max_entries=_CACHE_ENTRIES, max_bytes=_CACHE_BYTES, max_value_bytes=_CACHE_VALUE_BYTES
        )
        # Changed by the worker thread only: tenant -> (key id, data key) of every tenant
        # whose key was loaded, the worker's word that the tenant exists (`_tenant_key`).
        # The loop only looks entries up, to seal a write's value before queueing it.
        self._data_keys: dict[str, tuple[str, AeadKey]] = {}
        # Everything below is touched only on the worker thread.
        self._lock: DataDirLock | None = None
        self._conn: sqlite3.Connection | None = None
        self._master: AeadKey | None = None
        # The store-wide revision counter (`_take_revision`): the last revision handed out,
        # and the value stored in the database; None until the first write loads it.
        self._revision: int | None = None
        self._stored_revision: int | None = None
        self._terms: KeyTerms | None = None
        # The key file this store created and may replace (`DATA_DIR/master.key`); None for
        # a key the operator supplies (a variable or their own file): never ours to rewrite.
        self._own_key_file: Path | None = None

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        master_key: bytes | None = None,
        master_key_file: Path | None = None,
        allow_insecure_permissions: bool = False,
    ) -> SqliteBackend:
        """Open (creating if needed) the store in `data_dir`.

        The master key is `master_key` (32 bytes) if given, else read from `master_key_file`
        (one line of base64 of 32 bytes), else `data_dir/master.key`, created on first start.
        `ConfigurationError` if the key does not match existing data, or if the default key
        file is missing while the store holds data: a fresh key is never put over old data.
        Also if group or others can use the data directory, the key file or the database
        files, unless `allow_insecure_permissions` (then a warning is logged).
        """
        if master_key is not None and master_key_file is not None:
            raise ConfigurationError("give either master_key or master_key_file, not both")
        if master_key is not None and (
            not isinstance(master_key, bytes) or len(master_key) != KEY_SIZE
        ):
            raise ConfigurationError(f"the master key must be {KEY_SIZE} bytes")
        backend = cls(data_dir)
        key_file = None if master_key_file is None else Path(master_key_file)
        try:
            await backend._run_worker(
                lambda: backend._open_sync(
                    master_key, key_file, allow_insecure=allow_insecure_permissions
                )
            )
        except BaseException:
            await backend.aclose()
            raise
        return backend

    @property
    def name(self) -> str:
        """'sqlite'."""
        return "sqlite"

    @property
    def data_dir(self) -> Path:
        """The data directory this backend stores its database in."""
        return self._data_dir

    def __repr__(self) -> str:
        return f"SqliteBackend(data_dir={str(self._data_dir)!r})"

    async def __aenter__(self) -> SqliteBackend:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the Backend verbs -------------------------------------------------------------------

    async def create_tenant(self, tenant: str) -> None:
        """Create an empty tenant with a fresh data key; `ConflictError` if it exists."""
        await self._call(lambda conn: self._create_tenant_sync(conn, tenant))

    async def delete_tenant(self, tenant: str) -> None:
        """Delete the tenant's wrapped data key and records; `NotFoundError` if absent."""
        if tenant == SYSTEM_TENANT:
            # Like an absent tenant, as in the memory backend: it is not a tenant one can name.
            raise _tenant_not_found(tenant)
        await self._call(lambda conn: self._delete_tenant_sync(conn, tenant))

    async def list_tenants(self) -> list[str]:
        """All tenant ids, sorted, without `SYSTEM_TENANT`."""
        return await self._call(self._list_tenants_sync)

    async def has_tenant(self, tenant: str) -> bool:
        """Whether the tenant exists."""
        return await self._call(lambda conn: _tenant_row(conn, tenant) is not None)

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        """The record at `key`, or None; `NotFoundError` if the tenant does not exist."""
        if self._closed:
            raise ClosedError("the sqlite backend is closed")
        # A cached key is served here, on the loop: its entry is the committed state (a
        # cached key's tenant exists too: deleting a tenant drops its entries). Opening it here
        # shares the data key with the worker: cryptography's AEAD objects keep no state
        # between calls, so one may open on the loop while the other seals.
        found = self._cache.get((tenant, mount, key))
        if found is not MISS:
            return None if found is None else found.open()
        return await self._queued_read(lambda conn: self._read_sync(conn, tenant, mount, key))

    def committed_revision(self, tenant: str, mount: str, key: str) -> int | None:
        """The committed revision of a cached `key` (0: known absent), None if not cached
        (`RevisionPeek`): the record cache is exact, so no read and no decryption is needed."""
        if self._closed:
            raise ClosedError("the sqlite backend is closed")
        found = self._cache.get((tenant, mount, key))
        if found is MISS:
            return None
        return 0 if found is None else found.revision

    async def write(
        self, tenant: str, mount: str, key: str, value: bytes, *, expected_revision: int | None
    ) -> int:
        """Store `value` durably and return the new revision (check-and-set in one transaction)."""
        sealed = self._seal_on_loop(tenant, mount, key, value)

        def run(conn: sqlite3.Connection) -> tuple[int, tuple[SealedRecord]]:
            revision, record = self._write_sync(
                conn, tenant, mount, key, value, expected_revision, sealed
            )
            return revision, (record,)

        return await self._queued_write(run, ((tenant, mount, key),))

    async def write_all(
        self, tenant: str, mount: str, writes: Sequence[tuple[str, bytes, int | None]]
    ) -> list[int]:
        """Store every (key, value, expected_revision) of `writes`, in order, all or none:
        one transaction of the group commit. The new revisions; `ConflictError` (and nothing
        written) if any check-and-set fails."""
        sealed = [self._seal_on_loop(tenant, mount, key, value) for key, value, _ in writes]

        def run(conn: sqlite3.Connection) -> tuple[list[int], tuple[SealedRecord, ...]]:
            # Several modifying statements: a savepoint undoes them together.
            conn.execute("SAVEPOINT write_all")
            try:
                done = [
                    self._write_sync(conn, tenant, mount, key, value, expected, seal)
                    for (key, value, expected), seal in zip(writes, sealed, strict=True)
                ]
            except BaseException:
                # If SQLite rolled the whole transaction back, the group commit sees that.
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK TO write_all")
                        conn.execute("RELEASE write_all")
                    except sqlite3.Error:
                        # Not undone alone: undo the whole group, which fails every caller.
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                raise
            conn.execute("RELEASE write_all")
            return [revision for revision, _ in done], tuple(record for _, record in done)

        return await self._queued_write(run, tuple((tenant, mount, key) for key, _, _ in writes))

    def _seal_on_loop(self, tenant: str, mount: str, key: str, value: bytes) -> _Sealed | None:
        """`value` sealed here, on the loop, if the tenant's key is loaded (else None: the
        worker seals it). The worker holds the GIL between its statements, and every call
        that lets go of it (AES-GCM does) makes the group commit wait for the busy loop to
        hand it back."""
        loaded = self._data_keys.get(tenant)
        if loaded is None:
            return None
        aad = _record_aad(tenant, loaded[0], mount, key)
        return _Sealed(loaded, aad, loaded[1].seal(value, aad))

    async def delete(
        self, tenant: str, mount: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        """Remove `key`; return whether it existed. `ConflictError` on a revision mismatch."""
        return await self._queued_write(
            lambda conn: self._delete_sync(conn, tenant, mount, key, expected_revision),
            ((tenant, mount, key),),
        )

    async def list(self, tenant: str, mount: str, prefix: str) -> list[str]:
        """Immediate children of `prefix` ('' or ending in '/'); folders end in '/'; sorted."""
        if prefix and not prefix.endswith("/"):
            raise InvalidPathError("a list prefix is '' or ends with '/'")
        return await self._call(lambda conn: self._list_sync(conn, tenant, mount, prefix))

    # -- key terms (`seal._terms.KeyRotation`) ----------------------------------------------

    async def key_status(self) -> dict[str, Any]:
        """Vault's `sys/key-status`: the newest term, when it was installed, and how many
        tenant keys it wraps (`encryptions`)."""
        return await self._call(self._key_status_sync)

    async def rotate_key(self) -> int:
        """Add a key term: new tenant keys are wrapped under it from now on."""
        return await self._call(self._rotate_key_sync)

    async def rewrap_keys(self, *, retention_seconds: float) -> RewrapReport:
        """Move every tenant key to the newest term; then destroy the older terms if the
        newest was installed `retention_seconds` ago or more."""
        return await self._call(lambda conn: self._rewrap_sync(conn, retention_seconds))

    async def aclose(self) -> None:
        """Close the database and stop the worker thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._cache.clear()
        loop = asyncio.get_running_loop()
        try:
            # Queued behind every call already submitted, so those finish first.
            await loop.run_in_executor(self._executor, self._close_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        # The worker is idle now: this only joins it.
        self._executor.shutdown(wait=True)

    # -- plumbing ----------------------------------------------------------------------------

    async def _run_worker(self, fn: Callable[[], _T]) -> _T:
        """Run `fn` on the worker thread, translating sqlite3 errors at this one boundary."""
        if self._closed:
            raise ClosedError("the sqlite backend is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise _translate_error(exc) from exc

    async def _call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._run_worker(lambda: fn(self._connection()))

    async def _queued_read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        result: _T = await self._queued(fn, ())
        return result

    async def _queued_write(
        self,
        fn: Callable[[sqlite3.Connection], tuple[_T, tuple[SealedRecord | None, ...]]],
        keys: tuple[CacheKey, ...],
    ) -> _T:
        result: _T = await self._queued(fn, keys)
        return result

    async def _queued(
        self, fn: Callable[[sqlite3.Connection], Any], keys: tuple[CacheKey, ...]
    ) -> Any:
        """Run `fn` on the worker thread in its next flush: a read (no `keys`) before the
        group commit, a write of `keys` in it (`fn` returns its result and what each key
        holds after it, None: nothing). A write that fails undoes only itself (one modifying
        statement, or a savepoint); nobody hears back before COMMIT, nor before the cache
        has it."""
        if self._closed:
            raise ClosedError("the sqlite backend is closed")
        loop = asyncio.get_running_loop()
        # A plain loop future, settled in bulk by `_deliver` (one wake-up per loop and flush
        # step), not a concurrent Future and its asyncio wrapper per call.
        future: asyncio.Future[Any] = loop.create_future()
        with self._pending_lock:
            self._pending.append(_Pending(fn, future, loop, keys))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._executor.submit(self._flush)
        return await future

    def _flush(self) -> None:
        """On the worker thread: the queued reads, then every queued write as one group."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
            self._flush_scheduled = False
        reads = [pending for pending in batch if not pending.keys]
        if reads:
            # Answered before the group's fsync: a read waits for no write it does not need.
            _deliver_threadsafe([self._read_one(pending) for pending in reads])
        writes = [pending for pending in batch if pending.keys]
        if writes:
            _deliver_threadsafe(self._commit_group(writes))

    def _read_one(self, pending: _Pending) -> _Outcome:
        try:
            return pending, True, pending.fn(self._connection())
        except Exception as error:  # noqa: BLE001 -- handed to that caller alone
            return pending, False, _failure(error)

    def _commit_group(self, batch: builtins.list[_Pending]) -> builtins.list[_Outcome]:
        """Run `batch`'s writes in one transaction; what each caller hears, in order."""

        def fail_all(error: BaseException) -> builtins.list[_Outcome]:
            for pending in batch:
                # Whatever SQLite kept of the group, the cache must not claim to know.
                for key in pending.keys:
                    self._cache.discard(key)
            return [(pending, False, _failure(error)) for pending in batch]

        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except Exception as error:  # noqa: BLE001 -- every caller of this group hears of it
            return fail_all(error)
        outcomes: builtins.list[tuple[bool, Any]] = []
        for pending in batch:
            try:
                outcomes.append((True, pending.fn(conn)))
            except Exception as error:  # noqa: BLE001 -- handed to that caller alone
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (disk full, I/O error): every
                    # write of the group is gone, so every caller gets the error.
                    return fail_all(error)
                # SQLite undid the failing statement alone; the group goes on.
                outcomes.append((False, error))
        try:
            self._store_revision(conn)
            conn.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 -- nothing of the group is durable
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return fail_all(error)
        self._stored_revision = self._revision
        # Committed: the cache first, in commit order, so that once a writer hears back
        # every later read sees its write.
        for (ok, value), pending in zip(outcomes, batch, strict=True):
            if ok:  # else that write changed nothing: its keys are as they were
                for key, record in zip(pending.keys, value[1], strict=True):
                    self._cache.update(key, record)
        return [
            (pending, True, value[0]) if ok else (pending, False, _failure(value))
            for (ok, value), pending in zip(outcomes, batch, strict=True)
        ]

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ClosedError("the sqlite backend is closed")
        return self._conn

    def _master_key(self) -> AeadKey:
        if self._master is None:
            raise ClosedError("the sqlite backend is closed")
        return self._master

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        self._master = None
        self._terms = None
        self._data_keys.clear()
        self._revision = self._stored_revision = None
        self._cache.clear()
        try:
            if conn is not None:
                conn.close()
        finally:
            # Only once the connection is closed: the next holder may write at once.
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()

    # -- opening -----------------------------------------------------------------------------

    def _open_sync(
        self, master_key: bytes | None, master_key_file: Path | None, *, allow_insecure: bool
    ) -> None:
        try:
            self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create data directory {self._data_dir}") from exc
        self._check_permissions(
            None if master_key is not None else master_key_file or self._key_path,
            allow_insecure=allow_insecure,
        )
        # Before the database is touched: one process (and one store in it) at a time.
        self._lock = lock_data_dir(self._data_dir, role="store", wait_seconds=_LOCK_WAIT_SECONDS)
        _create_private(self._data_dir / DB_FILENAME)
        conn = sqlite3.connect(
            self._data_dir / DB_FILENAME,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN ... COMMIT
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        self._conn = conn
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")

        # Read-only inspection first: a wrong or missing key must leave the store untouched.
        key_check, has_tenants = _inspect(conn)
        if key_check is None and has_tenants:
            raise ConfigurationError(
                "the data directory holds tenants but no master key check; refusing to open it"
            )
        own_key = master_key is None and master_key_file is None
        if own_key and key_check is not None:
            _finish_key_replacement(self._key_path, key_check)
        raw_key = self._resolve_master_key(
            master_key, master_key_file, store_exists=key_check is not None
        )
        master = AeadKey(raw_key)
        if key_check is not None:
            _verify_key_check(master, key_check)
        self._own_key_file = self._key_path if own_key else None

        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ConfigurationError("sqlite could not switch the database to WAL mode")
        # FULL: a commit fsyncs the WAL, so an acknowledged write survives power loss.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Zero deleted content, so shredded wrapped keys do not linger in free pages.
        conn.execute("PRAGMA secure_delete = ON")
        # F_FULLFSYNC on macOS, where plain fsync does not reach the platter; no-op elsewhere.
        conn.execute("PRAGMA fullfsync = ON")
        conn.execute("PRAGMA checkpoint_fullfsync = ON")

        with _transaction(conn):
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('key_check', ?), ('schema', ?)",
                    (master.seal(_KEY_CHECK_PLAINTEXT, _KEY_CHECK_AAD), _SCHEMA_VERSION),
                )
            else:
                _verify_key_check(master, row[0])
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None or bytes(row[0]) != _SCHEMA_VERSION:
                raise ConfigurationError("the database has an unsupported schema version")
            self._master = master
            self._terms = _load_terms(conn, master)
            if _tenant_row(conn, SYSTEM_TENANT) is None:
                self._insert_tenant(conn, SYSTEM_TENANT)
        # The database file may be new: make its directory entry durable too.
        _fsync_dir(self._data_dir)

    @property
    def _key_path(self) -> Path:
        return self._data_dir / MASTER_KEY_FILENAME

    def _check_permissions(self, key_file: Path | None, *, allow_insecure: bool) -> None:
        """Before any file is read or created: only the owner may use the store's files."""
        paths = [(self._data_dir, "data directory", True)]
        paths += [
            (self._data_dir / (DB_FILENAME + s), "database file", False) for s in _DB_SUFFIXES
        ]
        if key_file is not None:
            paths.append((key_file, "master key file", False))
        for path, kind, is_dir in paths:
            check_private(path, kind=kind, is_dir=is_dir, allow_insecure=allow_insecure)

    def _resolve_master_key(
        self, master_key: bytes | None, master_key_file: Path | None, *, store_exists: bool
    ) -> bytes:
        if master_key is not None:
            return master_key
        if master_key_file is not None:
            try:
                content = master_key_file.read_bytes()
            except FileNotFoundError:
                raise ConfigurationError(f"master key file not found: {master_key_file}") from None
            except OSError as exc:
                raise ConfigurationError(f"cannot read master key file {master_key_file}") from exc
            return _parse_key_file(content, master_key_file)
        path = self._key_path
        try:
            return _parse_key_file(path.read_bytes(), path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigurationError(f"cannot read master key file {path}") from exc
        if store_exists:
            raise ConfigurationError(f"master key file missing for an existing store: {path}")
        return _create_key_file(path)

    # -- the verbs, on the worker thread -----------------------------------------------------

    def _insert_tenant(self, conn: sqlite3.Connection, tenant: str) -> AeadKey:
        key_id = secrets.token_hex(16)
        data_key = random_key()
        term = self._key_terms().active
        conn.execute(
            "INSERT INTO tenants (tenant, key_id, wrapped_key, created_at, key_term)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                tenant,
                key_id,
                wrap_key(self._term_key(term), data_key, tenant=tenant, key_id=key_id),
                datetime.now(UTC).isoformat(),
                term,
            ),
        )
        sealing_key = AeadKey(data_key)
        self._data_keys[tenant] = (key_id, sealing_key)
        return sealing_key

    def _create_tenant_sync(self, conn: sqlite3.Connection, tenant: str) -> None:
        try:
            with _transaction(conn):
                if _tenant_row(conn, tenant) is not None:
                    raise ConflictError(f"tenant {tenant!r} already exists")
                self._insert_tenant(conn, tenant)
        except BaseException:
            # Not committed: the key must not vouch for a tenant that does not exist (an
            # existing tenant's key is simply loaded again).
            self._data_keys.pop(tenant, None)
            raise

    def _delete_tenant_sync(self, conn: sqlite3.Connection, tenant: str) -> None:
        with _transaction(conn):
            conn.execute("DELETE FROM records WHERE tenant = ?", (tenant,))
            if conn.execute("DELETE FROM tenants WHERE tenant = ?", (tenant,)).rowcount == 0:
                raise _tenant_not_found(tenant)
        self._data_keys.pop(tenant, None)
        self._cache.drop_tenant(tenant)
        # Copy the zeroed pages into the database file and empty the WAL, so the old wrapped
        # key is gone from disk now rather than at the next checkpoint. The delete is already
        # committed: if this fails, the bytes go at a later checkpoint, so do not report it.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _list_tenants_sync(self, conn: sqlite3.Connection) -> builtins.list[str]:
        rows = conn.execute(
            "SELECT tenant FROM tenants WHERE tenant <> ? ORDER BY tenant", (SYSTEM_TENANT,)
        ).fetchall()
        return sorted(row[0] for row in rows)

    def _key_terms(self) -> KeyTerms:
        if self._terms is None:
            raise ClosedError("the sqlite backend is closed")
        return self._terms

    def _term_key(self, term: int) -> AeadKey:
        """The key that wraps tenant keys of `term` (0: the master key, before terms)."""
        return self._master_key() if term == 0 else self._key_terms().cipher(term)

    def _data_key(self, tenant: str, key_id: str, wrapped: bytes, term: int) -> AeadKey:
        cached = self._data_keys.get(tenant)
        if cached is not None and cached[0] == key_id:
            return cached[1]
        try:
            sealing_key = unwrap_key(self._term_key(term), wrapped, tenant=tenant, key_id=key_id)
        except IntegrityError:
            raise IntegrityError(
                f"the data key of tenant {tenant!r} failed authentication"
            ) from None
        self._data_keys[tenant] = (key_id, sealing_key)
        return sealing_key

    def _tenant_key(self, conn: sqlite3.Connection, tenant: str) -> tuple[str, AeadKey]:
        """The tenant's (key id, data key); `NotFoundError` if the tenant does not exist.

        A loaded key answers without a statement: this process is the database's sole
        writer (the data directory's lock), and the entry goes when the tenant's deletion
        commits (or its creation fails), so it exists exactly while the tenant does.
        """
        cached = self._data_keys.get(tenant)
        if cached is not None:
            return cached
        row = _tenant_row(conn, tenant)
        if row is None:
            raise _tenant_not_found(tenant)
        key_id, wrapped, term = row
        return key_id, self._data_key(tenant, key_id, wrapped, term)

    def _read_sync(
        self, conn: sqlite3.Connection, tenant: str, mount: str, key: str
    ) -> Record | None:
        # One statement: tenant existence, its key and the record, from one snapshot.
        row = conn.execute(
            "SELECT t.key_id, t.wrapped_key, t.key_term, r.revision, r.value FROM tenants AS t"
            " LEFT JOIN records AS r ON r.tenant = t.tenant AND r.mount = ? AND r.key = ?"
            " WHERE t.tenant = ?",
            (mount, key, tenant),
        ).fetchone()
        if row is None:
            raise _tenant_not_found(tenant)
        key_id, wrapped, term, revision, sealed = row
        if revision is None:
            self._cache.put((tenant, mount, key), None)
            return None
        sealing_key = self._data_key(tenant, key_id, wrapped, term)
        aad = _record_aad(tenant, key_id, mount, key)
        try:
            value = sealing_key.open(sealed, aad)
        except IntegrityError:
            raise IntegrityError(
                f"stored data failed authentication: tenant {tenant!r}, mount {mount!r},"
                f" key {key!r}"
            ) from None
        # On this thread, after the read and before any later commit: the committed state
        # (only once it opened: a tampered row is refused again at every read).
        self._cache.put(
            (tenant, mount, key), SealedRecord(revision, bytes(sealed), sealing_key, aad)
        )
        return Record(value=value, revision=revision)

    def _write_sync(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        mount: str,
        key: str,
        value: bytes,
        expected_revision: int | None,
        sealed: _Sealed | None,
    ) -> tuple[int, SealedRecord]:
        # Inside the group's transaction, no savepoint: one statement both checks and writes
        # (SQLite undoes a failing statement alone), so the revision check reads nothing first.
        loaded = self._tenant_key(conn, tenant)
        if sealed is None or sealed.key is not loaded:
            # Not sealed on the loop, or under a key the tenant no longer has (deleted and
            # created again since): seal under its current key.
            aad = _record_aad(tenant, loaded[0], mount, key)
            sealed = _Sealed(loaded, aad, loaded[1].seal(value, aad))
        revision = self._take_revision(conn)
        row = (revision, sealed.value, tenant, mount, key)
        if expected_revision is None:
            conn.execute(
                "INSERT INTO records (revision, value, tenant, mount, key) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant, mount, key)"
                " DO UPDATE SET revision = excluded.revision, value = excluded.value",
                row,
            )
        elif expected_revision == 0:
            cursor = conn.execute(
                "INSERT INTO records (revision, value, tenant, mount, key) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant, mount, key) DO NOTHING",
                row,
            )
            if cursor.rowcount != 1:
                raise _conflict(tenant, mount)
        else:
            cursor = conn.execute(
                "UPDATE records SET revision = ?, value = ?"
                " WHERE tenant = ? AND mount = ? AND key = ? AND revision = ?",
                (*row, expected_revision),
            )
            if cursor.rowcount != 1:
                raise _conflict(tenant, mount)
        return revision, SealedRecord(revision, sealed.value, loaded[1], sealed.aad)

    def _take_revision(self, conn: sqlite3.Connection) -> int:
        """The next store-wide revision, so a key deleted and written again never repeats
        one (no ABA: a writer holding a revision from before the delete cannot pass the check
        after it). Counted here, as the sole writer, and stored once per group commit
        (`_store_revision`, in the same transaction): the stored value is never below a
        committed revision, and a number handed out by a group that failed is skipped."""
        if self._revision is None:
            row = conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
            self._revision = self._stored_revision = 0 if row is None else int(row[0])
        self._revision += 1
        return self._revision

    def _store_revision(self, conn: sqlite3.Connection) -> None:
        """Within the group's transaction: store the counter if the group advanced it."""
        if self._revision is not None and self._revision != self._stored_revision:
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ('revision', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (self._revision,),
            )

    def _delete_sync(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        mount: str,
        key: str,
        expected_revision: int | None,
    ) -> tuple[bool, tuple[None]]:
        # Inside the group's transaction, like `_write_sync`: one statement checks and deletes.
        self._tenant_key(conn, tenant)
        where = (tenant, mount, key)
        if expected_revision == 0:
            # Delete only if absent: nothing to delete, a conflict if the key is there.
            if _revision(conn, tenant, mount, key) is not None:
                raise _conflict(tenant, mount)
            return False, (None,)
        if expected_revision is None:
            cursor = conn.execute(
                "DELETE FROM records WHERE tenant = ? AND mount = ? AND key = ?", where
            )
            return cursor.rowcount == 1, (None,)
        cursor = conn.execute(
            "DELETE FROM records WHERE tenant = ? AND mount = ? AND key = ? AND revision = ?",
            (*where, expected_revision),
        )
        if cursor.rowcount != 1:
            raise _conflict(tenant, mount)
        return True, (None,)

    def _list_sync(
        self, conn: sqlite3.Connection, tenant: str, mount: str, prefix: str
    ) -> builtins.list[str]:
        # `builtins.list`: inside this class, a bare `list` names the `list` verb.
        children: set[str] = set()
        # A read transaction: every scan below sees the same snapshot.
        with _transaction(conn, write=False):
            if _tenant_row(conn, tenant) is None:
                raise _tenant_not_found(tenant)
            upper = _prefix_upper_bound(prefix) if prefix else None
            low: str | None = prefix
            while low is not None:
                scan = _range_scan(tenant, mount, low, upper)
                low = None
                # Rows are stepped lazily: leaving the loop early stops the scan there.
                with contextlib.closing(conn.execute(*scan)) as cursor:
                    for (key,) in cursor:
                        if not key.startswith(prefix):  # only when the prefix has no upper bound
                            break
                        rest = key[len(prefix) :]
                        slash = rest.find("/")
                        if slash < 0:
                            if rest:
                                children.add(rest)
                            continue
                        children.add(rest[: slash + 1])
                        # Jump past the folder's whole subtree instead of reading it.
                        low = _prefix_upper_bound(prefix + rest[: slash + 1])
                        break
        return sorted(children)

    # -- key terms, on the worker thread ---------------------------------------------------

    def _key_status_sync(self, conn: sqlite3.Connection) -> dict[str, Any]:
        terms = self._key_terms()
        active = terms.active
        (count,) = conn.execute(
            "SELECT count(*) FROM tenants WHERE key_term = ?", (active,)
        ).fetchone()
        return {
            "term": active,
            "install_time": install_time(terms.installed_ns(active)),
            "encryptions": int(count),
        }

    def _rotate_key_sync(self, conn: sqlite3.Connection) -> int:
        terms = self._key_terms()
        # A copy first: memory changes only once the new keyring is committed.
        rotated = KeyTerms.open(self._master_key(), terms.seal(self._master_key()))
        term = rotated.rotate(time.time_ns())
        with _transaction(conn):
            self._store_terms(conn, rotated)
        self._terms = rotated
        return term

    def _store_terms(self, conn: sqlite3.Connection, terms: KeyTerms) -> None:
        conn.execute(
            "UPDATE meta SET value = ? WHERE name = 'keyring'", (terms.seal(self._master_key()),)
        )

    def _rewrap_sync(self, conn: sqlite3.Connection, retention_seconds: float) -> RewrapReport:
        terms = self._key_terms()
        active = terms.active
        moved = 0
        with _transaction(conn):
            rows = conn.execute(
                "SELECT tenant, key_id, wrapped_key, key_term FROM tenants WHERE key_term <> ?",
                (active,),
            ).fetchall()
            for tenant, key_id, wrapped, term in rows:
                rewrapped = rewrap_key(
                    self._term_key(int(term)),
                    terms.cipher(active),
                    bytes(wrapped),
                    tenant=tenant,
                    key_id=key_id,
                )
                conn.execute(
                    "UPDATE tenants SET wrapped_key = ?, key_term = ? WHERE tenant = ?",
                    (rewrapped, active, tenant),
                )
                moved += 1
        destroyed: tuple[int, ...] = ()
        age_seconds = (time.time_ns() - terms.installed_ns(active)) / 1e9
        if len(terms.terms) > 1 and age_seconds >= retention_seconds:
            kept = KeyTerms.open(self._master_key(), terms.seal(self._master_key()))
            destroyed = kept.destroy_below(active)
            with _transaction(conn):
                self._store_terms(conn, kept)
            self._terms = kept
        if destroyed and self._own_key_file is not None:
            # The keyring itself is sealed by the master key: replace that too, so a copy of
            # the data directory from before the rotation no longer opens with the key file.
            self._replace_master_key(conn, self._own_key_file)
        if moved or destroyed:
            # Overwrite the old wrapped keys and keyring on disk now, not at a later checkpoint.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return RewrapReport(moved, destroyed)

    def _replace_master_key(self, conn: sqlite3.Connection, path: Path) -> None:
        """A new master key for the key check and the keyring, in two durable steps: the
        new key file beside the old one (`.next`), then the database, then the rename. A crash
        in between leaves a `.next` file that the next open adopts or discards
        (`_finish_key_replacement`), by which key the committed key check opens with."""
        terms = self._key_terms()
        if conn.execute("SELECT 1 FROM tenants WHERE key_term = 0 LIMIT 1").fetchone():
            return  # a tenant key still wrapped by the master key itself: not yet
        new_key = random_key()
        upcoming = _next_key_path(path)
        _write_key_file(upcoming, new_key)
        new_master = AeadKey(new_key)
        with _transaction(conn):
            conn.execute(
                "UPDATE meta SET value = ? WHERE name = 'key_check'",
                (new_master.seal(_KEY_CHECK_PLAINTEXT, _KEY_CHECK_AAD),),
            )
            conn.execute(
                "UPDATE meta SET value = ? WHERE name = 'keyring'", (terms.seal(new_master),)
            )
        self._master = new_master
        os.replace(upcoming, path)
        _fsync_dir(path.parent)


# -- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pending:
    """A call queued for the worker's next flush: what to run, who hears back (a future of
    `loop`), and the keys it writes (none: a read; a write's `fn` returns its result and what
    each key holds after it)."""

    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    keys: tuple[CacheKey, ...]


@dataclass(frozen=True, slots=True, repr=False)
class _Sealed:
    """A value sealed on the loop: the tenant key entry it was sealed under (the worker
    checks it is still the tenant's), its associated data and the sealed bytes."""

    key: tuple[str, AeadKey]
    aad: bytes
    value: bytes

    def __repr__(self) -> str:
        # The associated data names the key, which can embed a token hash.
        return f"_Sealed(<{len(self.value)} bytes>)"


# What one caller hears: (its call, succeeded?, the result or the exception).
_Outcome = tuple[_Pending, bool, Any]


def _failure(error: BaseException) -> BaseException:
    """What a caller is handed for `error`: sqlite3 errors translated (with the original as
    the cause), anything that is not an `Exception` as a plain backend failure."""
    if isinstance(error, sqlite3.Error):
        translated = _translate_error(error)
        translated.__cause__ = error
        return translated
    return error if isinstance(error, Exception) else BackendError("sqlite failed")


def _deliver_threadsafe(outcomes: list[_Outcome]) -> None:
    """From the worker thread: settle `outcomes` with one wake-up of each caller's loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, settled in by_loop.items():
        # A closed loop has nobody left waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_deliver, settled)


def _deliver(outcomes: list[_Outcome]) -> None:
    """On the callers' loop: hand each its result (a cancelled caller is gone)."""
    for pending, ok, value in outcomes:
        if pending.future.done():
            continue
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)


def _next_key_path(path: Path) -> Path:
    return path.with_name(path.name + ".next")


def _write_key_file(path: Path, key: bytes) -> None:
    """Create `path` (0600) holding `key`, durably; replaces a leftover from a crash."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    try:
        data = encode_master_key(key)
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def _finish_key_replacement(path: Path, key_check: bytes) -> None:
    """After a crash in `_replace_master_key`: adopt `.next` if the database was committed
    under it, else discard it (the old key file still matches)."""
    upcoming = _next_key_path(path)
    try:
        content = upcoming.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigurationError(f"cannot read master key file {upcoming}") from exc
    key = decode_master_key(content)
    committed = False
    if key is not None:
        try:
            _verify_key_check(AeadKey(key), key_check)
            committed = True
        except ConfigurationError:
            committed = False
    if committed:
        os.replace(upcoming, path)
    else:
        upcoming.unlink()
    _fsync_dir(path.parent)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, *, write: bool = True) -> Iterator[None]:
    """BEGIN IMMEDIATE (or DEFERRED for reads) ... COMMIT, rolled back on any exception.

    IMMEDIATE takes the write lock up front, so a read-check-write sequence cannot be
    interleaved with another writer's. Never inside the group commit's transaction (its
    writes run in it directly).
    """
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # The original error is the one to report; a failed rollback adds nothing.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _inspect(conn: sqlite3.Connection) -> tuple[bytes | None, bool]:
    """(the stored master key check, whether any tenant exists), reading only."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    key_check = None
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
        key_check = None if row is None else bytes(row[0])
    has_tenants = (
        "tenants" in tables and conn.execute("SELECT 1 FROM tenants LIMIT 1").fetchone() is not None
    )
    return key_check, has_tenants


def _verify_key_check(master: AeadKey, key_check: bytes) -> None:
    try:
        plaintext = master.open(key_check, _KEY_CHECK_AAD)
    except IntegrityError:
        raise ConfigurationError("master key does not match this data directory") from None
    if plaintext != _KEY_CHECK_PLAINTEXT:
        raise ConfigurationError("master key does not match this data directory")


def _parse_key_file(content: bytes, path: Path) -> bytes:
    """A key file holds one line: the standard base64 encoding of 32 bytes."""
    key = decode_master_key(content)
    if key is None:
        # Never echo the content: it may be a real key in the wrong format.
        raise ConfigurationError(
            f"master key file {path} is malformed: expected one line of base64 of {KEY_SIZE} bytes"
        )
    return key


def _create_key_file(path: Path) -> bytes:
    """Create `path` holding a fresh key, mode 0600, durably; or read it if another won."""
    key = random_key()
    # Write a temporary file, then hard-link it into place: `path` is either absent or
    # complete, even after a crash, and linking fails rather than replace a key.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        try:
            data = encode_master_key(key)
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            # Another process created it between our read and now: use theirs.
            return _parse_key_file(path.read_bytes(), path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise ConfigurationError(f"cannot create master key file {path}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tenant_row(conn: sqlite3.Connection, tenant: str) -> tuple[str, bytes, int] | None:
    row = conn.execute(
        "SELECT key_id, wrapped_key, key_term FROM tenants WHERE tenant = ?", (tenant,)
    ).fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]), int(row[2]))


def _load_terms(conn: sqlite3.Connection, master: AeadKey) -> KeyTerms:
    """The key terms (created with term 1 on first open); inside the opening transaction.

    Stores from before key terms get the `key_term` column (0: wrapped by the master key).
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tenants)")}
    if "key_term" not in columns:
        conn.execute("ALTER TABLE tenants ADD COLUMN key_term INTEGER NOT NULL DEFAULT 0")
    row = conn.execute("SELECT value FROM meta WHERE name = 'keyring'").fetchone()
    if row is not None:
        try:
            return KeyTerms.open(master, bytes(row[0]))
        except IntegrityError:
            raise ConfigurationError("the stored keyring failed authentication") from None
    terms = KeyTerms.new(time.time_ns())
    conn.execute("INSERT INTO meta (name, value) VALUES ('keyring', ?)", (terms.seal(master),))
    return terms


def _revision(conn: sqlite3.Connection, tenant: str, mount: str, key: str) -> int | None:
    row = conn.execute(
        "SELECT revision FROM records WHERE tenant = ? AND mount = ? AND key = ?",
        (tenant, mount, key),
    ).fetchone()
    return None if row is None else int(row[0])


def _range_scan(
    tenant: str, mount: str, low: str, upper: str | None
) -> tuple[str, tuple[str, ...]]:
    """The statement and parameters for the keys in [low, upper) of one mount, in order."""
    if upper is None:
        return (
            "SELECT key FROM records WHERE tenant = ? AND mount = ? AND key >= ? ORDER BY key",
            (tenant, mount, low),
        )
    return (
        "SELECT key FROM records WHERE tenant = ? AND mount = ? AND key >= ? AND key < ?"
        " ORDER BY key",
        (tenant, mount, low, upper),
    )


def _record_aad(tenant: str, key_id: str, mount: str, key: str) -> bytes:
    return encode_aad(_RECORD_LABEL, tenant, key_id, mount, key)


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, or None if none is.

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so this increments
    the last code point that can be incremented (stepping over the surrogate range, which
    UTF-8 cannot hold) and drops the U+10FFFF characters after it.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop())
        if code == 0x10FFFF:
            continue
        code += 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        return "".join(chars) + chr(code)
    return None


def _tenant_not_found(tenant: str) -> NotFoundError:
    return NotFoundError(f"tenant {tenant!r} not found")


def _conflict(tenant: str, mount: str) -> ConflictError:
    # Keys can embed token hashes: name the tenant and mount only.
    return ConflictError(f"record changed since it was read (tenant {tenant!r}, mount {mount!r})")


def _create_private(path: Path) -> None:
    """Create the database file owner-only (0600) before SQLite does: its -wal and -shm files
    inherit the database's mode, so the whole store stays private even in a shared directory."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _translate_error(exc: sqlite3.Error) -> BackendError:
    """Map a sqlite3 error to ours; the message never carries statement parameters."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL:
        return BackendUnavailableError("storage full")
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_PROTOCOL):
        return BackendUnavailableError("sqlite database is locked")
    if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
        return BackendUnavailableError("sqlite disk I/O error")
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return BackendError("sqlite database is corrupt or not a tenantvault database")
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    return BackendError(f"sqlite error: {name}")
