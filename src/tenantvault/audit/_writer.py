"""A dedicated writer thread with group commit: callers await their own entry's durability.

Many concurrent requests share one fsync: the thread takes everything queued, seals the
entries into the chain in order, writes them in one go and makes them durable once, then wakes
every waiting caller. A failed batch is rolled back (chain state and, where possible, the bytes
written) so the chain never includes an entry that a caller was told had failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from tenantvault._clock import format_time, system_clock
from tenantvault.audit._chain import ChainHead, ChainState, seal_entry

__all__ = ["BatchWriter"]

_STOP = object()

# Called in the writer thread with the sealed lines of one batch; must make them durable or raise.
WriteBatch = Callable[[list[bytes]], None]
# Called in the writer thread after a failed batch, to undo partial effects (e.g. truncate).
Rollback = Callable[[], None]
# Called in the writer thread after each durable batch with the chain's new head and the
# reason of its last entry if that is a checkpoint ("" otherwise). Must not block.
OnWritten = Callable[[ChainHead, str], None]


class BatchWriter:
    """Owns a sink's chain state and its writer thread."""

    def __init__(
        self,
        name: str,
        write_batch: WriteBatch,
        *,
        rollback: Rollback | None = None,
        state: ChainState | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
        clock: Callable[[], float],
        on_written: OnWritten | None = None,
    ) -> None:
        self.state = state or ChainState()
        # The head of what is durably written (`state` runs ahead while a batch is in flight).
        self.written = ChainHead(self.state.seq, self.state.last_hash)
        self.on_written = on_written
        self._write_batch = write_batch
        self._rollback = rollback
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._checkpoint_every = checkpoint_every
        self._checkpoint_seconds = checkpoint_seconds
        self._clock = clock
        self._last_checkpoint_seq = self.state.seq
        self._last_checkpoint_time = clock()
        self._thread = threading.Thread(target=self._run, name=f"audit-{name}", daemon=True)
        self._thread.start()

    def submit(self, entry: dict[str, Any]) -> Future[None]:
        future: Future[None] = Future()
        self._queue.put((entry, future))
        return future

    async def write(self, entry: dict[str, Any]) -> None:
        await asyncio.wrap_future(self.submit(entry))

    def checkpoint(self, reason: str) -> Future[None]:
        return self.submit(self._checkpoint_entry(reason))

    def _checkpoint_entry(self, reason: str) -> dict[str, Any]:
        return {"type": "checkpoint", "reason": reason, "time": format_time(system_clock())}

    def close(self, timeout: float = 2.0) -> None:
        """Write a closing checkpoint, then stop the thread (idempotent)."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.checkpoint("close").result(timeout)
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            batch: list[tuple[dict[str, Any], Future[None]]] = []
            for item in items:
                if item is _STOP:
                    continue
                batch.append(item)
                # A rotation checkpoint closes its group: what went to the old file is final
                # and never rolled back with a failure of the new one.
                if item[0].get("reason") == "reopen":
                    self._write(batch)
                    batch = []
            if batch:
                self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[dict[str, Any], Future[None]]]) -> None:
        saved = ChainState(self.state.seq, self.state.last_hash)
        lines = [seal_entry(self.state, entry) for entry, _ in batch]
        due = (
            self.state.seq - self._last_checkpoint_seq >= self._checkpoint_every
            or self._clock() - self._last_checkpoint_time >= self._checkpoint_seconds
        )
        if due and batch[-1][0].get("type") != "checkpoint":
            lines.append(seal_entry(self.state, self._checkpoint_entry("interval")))
        try:
            self._write_batch(lines)
        except BaseException as error:  # noqa: BLE001 -- every failure fails the batch's callers
            self.state = saved
            if self._rollback is not None:
                with contextlib.suppress(Exception):
                    self._rollback()
            failure = error if isinstance(error, Exception) else RuntimeError("audit write failed")
            for _, future in batch:
                _settle(future, failure)
            return
        last = batch[-1][0] if len(lines) == len(batch) else {"type": "checkpoint"}
        if due or last.get("type") == "checkpoint":
            self._last_checkpoint_seq = self.state.seq
            self._last_checkpoint_time = self._clock()
        self.written = ChainHead(self.state.seq, self.state.last_hash)
        if self.on_written is not None:
            reason = str(last.get("reason", "interval")) if last.get("type") == "checkpoint" else ""
            with contextlib.suppress(Exception):  # a lost head update only widens the lag
                self.on_written(self.written, reason)
        for _, future in batch:
            _settle(future, None)


def _settle(future: Future[None], error: Exception | None) -> None:
    """Resolve a caller's future unless the caller gave up (timed out) already."""
    with contextlib.suppress(InvalidStateError):
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
