"""A dedicated writer thread with group commit: callers await their own entry's durability.

Many concurrent requests share one fsync: the thread takes everything queued, seals the
entries into the chain in order, writes them in one go and makes them durable once, then wakes
every waiting caller. A failed batch is rolled back (chain state and, where possible, the bytes
written) so the chain never includes an entry that a caller was told had failed.

A crash of the thread itself (an exception outside the sink's write, which fails only its
batch) is the supervisor's to see (`crash`, `on_crash`) and restart (`restart()`,
`services._audit`): the chain resumes from the durable head, queued entries wait for the new
thread, and the entries the dead thread had taken but not written are taken up again, one at
a time (one that crashes a thread a second time fails, and its request fails closed).

Hand-offs are per batch, not per entry, both ways: entries written from an event loop gather
on that loop (`_LoopSide`) and go to the thread together once per loop turn, and the thread
wakes each loop once per batch (one `call_soon_threadsafe`) to settle all of its waiters. A
caller's timeout is a deadline in a queue of the loop's own, not a timer per entry: entries
share one timeout, so their deadlines come in order and one timer watches the oldest.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from tenantvault._clock import format_time, system_clock
from tenantvault.audit._chain import ChainHead, ChainState, seal_entry

__all__ = ["BatchWriter"]

_STOP = object()

# Called in the writer thread with the sealed lines of one batch and the entries they render
# (the same order; a store indexes their fields without parsing the lines again); must make
# them durable or raise.
WriteBatch = Callable[[list[bytes], list[dict[str, Any]]], None]
# What waits for an entry: a thread's future (`submit`) or a loop's (`write`).
Waiter = Future[None] | asyncio.Future[None]
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
        # Why the writer thread died, if it did; `on_crash` is told in the dying thread (it
        # must not block). Items it had taken but not settled wait in `_carried` for the next.
        self.crash: Exception | None = None
        self.on_crash: Callable[[], None] | None = None
        self._carried: list[Any] = []
        self._settled = 0  # how many entries of `_carried` (in order) a batch settled
        self._retrying = False
        self._closed = False
        self._name = name
        self._lifecycle = threading.Lock()  # one writer thread at a time, whoever restarts it
        # The loop side last written from (nearly always the only one: the server's loop).
        self._side: _LoopSide | None = None
        self._thread = self._spawn()

    def _spawn(self) -> threading.Thread:
        thread = threading.Thread(target=self._main, name=f"audit-{self._name}", daemon=True)
        thread.start()
        return thread

    @property
    def is_alive(self) -> bool:
        """Whether the writer thread runs (False after a crash, until `restart()`)."""
        return self._thread.is_alive()

    def restart(self) -> bool:
        """Start a new writer thread if the last one crashed; True if one was started."""
        with self._lifecycle:
            return self._restart()

    def _restart(self) -> bool:
        if self._closed or self.crash is None:
            return False
        self._thread.join(1.0)  # it set `crash` on its way out: gone in a moment
        if self._thread.is_alive():
            return False
        self.crash = None
        self._thread = self._spawn()
        return True

    def submit(self, entry: dict[str, Any]) -> Future[None]:
        """Queue `entry` from any thread; the future settles once it is durable (or failed)."""
        self.drain()  # after what this loop queued before it: submission order is write order
        future: Future[None] = Future()
        self._queue.put((entry, future))
        return future

    def write(
        self, entry: dict[str, Any], *, timeout_seconds: float | None = None
    ) -> asyncio.Future[None]:
        """Queue `entry` from the running loop: the future settles once it is durable, with
        its batch's error, or with `TimeoutError` past the deadline.

        A future, not a coroutine: the caller awaits it directly (two entries per request,
        each a coroutine and a frame less to resume).
        """
        loop = asyncio.get_running_loop()
        side = self._side
        if side is None or side.loop is not loop:
            side = self._side = _LoopSide(self, loop)
        future: asyncio.Future[None] = loop.create_future()
        side.add(entry, future, timeout_seconds)
        return future

    def drain(self) -> None:
        """Hand what the running loop gathered to the thread now (before a sync submit)."""
        side = self._side
        if side is not None and side.pending:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                return  # another thread: that loop's own turn hands them over
            if running is side.loop:
                side.flush()

    def checkpoint(self, reason: str) -> Future[None]:
        return self.submit(self._checkpoint_entry(reason))

    def _checkpoint_entry(self, reason: str) -> dict[str, Any]:
        return {"type": "checkpoint", "reason": reason, "time": format_time(system_clock())}

    def close(self, timeout: float = 2.0) -> None:
        """Write a closing checkpoint, then stop the thread (idempotent)."""
        with self._lifecycle:
            self._restart()  # a writer that crashed since its last check still flushes its queue
            self._closed = True
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.checkpoint("close").result(timeout)
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 -- a crash: recorded for the supervisor
            self._recover(error)

    def _recover(self, error: Exception) -> None:
        """In the dying thread: resume the chain from the durable head, keep what is unsettled."""
        # Entries sealed but not written are not in the chain: their seqs are given out again.
        self.state = ChainState(self.written.seq, self.written.hash)
        # Counted, not asked of the futures: a loop's future is settled later, on its loop.
        left = [item for item in self._carried if item is not _STOP][self._settled :]
        if self._retrying and left:
            # Taken up one at a time after a crash: this entry crashed a writer twice. Fail
            # it (its request fails closed) and keep the rest going.
            _settle_all([left[0][1]], error)
            left = left[1:]
        stopping = any(item is _STOP for item in self._carried)
        self._carried = [*left, _STOP] if stopping else left
        self.crash = error
        if self.on_crash is not None:
            with contextlib.suppress(Exception):
                self.on_crash()

    def _run(self) -> None:
        while True:
            # A restarted thread first takes up, alone, what the crashed one left unsettled.
            self._retrying = bool(self._carried)
            items = self._carried or _taken(self._queue.get())
            self._carried = items
            self._settled = 0
            while not self._retrying:
                try:
                    items.extend(_taken(self._queue.get_nowait()))
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            batch: list[tuple[dict[str, Any], Waiter]] = []
            for item in items:
                if item is _STOP:
                    continue
                if self._retrying:
                    self._write([item])  # one at a time: a crash now is this entry's alone
                    continue
                batch.append(item)
                # A rotation checkpoint closes its group: what went to the old file is final
                # and never rolled back with a failure of the new one.
                if item[0].get("reason") == "reopen":
                    self._write(batch)
                    batch = []
            if batch:
                self._write(batch)
            self._carried = []
            if stop:
                return

    def _write(self, batch: list[tuple[dict[str, Any], Waiter]]) -> None:
        saved = ChainState(self.state.seq, self.state.last_hash)
        entries = [entry for entry, _ in batch]
        lines = [seal_entry(self.state, entry) for entry in entries]
        due = (
            self.state.seq - self._last_checkpoint_seq >= self._checkpoint_every
            or self._clock() - self._last_checkpoint_time >= self._checkpoint_seconds
        )
        if due and batch[-1][0].get("type") != "checkpoint":
            interval = self._checkpoint_entry("interval")
            lines.append(seal_entry(self.state, interval))
            entries.append(interval)
        try:
            self._write_batch(lines, entries)
        except BaseException as error:  # noqa: BLE001 -- every failure fails the batch's callers
            self.state = saved
            if self._rollback is not None:
                with contextlib.suppress(Exception):
                    self._rollback()
            failure = error if isinstance(error, Exception) else RuntimeError("audit write failed")
            self._settled += len(batch)
            _settle_all((future for _, future in batch), failure)
            return
        # Durable: the head and the callers first, so a crash after this never writes it again.
        self.written = ChainHead(self.state.seq, self.state.last_hash)
        self._settled += len(batch)
        _settle_all((future for _, future in batch), None)
        last = batch[-1][0] if len(lines) == len(batch) else {"type": "checkpoint"}
        if due or last.get("type") == "checkpoint":
            self._last_checkpoint_seq = self.state.seq
            self._last_checkpoint_time = self._clock()
        if self.on_written is not None:
            reason = str(last.get("reason", "interval")) if last.get("type") == "checkpoint" else ""
            with contextlib.suppress(Exception):  # a lost head update only widens the lag
                self.on_written(self.written, reason)


class _LoopSide:
    """One event loop's side of a writer: entries gathered in a loop turn, and their deadlines.

    Only the loop's own thread touches it, but for `flush`, which hands the gathered entries
    over as one queue item.
    """

    __slots__ = ("deadlines", "loop", "pending", "timer", "writer")

    def __init__(self, writer: BatchWriter, loop: asyncio.AbstractEventLoop) -> None:
        self.writer = writer
        self.loop = loop
        self.pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        # (deadline, future) in submission order; entries share a timeout, so deadlines rise.
        self.deadlines: deque[tuple[float, asyncio.Future[None]]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def add(
        self, entry: dict[str, Any], future: asyncio.Future[None], timeout: float | None
    ) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)  # once per turn, whatever the number of entries
        self.pending.append((entry, future))
        if timeout is not None:
            deadlines = self.deadlines
            while deadlines and deadlines[0][1].done():
                deadlines.popleft()  # settled meanwhile: the queue holds what may still expire
            deadline = self.loop.time() + timeout
            deadlines.append((deadline, future))
            if self.timer is None:
                self.timer = self.loop.call_at(deadline, self.expire)

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            self.writer._queue.put(pending)

    def expire(self) -> None:
        """Fail the entries past their deadline (the caller gives up; the entry stays queued,
        and is written later, as it would be after any timeout); watch the next one."""
        self.timer = None
        deadlines = self.deadlines
        now = self.loop.time()
        while deadlines:
            deadline, future = deadlines[0]
            if not future.done():
                if deadline > now:
                    self.timer = self.loop.call_at(deadline, self.expire)
                    return
                future.set_exception(TimeoutError())
            deadlines.popleft()


def _taken(item: Any) -> list[Any]:
    """A queue item as the thread takes it: one loop turn's entries, or one entry (or stop)."""
    return item if isinstance(item, list) else [item]


def _settle_all(futures: Iterable[Waiter], error: Exception | None) -> None:
    """Resolve the callers' futures: a thread's at once, a loop's in one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for future in futures:
        if isinstance(future, Future):
            _settle(future, error)
        else:
            by_loop.setdefault(future.get_loop(), []).append(future)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_on_loop, waiting, error)


def _settle_on_loop(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    """On the loop: resolve each future unless its caller gave up (timed out, cancelled)."""
    for future in futures:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def _settle(future: Future[None], error: Exception | None) -> None:
    """Resolve a caller's future unless the caller gave up (timed out) already."""
    with contextlib.suppress(InvalidStateError):
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
