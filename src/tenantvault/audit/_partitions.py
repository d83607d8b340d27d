"""The queryable audit store's database, partitioned by tenant incarnation (layout: `_layout`).

Writes: the writer thread's batch is grouped by partition and committed in one transaction,
partitions seen for the first time created inside it — one WAL fsync per batch, as with one
table. Reads: a `Partition` reads one partition. A tenant's is opened on a connection of its
own that SQLite's authorizer confines to that partition's table (and to reading): whatever
SQL runs on it, no other partition, the catalog or the schema can be read. Root's partitions
are read on the writer's connection, which reads everything, as the operator may.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, final

import orjson

from tenantvault.audit._chain import GENESIS, ChainState
from tenantvault.audit._layout import (
    PARTITION_COLUMNS,
    create_layout,
    create_partition,
    has_layout,
    table_of,
)
from tenantvault.audit._migrate import has_single_table, migrate_single_table
from tenantvault.audit._redact import Redactor

__all__ = ["MEMORY_STORE_ENTRIES", "PRUNE_CHUNK_ROWS", "AuditDatabase", "Partition"]

logger = logging.getLogger("tenantvault.audit")

# WAL pages past which a commit checkpoints (see `_open`).
WAL_CHECKPOINT_PAGES = 100
# The entries a store in memory keeps (`AuditDatabase.keep_newest`): an entry takes about
# 1.5 KiB there (the sealed line, its indexed columns and their index entries), so the
# newest 50,000 hold ~75 MiB. Unbounded, `serve --dev` grew by 2.9 MB/s at 1,000 audited
# reads/s (bench/soak.py) until the machine ran out of memory; on disk the operator's
# retention applies instead, as for any log.
MEMORY_STORE_ENTRIES = 50_000
# Rows a prune (`AuditDatabase.prune`) deletes per transaction: the writer thread waits for
# one such chunk at most (a few milliseconds), not for the whole prune.
PRUNE_CHUNK_ROWS = 2_000

_INSERT = ", ".join(PARTITION_COLUMNS)
_ROW_PLACES = "(" + ", ".join("?" for _ in PARTITION_COLUMNS) + ")"
# Rows go in with multi-row INSERTs of these sizes (largest first), never one statement per
# row: Python's sqlite3 releases the GIL around every statement step and must win it back
# after, and in a busy server winning it back waits up to the switch interval (5 ms). Row by
# row (`executemany`), a batch of 50 entries beside a busy event loop took 140 ms (p50) in a
# bench of this machine, against 17 ms in one statement. Sizes in powers of two: a batch of
# n rows takes n // 64 statements and one per bit of n % 64 (three on average), from seven
# statements per partition in SQLite's prepared-statement cache; 64 rows bind 768 values,
# under SQLite's oldest limit of 999.
_CHUNKS = (64, 32, 16, 8, 4, 2, 1)
_VALUES = {size: ", ".join([_ROW_PLACES] * size) for size in _CHUNKS}
# A partition's key: (tenant, tenant_uid); ('', '') is the root partition's.
Key = tuple[str, str]
Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]

# One lock per database file in this process. Connections to one shared cache must never
# overlap (SQLite answers SQLITE_LOCKED at once instead of waiting), even when two sinks
# were pointed at the same file.
_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _lock_for(target: str) -> threading.Lock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(target, threading.Lock())


def _confined_to(table: str) -> Authorizer:
    """SQLite authorizer: reading `table` (and calling functions) only; everything else denied."""

    def authorize(
        action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if action == sqlite3.SQLITE_SELECT or action == sqlite3.SQLITE_FUNCTION:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ and arg1 == table:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize


@final
class Partition:
    """Read access to one partition: the entries of one tenant incarnation, or root's own.

    Its queries name the table as `{events}`; the partition puts its own there. It holds no
    tenant, no catalog and no way to open another partition.
    """

    __slots__ = ("_conn", "_lock", "_owned", "_table", "ids", "keeps_newest", "redactor")

    def __init__(
        self,
        conn: sqlite3.Connection,
        lock: threading.Lock,
        table: str,
        *,
        redactor: Redactor,
        owned: bool,
        ids: tuple[int, int] | None = None,
        keeps_newest: int | None = None,
    ) -> None:
        self._conn = conn
        self._lock = lock
        self._table = table
        self._owned = owned
        # The store's salted HMAC, for matching an accessor the caller names in its queries.
        self.redactor = redactor
        # The first and last row id it held when handed out (None: not known), so that a
        # page over many partitions reads only those that can hold its rows.
        self.ids = ids
        # The store's retention (None: it keeps everything), for the reader to say so.
        self.keeps_newest = keeps_newest

    def __repr__(self) -> str:
        return f"Partition({self._table})"

    def read(self, template: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        """The rows of `template` (SQL naming this partition's table `{events}`), blocking."""
        sql = template.format(events=self._table)
        with self._lock:
            return list(self._conn.execute(sql, tuple(params)).fetchall())

    def close(self) -> None:
        """Close the partition's own connection (a tenant's); idempotent."""
        if self._owned:
            with self._lock:
                self._conn.close()


class AuditDatabase:
    """The partitioned SQLite database of a store sink: batched writes, partition handles."""

    def __init__(self, path: Path | None, *, keep_newest: int | None = None) -> None:
        """Open (or create) the store at `path` (None: in memory, private to this object).

        `keep_newest`: delete the oldest entries once the store holds about a tenth more
        than this many (None: keep every entry).
        """
        if keep_newest is not None and keep_newest < 1:
            raise ValueError("keep_newest must be at least 1")
        self.keep_newest = keep_newest
        # The trim runs once per tenth of `keep_newest` new rows, not per batch: one DELETE
        # per partition that holds old rows, amortized over thousands of inserts.
        self._trim_step = max(1, keep_newest // 10) if keep_newest is not None else 0
        # Every row id up to this one has been trimmed (`_trim`); 0: none yet.
        self._trimmed_through = 0
        # Every connection shares one cache, so one parse of the schema (which grows with the
        # partitions) serves them all: a tenant's confined connection opens in well under a
        # millisecond with thousands of partitions, where a private one parses it whole. All
        # access is serialized by `_lock`, so the cache's table locks never conflict.
        if path is None:
            # Named: a tenant's connection must reach the writer's in-memory database.
            self._target = (
                f"file:tenantvault-audit-{secrets.token_hex(16)}?mode=memory&cache=shared"
            )
        else:
            # Owner-only, like the store: SQLite's -wal and -shm files inherit this mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self._target = f"{Path(os.path.abspath(path)).as_uri()}?cache=shared"
        self._lock = threading.Lock() if path is None else _lock_for(self._target)
        self._conn = self._connect()
        try:
            self._open()
        except BaseException:
            self._conn.close()  # a store that cannot open holds no connection (nor its file)
            raise

    def _open(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + FULL, like the data store: an acknowledged request's entries survive power
        # loss as its data does. The cost is one WAL fsync per batch, not per request.
        self._conn.execute("PRAGMA synchronous=FULL")
        # SQLite checkpoints the WAL inside the commit that takes it past this many pages,
        # and every request waiting on that batch waits for the checkpoint too. At SQLite's
        # default (1,000 pages, ~4 MiB: 0.4 s of audited reads at 5,000/s) one commit in a few
        # hundred took 40-110 ms under load on the bench machine, the store's p99 and max;
        # at 100 pages checkpoints come ten times as often and the longest commit seen was
        # 24 ms (bench/RESULTS.md, 2026-12-03). Same total work; only the pauses shrink.
        self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        self._open_layout()
        self._load_catalog()
        seq, digest = self._conn.execute("SELECT seq, hash FROM audit_head").fetchone()
        # Where the chain stands: the writer resumes it from here.
        self.chain = ChainState(int(seq), str(digest)) if seq else None

    def _load_catalog(self) -> None:
        """Read the catalog, the last row id and each partition's first and last row id."""
        self._partitions: dict[Key, int] = {
            (str(tenant), str(uid)): int(number)
            for number, tenant, uid in self._conn.execute(
                "SELECT id, tenant, tenant_uid FROM audit_partitions"
            )
        }
        # The highest partition number: the next new partition gets the one after it.
        self._top = max(self._partitions.values())
        # Each partition's first and last row id ((0, 0): empty), kept as batches commit. Read
        # on first use (`_span`), not here: opening a store of 10,000 tenants would otherwise
        # query 10,000 tables before serving anyone.
        self._ids: dict[int, tuple[int, int]] = {}
        self._last_id = int(self._conn.execute("SELECT last_id FROM audit_head").fetchone()[0])

    def _sync(self) -> None:
        """In a write transaction: take up what another writer of the file (a process
        sharing it) added since, rather than collide with its row ids or partitions."""
        last_id, top = self._conn.execute(
            "SELECT (SELECT last_id FROM audit_head), (SELECT max(id) FROM audit_partitions)"
        ).fetchone()
        if (int(last_id), int(top)) != (self._last_id, self._top):
            self._load_catalog()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._target, uri=True, check_same_thread=False, isolation_level=None
        )

    def _open_layout(self) -> None:
        """Create the layout, or migrate a single-table store to it, atomically."""
        # IMMEDIATE: two processes opening the same old store must not both migrate it.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if not has_layout(self._conn):
                if has_single_table(self._conn):
                    migrate_single_table(self._conn)
                else:
                    create_layout(self._conn, last_id=0, seq=0, digest=GENESIS)
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def append(self, lines: list[bytes], entries: list[dict[str, Any]] | None = None) -> None:
        """Store one batch of sealed lines in one transaction (the writer thread's call).

        `entries` are the lines' entries as sealed (the writer has them: parsing each line
        again would cost more than its insert); without them the lines are parsed.
        """
        groups: dict[Key, list[list[Any]]] = {}
        ordered: list[list[Any]] = []  # the same rows, in chain order: ids follow it
        entry: dict[str, Any] = {}
        for index, line in enumerate(lines):
            entry = entries[index] if entries is not None else orjson.loads(line)
            request = entry.get("request") or {}
            response = entry.get("response") or {}
            namespace = request.get("namespace") or {}
            key = (str(request.get("tenant") or ""), str(namespace.get("id") or ""))
            row: list[Any] = [
                0,  # the row id, numbered below under the write lock
                entry["seq"],
                int(entry.get("time_ns", 0)),
                entry["type"],
                request.get("id", ""),
                request.get("operation", ""),
                request.get("mount", ""),
                request.get("path", ""),
                response.get("outcome", ""),
                response.get("status", 0),
                (entry.get("auth") or {}).get("accessor", ""),
                line.rstrip(b"\n"),
            ]
            groups.setdefault(key, []).append(row)
            ordered.append(row)
        if not groups:
            return
        with self._lock:
            created: dict[Key, int] = {}
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._sync()
                last_id = self._last_id
                for row in ordered:
                    last_id += 1
                    row[0] = last_id
                touched = []
                for key, rows in groups.items():
                    number = self._number_of(key, created)
                    self._insert(table_of(number), rows)
                    touched.append((number, rows[0][0], rows[-1][0]))
                self._conn.execute(
                    "UPDATE audit_head SET last_id = ?, seq = ?, hash = ? WHERE one = 1",
                    (last_id, entry["seq"], entry["hash"]),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            # Only what committed: a failed batch leaves no partition behind in the catalog.
            self._commit_created(created)
            self._last_id = last_id
            for number, first, last in touched:
                known = self._ids.get(number)
                if known is not None:
                    self._ids[number] = (known[0] or first, last)
                elif number in created.values():
                    self._ids[number] = (first, last)
                # Otherwise not read yet: `_span` reads it, with these rows, when needed.
            if self.keep_newest is not None:
                through = last_id - self.keep_newest
                if through - self._trimmed_through >= self._trim_step:
                    self._trim(through)

    def _trim(self, through: int) -> None:
        """Delete every row whose id is `through` or less, in one transaction (under `_lock`).

        Ids are global, so this keeps the store's newest rows whichever partitions hold
        them. A partition's first id becomes a lower bound (`through + 1`), which is all
        `_query._page` needs of it.
        """
        spans: dict[int, tuple[int, int]] = {}
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for number in self._partitions.values():
                first, last = self._span(number)
                if first and first <= through:
                    self._conn.execute(
                        f"DELETE FROM {table_of(number)} WHERE id <= ?",  # noqa: S608 -- an integer
                        (through,),
                    )
                    spans[number] = (through + 1, last) if last > through else (0, 0)
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            # The batch before it committed, and its requests must not fail for this: the
            # rows stay until the next batch's attempt.
            self._rollback()
            logger.warning(
                "audit store: trimming the oldest entries failed (%s)",
                getattr(error, "sqlite_errorname", type(error).__name__),
            )
            return
        except BaseException:
            self._rollback()
            raise
        self._ids.update(spans)
        self._trimmed_through = through

    def prune(self, before_ns: int, *, chunk: int = PRUNE_CHUNK_ROWS) -> int:
        """Delete the entries older than `before_ns` from every partition; how many went.

        Blocking (a worker thread's call). The cut is by row id: the least id, over all
        partitions, of an entry of `before_ns` or later (by the time index), so every entry
        after it stays, also one without a time (a checkpoint of a sink's opening) or one
        whose clock ran a little behind. The lock is taken per statement and rows go `chunk`
        at a time, each chunk its own transaction, so the writer thread's batches wait for
        one statement at most, never for the whole prune of a store that grew for months or
        holds thousands of partitions.
        """
        with self._lock:
            numbers = sorted(self._partitions.values())
            cut = self._last_id + 1
        for number in numbers:
            with self._lock:
                row = self._conn.execute(
                    f"SELECT id FROM {table_of(number)} WHERE time_ns >= ?"  # noqa: S608 -- an integer
                    " ORDER BY time_ns, id LIMIT 1",
                    (before_ns,),
                ).fetchone()
            if row is not None:
                cut = min(cut, int(row[0]))
        deleted = 0
        for number in numbers:
            with self._lock:
                first, _last = self._span(number)
            if not first or first >= cut:
                continue  # empty, or nothing in it older than the cut: no statement at all
            deleted += self._prune_partition(number, cut, chunk)
        return deleted

    def _prune_partition(self, number: int, cut: int, chunk: int) -> int:
        """Delete partition `number`'s rows with ids below `cut`, `chunk` per transaction."""
        table = table_of(number)
        deleted = 0
        while True:
            with self._lock:
                # Autocommit: each statement is one transaction (`isolation_level=None`).
                removed = self._conn.execute(
                    f"DELETE FROM {table} WHERE id IN"  # noqa: S608 -- an integer
                    f" (SELECT id FROM {table} WHERE id < ? ORDER BY id LIMIT ?)",
                    (cut, chunk),
                ).rowcount
                if removed < chunk:
                    # Every id below the cut is gone: the cut is the partition's new lower
                    # bound (its last id stays an upper one), so the next pass skips it
                    # until it holds older rows again. Empty: (0, 0), as for a new one.
                    first, last = self._span(number)
                    self._ids[number] = (max(first, cut), last) if last >= cut else (0, 0)
            deleted += removed
            if removed < chunk:
                return deleted

    def _insert(self, table: str, rows: list[list[Any]]) -> None:
        """Insert `rows` into `table` in a few multi-row statements (see `_CHUNKS`)."""
        start = 0
        for size in _CHUNKS:
            sql = f"INSERT INTO {table} ({_INSERT}) VALUES {_VALUES[size]}"  # noqa: S608 -- `table` is `table_of` an integer; the rest is fixed
            while len(rows) - start >= size:
                chunk = rows[start : start + size]
                self._conn.execute(sql, [value for row in chunk for value in row])
                start += size

    def _commit_created(self, created: dict[Key, int]) -> None:
        self._partitions.update(created)
        self._top = max((self._top, *created.values()))

    def _number_of(self, key: Key, created: dict[Key, int]) -> int:
        """The number of `key`'s partition, created in the open transaction if it is new."""
        number = self._partitions.get(key, created.get(key))
        if number is None:
            number = max((self._top, *created.values())) + 1
            create_partition(self._conn, number, *key)
            created[key] = number
        return number

    def open_partition(self, tenant: str, tenant_uid: str, *, redactor: Redactor) -> Partition:
        """`tenant`'s partition, on a connection confined to it (created empty if new).

        Blocking (it opens a connection); the caller closes the partition when done.
        """
        key = (tenant, tenant_uid)
        with self._lock:
            if key not in self._partitions:
                created: dict[Key, int] = {}
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._sync()
                    if key not in self._partitions:
                        self._number_of(key, created)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
                self._commit_created(created)
            table = table_of(self._partitions[key])
        conn = self._connect()
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.set_authorizer(_confined_to(table))
        except BaseException:
            conn.close()
            raise
        return Partition(
            conn, self._lock, table, redactor=redactor, owned=True, keeps_newest=self.keep_newest
        )

    def select(
        self, tenant: str | None, tenant_uid: str | None, *, redactor: Redactor
    ) -> list[Partition]:
        """Root's choice of partitions: of `tenant` (None: any) and `tenant_uid` (None: any)."""
        with self._lock:
            numbers = sorted(
                number
                for (name, uid), number in self._partitions.items()
                if (tenant is None or name == tenant) and (tenant_uid is None or uid == tenant_uid)
            )
            return [
                Partition(
                    self._conn,
                    self._lock,
                    table_of(number),
                    redactor=redactor,
                    owned=False,
                    ids=self._span(number),
                    keeps_newest=self.keep_newest,
                )
                for number in numbers
            ]

    def _span(self, number: int) -> tuple[int, int]:
        """Partition `number`'s first and last row id, read once (under `_lock`)."""
        span = self._ids.get(number)
        if span is None:
            first, last = self._conn.execute(
                f"SELECT min(id), max(id) FROM {table_of(number)}"  # noqa: S608 -- an integer
            ).fetchone()
            span = self._ids[number] = (int(first or 0), int(last or 0))
        return span

    def query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Any SQL on the writer's connection (the operator's and the tests' inspection)."""
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()
