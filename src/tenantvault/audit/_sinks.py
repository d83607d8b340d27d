"""Audit sinks: a JSON-lines file, stdout, and a queryable SQLite store; each has its own salt."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from tenantvault._clock import format_time, system_clock
from tenantvault._exceptions import ConfigurationError
from tenantvault.audit._chain import ChainHead, ChainState
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._partitions import MEMORY_STORE_ENTRIES, AuditDatabase, Partition
from tenantvault.audit._redact import Redactor
from tenantvault.audit._writer import BatchWriter, OnWritten

__all__ = ["AuditSink", "FileSink", "StdoutSink", "StoreSink", "StoredHead"]

FSYNC_POLICIES = ("always", "never")
# How a sealed `reopen` checkpoint line reads (sorted-key JSON): the rotation boundary.
_REOPEN_MARK = b'"reason":"reopen"'


class AuditSink(Protocol):
    """Where audit entries go. `write` returns once the entry is recorded, or raises."""

    name: str
    type: str
    redactor: Redactor
    # The sink's writer thread (group commit); the supervisor's `audit` service watches it.
    writer: BatchWriter

    @property
    def options(self) -> dict[str, str]: ...

    def write(self, event: AuditEvent, *, timeout_seconds: float | None = None) -> Awaitable[None]:
        """Render `event` and queue it: awaited, returns once it is recorded, or raises
        (`TimeoutError` if it is not recorded within `timeout_seconds`)."""
        ...

    async def checkpoint(self, reason: str, **fields: Any) -> None:
        """Write a checkpoint entry (e.g. a `gap`), chained like any other entry."""
        ...

    def reopen(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredHead:
    """A file sink's chain head as the broker keeps it in the sealed store."""

    seq: int
    hash: str
    reason: str = ""  # the reason of the head entry if it is a checkpoint
    path: str = ""


@dataclass(slots=True)
class _Tail:
    """What the end of an existing log holds: its last entry, the anchored one, its first."""

    last: dict[str, Any] | None = None
    at_anchor: dict[str, Any] | None = None
    first: dict[str, Any] | None = None
    torn_bytes: int = 0
    readable: bool = True


_CHUNK = 1 << 20


def _checkpoint(reason: str, **fields: Any) -> dict[str, Any]:
    return {"type": "checkpoint", "reason": reason, "time": format_time(system_clock()), **fields}


def _read_tail(path: Path, want_seq: int) -> _Tail | None:
    """Read an existing regular log backwards until the entry `want_seq` (or its start)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None  # a FIFO or device: nothing to resume, and reading it could block
        with path.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            data = b""
            while end > 0:
                start = max(0, end - _CHUNK)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
                first_break = data.find(b"\n")
                if end == 0 or first_break < 0 or first_break == len(data) - 1:
                    continue
                seq = _seq_of(data[first_break + 1 :].split(b"\n", 1)[0])
                if want_seq <= 0 or (seq is not None and seq <= want_seq):
                    break
    except FileNotFoundError:
        return _Tail()
    tail = _Tail()
    body, _, torn = data.rpartition(b"\n")
    lines = [line for line in body.split(b"\n") if line.strip()]
    if end > 0 and lines:
        lines = lines[1:]  # the first line of the window may be cut
    if not lines:
        tail.readable = not torn.strip()
        return tail
    try:
        tail.last = orjson.loads(lines[-1])
        int(tail.last["seq"])
        str(tail.last["hash"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        # Not an audit log (or not one of ours): nothing here is removed, whatever it ends in.
        tail.last = None
        tail.readable = False
        return tail
    # After a sealed entry, a last line without its newline is one a crash cut mid-write.
    tail.torn_bytes = len(torn)
    for line in reversed(lines):
        if _seq_of(line) == want_seq:
            with contextlib.suppress(orjson.JSONDecodeError):
                tail.at_anchor = orjson.loads(line)
            break
    if end == 0:
        with contextlib.suppress(orjson.JSONDecodeError):
            tail.first = orjson.loads(lines[0])
    return tail


def _seq_of(line: bytes) -> int | None:
    try:
        seq = orjson.loads(line)["seq"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return seq if isinstance(seq, int) else None


def _brief(digest: str) -> str:
    return digest[:16] + "…"


def _open_check(path: Path, stored: StoredHead | None) -> tuple[ChainState | None, dict[str, Any]]:
    """Where to resume the chain, and the checkpoint to open with: `open`, or a `gap`.

    The stored head lags the file (it is saved after each batch), never leads it, so the rule
    is: the file must hold the stored head's entry, and end with its `close` checkpoint.
    """
    if stored is not None and stored.path and stored.path != str(path):
        stored = None  # the device now writes another file: a new log, nothing to compare
    tail = _read_tail(path, stored.seq if stored is not None else 0)
    if tail is None:  # not a regular file
        return None, {"reason": "open"}
    last = tail.last
    state = ChainState(int(last["seq"]), str(last["hash"])) if last is not None else None
    problems: list[str] = []
    found: dict[str, Any] | None = (
        {"seq": last["seq"], "hash": last["hash"]} if last is not None else None
    )
    if not tail.readable:
        problems.append("the file does not end with a sealed audit entry: not a log of ours")
    empty = last is None and tail.readable
    if stored is not None:
        rotated = empty and stored.reason == "reopen"
        follows = tail.first is not None and (
            tail.first.get("seq") == stored.seq + 1 and tail.first.get("prev_hash") == stored.hash
        )
        if rotated:
            # Rotated (SIGHUP) and nothing written since: the chain goes on from the head.
            state = ChainState(stored.seq, stored.hash)
        elif tail.at_anchor is not None and tail.at_anchor.get("hash") == stored.hash:
            pass
        elif follows:
            pass
        elif tail.at_anchor is not None:
            problems.append(
                f"entry seq {stored.seq} in the log is not the one written (hash "
                f"{_brief(str(tail.at_anchor.get('hash')))}, written {_brief(stored.hash)}): "
                "the log was rewritten"
            )
        elif empty:
            problems.append(
                f"the log is empty or missing, but entries up to seq {stored.seq} "
                f"(hash {_brief(stored.hash)}) were written to it"
            )
        elif last is not None and int(last["seq"]) < stored.seq:
            problems.append(
                f"the log ends at seq {last['seq']}, but entries up to seq {stored.seq} "
                f"(hash {_brief(stored.hash)}) were written: seq {int(last['seq']) + 1}.."
                f"{stored.seq} are missing (cut or lost)"
            )
        else:
            problems.append(
                f"the written entry seq {stored.seq} (hash {_brief(stored.hash)}) is not in "
                "the log: it was replaced"
            )
        if not problems and not rotated and not _is_close(last):
            problems.append(_unclean(last, stored))
    elif last is not None and not _is_close(last):
        problems.append(_unclean(last, None))
    if tail.torn_bytes:
        problems.append(f"a torn last line of {tail.torn_bytes} bytes was removed")
    if not problems:
        return state, {"reason": "open"}
    return state, {
        "reason": "gap",
        "expected": {"seq": stored.seq, "hash": stored.hash} if stored is not None else None,
        "found": found,
        "torn_bytes": tail.torn_bytes,
        "detail": "; ".join(problems),
    }


def _is_close(entry: dict[str, Any] | None) -> bool:
    return (
        entry is not None and entry.get("type") == "checkpoint" and entry.get("reason") == "close"
    )


def _unclean(last: dict[str, Any] | None, stored: StoredHead | None) -> str:
    at = last.get("seq") if last is not None else "?"
    vouched = f"; the server's record vouches for entries up to seq {stored.seq}" if stored else ""
    return (
        f"the log's writer stopped without closing it (a crash or kill -9) after seq {at}"
        f"{vouched}; later entries, if any, may be missing"
    )


class FileSink:
    """Appends sealed JSON lines to a file; fsync per batch (`always`) or not (`never`).

    `reopen()` (SIGHUP) makes the next batch go to a freshly opened file at the same path, for
    log rotation; the chain continues across files with a `reopen` checkpoint.

    On open, an existing log is checked against `stored` (the head the broker kept in the
    sealed store): if the log lacks it, or ends without its `close` checkpoint, the sink opens
    with a `gap` checkpoint saying so, instead of resuming as if nothing happened.
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
        stored: StoredHead | None = None,
        on_written: OnWritten | None = None,
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
        self._syncs = True
        state, opening = _open_check(self.path, stored)
        if opening.get("torn_bytes"):
            # A line cut by a crash mid-write was never acknowledged; left in place it would
            # break the chain for every entry after it. The gap checkpoint records its size.
            os.truncate(self.path, self.path.stat().st_size - int(opening["torn_bytes"]))
        # The `gap` checkpoint this sink opened with (the log did not hold what was written
        # to it, or its writer died), for health; None if the log was intact.
        self.gap: dict[str, Any] | None = opening if opening["reason"] == "gap" else None
        self.writer = BatchWriter(
            name,
            self._write_batch,
            rollback=self._truncate_to_good,
            state=state,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            clock=time.monotonic,
            on_written=on_written,
        )
        self.writer.submit(_checkpoint(**opening))

    def __repr__(self) -> str:
        return f"FileSink(name={self.name!r}, path={str(self.path)!r})"

    @property
    def options(self) -> dict[str, str]:
        return {"file_path": str(self.path), "fsync": self.fsync}

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        info = os.fstat(fd)
        self._good_size = info.st_size
        # A FIFO or a device has nothing to sync (fsync fails with EINVAL on a pipe).
        self._syncs = stat.S_ISREG(info.st_mode)
        return fd

    def _write_batch(self, lines: list[bytes], entries: list[dict[str, Any]]) -> None:
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
        if self.fsync == "always" and self._syncs:
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

    def write(
        self, event: AuditEvent, *, timeout_seconds: float | None = None
    ) -> asyncio.Future[None]:
        return self.writer.write(event.render(self.redactor), timeout_seconds=timeout_seconds)

    async def checkpoint(self, reason: str, **fields: Any) -> None:
        await self.writer.write(_checkpoint(reason=reason, **fields))

    @property
    def head(self) -> ChainHead:
        return self.writer.written

    def reopen(self) -> None:
        self._reopen = True
        self.writer.checkpoint("reopen")

    async def aclose(self) -> None:
        self.writer.drain()  # this loop turn's entries go before the closing checkpoint
        await asyncio.to_thread(self.writer.close)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class StdoutSink:
    """Sealed JSON lines on standard output, for containers whose runtime collects stdout."""

    type = "stdout"

    def __init__(self, name: str, *, salt: bytes) -> None:
        self.name = name
        self.redactor = Redactor(salt)
        self.writer = BatchWriter(name, self._write_batch, clock=time.monotonic)
        self.writer.checkpoint("open")

    @property
    def options(self) -> dict[str, str]:
        return {}

    @staticmethod
    def _write_batch(lines: list[bytes], entries: list[dict[str, Any]]) -> None:
        sys.stdout.buffer.write(b"".join(lines))
        sys.stdout.buffer.flush()

    def write(
        self, event: AuditEvent, *, timeout_seconds: float | None = None
    ) -> asyncio.Future[None]:
        return self.writer.write(event.render(self.redactor), timeout_seconds=timeout_seconds)

    async def checkpoint(self, reason: str, **fields: Any) -> None:
        await self.writer.write(_checkpoint(reason=reason, **fields))

    def reopen(self) -> None:
        """Nothing to reopen: stdout is not rotated by us."""

    async def aclose(self) -> None:
        self.writer.drain()  # this loop turn's entries go before the closing checkpoint
        await asyncio.to_thread(self.writer.close)


class StoreSink:
    """A queryable SQLite store of audit entries (a file in embedded mode, memory in dev mode).

    Partitioned by tenant incarnation (`_partitions`): each incarnation's entries in a table
    of their own, entries of no tenant in the root partition. Rows keep the sealed entry plus
    indexed columns for queries: time, operation, path, outcome and the accessor's HMAC.
    Queries never see anything the entry did not hold.
    """

    type = "store"

    def __init__(
        self, name: str, path: Path | None, *, salt: bytes, keep_newest: int | None = None
    ) -> None:
        """A store at `path`, or in memory (None) keeping its newest `keep_newest` entries
        (default `MEMORY_STORE_ENTRIES`: memory must not grow with the requests served)."""
        self.name = name
        self.path = path
        self.redactor = Redactor(salt)
        if path is None and keep_newest is None:
            keep_newest = MEMORY_STORE_ENTRIES
        self._db = AuditDatabase(path, keep_newest=keep_newest)
        self.writer = BatchWriter(
            name,
            self._db.append,
            state=self._db.chain,
            clock=time.monotonic,
            checkpoint_every=10**9,
            checkpoint_seconds=float("inf"),
        )

    def __repr__(self) -> str:
        return f"StoreSink(name={self.name!r})"

    @property
    def options(self) -> dict[str, str]:
        if self.path is not None:
            return {"path": str(self.path)}
        return {"path": ":memory:", "keep_newest": str(self._db.keep_newest)}

    def write(
        self, event: AuditEvent, *, timeout_seconds: float | None = None
    ) -> asyncio.Future[None]:
        return self.writer.write(event.render(self.redactor), timeout_seconds=timeout_seconds)

    async def checkpoint(self, reason: str, **fields: Any) -> None:
        await self.writer.write(_checkpoint(reason=reason, **fields))

    async def prune(self, before_ns: int, *, now_ns: int) -> int:
        """Delete the entries older than `before_ns` (the retention); how many went.

        A prune that deleted anything is itself recorded: a `retention` checkpoint in the
        chain says how many entries went and up to when, so a trail that starts late says
        why (and the checkpoint ages out with the entries after it).
        """
        # Off the loop: the rows go in chunks under the writer's lock (`AuditDatabase.prune`).
        deleted = await asyncio.to_thread(self._db.prune, before_ns)
        if deleted:
            await self.writer.write(
                _checkpoint(
                    reason="retention",
                    time_ns=now_ns,
                    deleted=deleted,
                    before=format_time(before_ns),
                )
            )
        return deleted

    async def open_partition(self, tenant: str, tenant_uid: str) -> Partition:
        """A tenant incarnation's partition, confined to it; the caller closes it."""
        return await asyncio.to_thread(
            self._db.open_partition, tenant, tenant_uid, redactor=self.redactor
        )

    async def select(self, tenant: str | None, tenant_uid: str | None) -> list[Partition]:
        """Root's partitions of `tenant` and `tenant_uid` (None: any), also deleted ones'."""
        # Off the loop: the catalog's lock is the writer's, held through a batch's fsync.
        return await asyncio.to_thread(self._db.select, tenant, tenant_uid, redactor=self.redactor)

    def query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Any SQL over the whole store (operator inspection; never a tenant's path)."""
        return self._db.query(sql, params)

    def reopen(self) -> None:
        """A database is not rotated by logrotate; nothing to do."""

    async def aclose(self) -> None:
        self.writer.drain()  # this loop turn's entries go before the closing checkpoint
        await asyncio.to_thread(self.writer.close)
        self._db.close()
