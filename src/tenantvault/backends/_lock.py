"""One process at a time per data directory: an OS lock on `DATA_DIR/tenantvault.lock`.

Why: the embedded store keeps an exact cache of its records (`_record_cache`) and the audit
store keeps the head of its hash chain in memory; a second process writing the same files
would make both silently wrong. So `tenantvault serve` holds the lock for its whole life and
every open `SqliteBackend` holds it while open; a second holder gets a `ConfigurationError`
naming the process that has it.

`flock(2)`, not `fcntl` record locks (any `close()` of the file anywhere in the process drops
those), on a file that is never deleted: the kernel releases it when the holder dies, even by
SIGKILL, so a crash never leaves a stale lock behind.

Within one process the lock is shared by roles: the server ("server") and its open store
("store") hold it together, but each role at most once at a time — two stores open on one
directory would each cache on their own. A store being opened waits up to `wait_seconds` for
another one of this process to close (after a seal, the store of the sealed Core closes once
its last request is done, and an unseal may come first).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Final

from tenantvault._exceptions import ConfigurationError

__all__ = ["LOCK_FILENAME", "DataDirLock", "lock_data_dir"]

LOCK_FILENAME: Final = "tenantvault.lock"

# The locks this process holds: (st_dev, st_ino) of the lock file -> its descriptor and the
# roles holding it. Bounded by the data directories open at once.
_held: dict[tuple[int, int], tuple[int, Counter[str]]] = {}
_released = threading.Condition()


class DataDirLock:
    """One role's hold on a data directory's lock; `release()` it (idempotent)."""

    def __init__(self, path: Path, identity: tuple[int, int], role: str) -> None:
        self._path = path
        self._identity = identity
        self._role = role
        self._released = False

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"DataDirLock({str(self._path)!r}, role={self._role!r}, {state})"

    def release(self) -> None:
        """Give up this role's hold; the OS lock goes with the last role of the process."""
        with _released:
            if self._released:
                return
            self._released = True
            fd, roles = _held[self._identity]
            roles[self._role] -= 1
            if roles[self._role] <= 0:
                del roles[self._role]
            if not roles:
                del _held[self._identity]
                os.close(fd)  # releases the flock
            _released.notify_all()


def lock_data_dir(data_dir: Path, *, role: str, wait_seconds: float = 0.0) -> DataDirLock:
    """Hold `data_dir`'s lock as `role`, creating the directory (0700) if needed.

    `ConfigurationError` if another process holds it, or if `role` holds it in this process
    and does not release it within `wait_seconds`.
    """
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = data_dir / LOCK_FILENAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the lock file in {data_dir}") from exc
    try:
        found = os.fstat(fd)
        identity = (found.st_dev, found.st_ino)
        deadline = time.monotonic() + wait_seconds
        with _released:
            while identity in _held and role in _held[identity][1]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConfigurationError(
                        f"the data directory {data_dir} is already open in this process"
                    )
                _released.wait(remaining)
            if identity in _held:
                _held[identity][1][role] += 1
                return DataDirLock(path, identity, role)
            _take(fd, data_dir)
            _held[identity] = (fd, Counter({role: 1}))
            fd = -1  # kept open for as long as the lock is held
            return DataDirLock(path, identity, role)
    finally:
        if fd >= 0:
            os.close(fd)


def _take(fd: int, data_dir: Path) -> None:
    """The OS lock on `fd`, without waiting; then this process's id in the file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        raise ConfigurationError(
            f"the data directory {data_dir} is in use by another tenantvault process"
            f"{'' if holder is None else f' (pid {holder})'}: one process at a time may "
            "use a data directory"
        ) from None
    # For the message above, in the next process that tries; nothing depends on it.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
