"""The process's log lines, written to one stream in batches by one thread.

`tenantvault serve` writes one access-log line per request. Through `logging` each line cost
a `LogRecord`, the handler chain, `QueueHandler.prepare` (a format and a `copy.copy` of the
record) on the event loop, then a second format and a `write` + `flush` per line on the
listener's thread, all under the one GIL the event loop needs. Here a line is formatted once
on the caller's thread (the same text `LogFormatter` makes of a record) and queued; one
thread writes whatever has gathered with a single `write`. `LineHandler` puts every other
record in the same queue, so the stream keeps one order. `stop()` writes every queued line,
and a line put after it is written at once.

The queue is bounded (`MAX_QUEUED_LINES`): when the stream does not keep up (a stalled pipe,
a full disk's slow writes) lines past the bound are dropped, counted, and the count is
written as a WARNING line once the stream takes lines again. Blocking the caller instead
would stall the event loop and every request with it; the audit trail, not this log, is the
record of what happened, and it is never dropped.

What a line holds is decided by whoever makes it (the access log: method, path, status and
duration, never a header, a query string or a body); this module only carries text.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Final, TextIO

__all__ = ["LOG_FORMAT", "AccessLine", "LineHandler", "LineWriter", "LogFormatter"]

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# How long the writer lets lines gather after the first one arrives: under load one write
# (and one wake-up of the thread) carries every line of those 10 ms (tens at 2,500 req/s);
# a lone line waits this long.
GATHER_SECONDS: Final = 0.01
_STOP: Final = None  # the queue's end marker, put by `stop()`
# At ~100 bytes a line, ~10 MB of lines waiting for a stream that does not take them.
MAX_QUEUED_LINES: Final = 100_000
_DROPPED_LOGGER: Final = "tenantvault.server"

AccessLine = Callable[[str], None]
"""Takes one message (`GET /v1/secret/data/app 200 1.2ms`) and logs it as an INFO line."""


class _Stamps:
    """`logging`'s default asctime (`2026-12-02 03:42:10,123`, local time), with the
    strftime done once per second: it is the costliest part of a short line."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        # (second, its text) as one tuple: threads read and replace it without a lock.
        self._last: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        second = int(created)
        last_second, text = self._last
        if second != last_second:
            text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._last = (second, text)
        # `LogRecord.msecs`, as logging computes it.
        return f"{text},{int((created - second) * 1000):03d}"


_stamps = _Stamps()


class LogFormatter(logging.Formatter):
    """`LOG_FORMAT` with the per-second timestamp cache (the access lines' own format)."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _stamps(record.created)


class LineWriter:
    """Lines queued from any thread, written by one thread to `stream` in batches."""

    def __init__(
        self,
        stream: TextIO,
        *,
        gather_seconds: float = GATHER_SECONDS,
        max_queued: int = MAX_QUEUED_LINES,
    ) -> None:
        self._stream = stream
        self._gather_seconds = gather_seconds
        self._max_queued = max_queued
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        # Lines dropped since the last notice; changed under `_dropped_lock` (rare path).
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Set once the thread is gone: from then on each put writes its line itself.
        self._direct = False
        # Held around each write (the thread's, `stop()`'s and those of puts after it), and
        # around taking the lines too outside the thread, so that lines keep their order.
        # Re-entrant, as `logging`'s handler locks: a signal handler that logs while this
        # thread holds it must not deadlock.
        self._write_lock = threading.RLock()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._thread else "new"
        return f"<LineWriter {state}>"

    def start(self) -> None:
        """Start the writer thread (lines put before are kept for it)."""
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
            self._thread.start()

    def put(self, line: str) -> None:
        """Queue one line (without its newline); written at once if the writer stopped,
        dropped and counted if `max_queued` lines are already waiting."""
        if self._lines.qsize() >= self._max_queued and not self._direct:
            with self._dropped_lock:
                self._dropped += 1
            return
        self._lines.put(line)
        if self._direct:
            # Checked after the put: either `stop()`'s last drain sees this line, or this
            # caller sees `_direct` and drains it itself. No line is left in the queue.
            self._drain()

    def access_log(
        self, logger: logging.Logger, *, clock: Callable[[], float] = time.time
    ) -> AccessLine:
        """Log messages as INFO lines of `logger` (its level is honoured, its handlers and
        filters are not consulted): the same text `LogFormatter` makes of a record."""
        prefix = f" {logging.getLevelName(logging.INFO)} {logger.name}: "
        enabled = logger.isEnabledFor
        put = self.put

        def log(message: str) -> None:
            if enabled(logging.INFO):
                put(f"{_stamps(clock())}{prefix}{message}")

        return log

    def stop(self) -> None:
        """Write every queued line and stop the thread; later lines are written directly."""
        if self._stopped:
            return
        self._stopped = True
        thread = self._thread
        if thread is not None:
            self._lines.put(_STOP)
            thread.join()  # it wrote everything queued before the marker
        # Only now, with the marker consumed: a drain outside the thread must never take it.
        self._direct = True
        self._drain()  # what was queued after the marker

    def _run(self) -> None:
        get = self._lines.get
        while True:
            first = get()
            if first is not _STOP and self._gather_seconds > 0:
                time.sleep(self._gather_seconds)
            lines, more = self._take(first)
            with self._write_lock:
                self._write(lines)
            if not more:
                return

    def _take(self, first: str | None) -> tuple[list[str], bool]:
        """`first` and every line queued after it; False once the end marker was taken."""
        lines: list[str] = []
        line = first
        get = self._lines.get_nowait
        while line is not _STOP:
            lines.append(line)
            try:
                line = get()
            except queue.Empty:
                return lines, True
        return lines, False

    def _drain(self) -> None:
        # Taken and written under the lock: two threads draining at once must not reorder.
        with self._write_lock:
            try:
                first = self._lines.get_nowait()
            except queue.Empty:
                return
            self._write(self._take(first)[0])

    def _write(self, lines: list[str]) -> None:
        if self._dropped:
            with self._dropped_lock:
                dropped, self._dropped = self._dropped, 0
            # After the lines that were queued before the drops: the notice marks the gap.
            lines.append(
                f"{_stamps(time.time())} {logging.getLevelName(logging.WARNING)} "
                f"{_DROPPED_LOGGER}: {dropped} log lines dropped: the log stream did not "
                f"keep up ({self._max_queued} lines were waiting)"
            )
        if not lines:
            return
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            # The stream is gone (a closed pipe or file): nothing else could carry these
            # lines, and the queue must keep draining rather than grow.
            pass


class LineHandler(logging.Handler):
    """A `logging` handler that formats on the caller's thread and queues the line."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self._writer = writer
        self.setFormatter(LogFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 -- logging's own contract: report, never raise
            self.handleError(record)
            return
        self._writer.put(line)
