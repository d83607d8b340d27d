"""Audit sinks: a JSON-lines file, stdout, and a queryable SQLite store; each has its own salt."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import orjson

from tenantvault._exceptions import ConfigurationError
from tenantvault.audit._chain import ChainState
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._redact import Redactor
from tenantvault.audit._writer import BatchWriter

__all__ = ["AuditSink", "FileSink", "StdoutSink", "StoreSink"]

FSYNC_POLICIES = ("always", "never")
# How a sealed `reopen` checkpoint line reads (sorted-key JSON): the rotation boundary.
_REOPEN_MARK = b'"reason":"reopen"'


class AuditSink(Protocol):
    """Where audit entries go. `write` returns once the entry is recorded, or raises."""

    name: str
    type: str
    redactor: Redactor

    @property
    def options(self) -> dict[str, str]: ...

    async def write(self, event: AuditEvent) -> None: ...

    def reopen(self) -> None: ...

    async def aclose(self) -> None: ...


def _tail_state(path: Path) -> ChainState | None:
    """Resume the chain from the last complete line of an existing log, if it has one."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None  # a FIFO or device: nothing to resume, and reading it could block
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            tail = handle.read()
    except FileNotFoundError:
        return None
    lines = [line for line in tail.split(b"\n") if line.strip()]
    if not lines or not tail.endswith(b"\n"):
        return None
    try:
        last = orjson.loads(lines[-1])
        return ChainState(int(last["seq"]), str(last["hash"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class FileSink:
    """Appends sealed JSON lines to a file; fsync per batch (`always`) or not (`never`).

    `reopen()` (SIGHUP) makes the next batch go to a freshly opened file at the same path, for
    log rotation; the chain continues across files with a `reopen` checkpoint.
    """

    type = "file"

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        salt: bytes,
        fsync: str = "always",
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ConfigurationError(f"audit fsync policy must be one of {FSYNC_POLICIES}")
        self.name = name
        self.path = Path(path)
        self.fsync = fsync
        self.redactor = Redactor(salt)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._reopen = False
        self._good_size = 0
        state = _tail_state(self.path)
        self._writer = BatchWriter(
            name,
            self._write_batch,
            rollback=self._truncate_to_good,
            state=state,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            clock=time.monotonic,
        )
        self._writer.checkpoint("open")

    def __repr__(self) -> str:
        return f"FileSink(name={self.name!r}, path={str(self.path)!r})"

    @property
    def options(self) -> dict[str, str]:
        return {"file_path": str(self.path), "fsync": self.fsync}

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._good_size = os.fstat(fd).st_size
        return fd

    def _write_batch(self, lines: list[bytes]) -> None:
        # A rotation (SIGHUP) ends the old file with its `reopen` checkpoint, so the rotated
        # file verifies on its own; the lines after it go to the file now at the path.
        cut = len(lines)
        if self._reopen:
            cut = next((i + 1 for i, line in enumerate(lines) if _REOPEN_MARK in line), cut)
        self._append(lines[:cut])
        if cut < len(lines) or (self._reopen and cut and _REOPEN_MARK in lines[cut - 1]):
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._reopen = False
            self._append(lines[cut:])

    def _append(self, lines: list[bytes]) -> None:
        if not lines:
            return
        if self._fd is None:
            self._fd = self._open()
        data = b"".join(lines)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync == "always":
            os.fsync(self._fd)
        self._good_size += len(data)

    def _truncate_to_good(self) -> None:
        # Remove a torn batch (ENOSPC mid-write) so the chain on disk stays what we acknowledged.
        # Then close: the next batch reopens the path, which is how a sink recovers by itself
        # (space freed, volume remounted, file recreated) without a restart.
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, self._good_size)
            finally:
                os.close(fd)

    async def write(self, event: AuditEvent) -> None:
        await self._writer.write(event.render(self.redactor))

    def reopen(self) -> None:
        self._reopen = True
        self._writer.checkpoint("reopen")

    async def aclose(self) -> None:
        await asyncio.to_thread(self._writer.close)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class StdoutSink:
    """Sealed JSON lines on standard output, for containers whose runtime collects stdout."""

    type = "stdout"

    def __init__(self, name: str, *, salt: bytes) -> None:
        self.name = name
        self.redactor = Redactor(salt)
        self._writer = BatchWriter(name, self._write_batch, clock=time.monotonic)
        self._writer.checkpoint("open")

    @property
    def options(self) -> dict[str, str]:
        return {}

    @staticmethod
    def _write_batch(lines: list[bytes]) -> None:
        sys.stdout.buffer.write(b"".join(lines))
        sys.stdout.buffer.flush()

    async def write(self, event: AuditEvent) -> None:
        await self._writer.write(event.render(self.redactor))

    def reopen(self) -> None:
        """Nothing to reopen: stdout is not rotated by us."""

    async def aclose(self) -> None:
        await asyncio.to_thread(self._writer.close)


_STORE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, time_ns INTEGER NOT NULL,"
    " type TEXT NOT NULL, request_id TEXT NOT NULL, tenant TEXT NOT NULL,"
    " operation TEXT NOT NULL, mount TEXT NOT NULL, path TEXT NOT NULL,"
    " outcome TEXT NOT NULL, status INTEGER NOT NULL, accessor TEXT NOT NULL,"
    " entry BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_tenant_time ON events (tenant, time_ns)",
    "CREATE INDEX IF NOT EXISTS events_request ON events (request_id)",
)


class StoreSink:
    """A queryable SQLite store of audit entries (a file in embedded mode, memory in dev mode).

    Rows keep the sealed entry plus indexed columns for queries: tenant, time, operation,
    path, outcome and the accessor's HMAC. Queries never see anything the entry did not hold.
    """

    type = "store"

    def __init__(self, name: str, path: Path | None, *, salt: bytes) -> None:
        self.name = name
        self.path = path
        self.redactor = Redactor(salt)
        target = str(path) if path is not None else ":memory:"
        if path is not None:
            # Owner-only, like the store: SQLite's -wal and -shm files inherit this mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed entry survives the process being killed (kill -9), which
        # is what "audited before the engine runs" needs; only an OS crash or power loss can
        # lose the last entries. FULL would add two fsyncs to every request. A file sink with
        # fsync=always is the choice for power-loss durability of the trail.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        for statement in _STORE_SCHEMA:
            self._conn.execute(statement)
        self._lock = threading.Lock()
        row = self._conn.execute(
            "SELECT seq, entry FROM events ORDER BY id DESC LIMIT 1"
        ).fetchone()
        state = None
        if row is not None:
            state = ChainState(int(row[0]), str(orjson.loads(row[1])["hash"]))
        self._writer = BatchWriter(
            name,
            self._write_batch,
            state=state,
            clock=time.monotonic,
            checkpoint_every=10**9,
            checkpoint_seconds=float("inf"),
        )

    @property
    def options(self) -> dict[str, str]:
        return {"path": str(self.path) if self.path else ":memory:"}

    def _write_batch(self, lines: list[bytes]) -> None:
        rows = []
        for line in lines:
            entry = orjson.loads(line)
            request = entry.get("request") or {}
            response = entry.get("response") or {}
            auth = entry.get("auth") or {}
            rows.append(
                (
                    entry["seq"],
                    self._time_ns(entry),
                    entry["type"],
                    request.get("id", ""),
                    request.get("tenant", ""),
                    request.get("operation", ""),
                    request.get("mount", ""),
                    request.get("path", ""),
                    response.get("outcome", ""),
                    response.get("status", 0),
                    auth.get("accessor", ""),
                    line.rstrip(b"\n"),
                )
            )
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO events (seq, time_ns, type, request_id, tenant, operation,"
                    " mount, path, outcome, status, accessor, entry)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @staticmethod
    def _time_ns(entry: dict[str, Any]) -> int:
        return int(entry.get("time_ns", 0))

    async def write(self, event: AuditEvent) -> None:
        await self._writer.write(event.render(self.redactor))

    def query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def reopen(self) -> None:
        """A database is not rotated by logrotate; nothing to do."""

    async def aclose(self) -> None:
        await asyncio.to_thread(self._writer.close)
        with self._lock:
            self._conn.close()
