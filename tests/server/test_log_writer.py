"""The batched log writer of `tenantvault serve` (`server._log_writer`): every line written
once, in order, in `logging`'s format, also across `stop()`; and the access log through it in
a real `serve --dev` process, one line per request, none lost at SIGTERM."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from tenantvault.server._log_writer import LOG_FORMAT, LineHandler, LineWriter, LogFormatter
from tests.conftest import canary
from tests.server.test_serve import serve

ACCESS = "tenantvault.server.access"
_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own, at INFO, that leaves the `tenantvault` hierarchy alone."""
    named = logging.getLogger(f"test.log_writer.{canary()}")
    named.setLevel(logging.INFO)
    named.propagate = False
    yield named
    named.handlers.clear()


def test_lines_are_written_once_in_order_and_all_by_stop() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    writer.start()
    for index in range(1000):
        writer.put(f"line {index}")
    writer.stop()
    assert stream.getvalue() == "".join(f"line {index}\n" for index in range(1000))


def test_a_line_put_after_stop_is_written_at_once() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    writer.start()
    writer.stop()
    writer.put("late")
    assert stream.getvalue() == "late\n"


def test_lines_put_before_start_are_kept_for_the_thread() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    writer.put("early")
    writer.start()
    writer.stop()
    assert stream.getvalue() == "early\n"


def test_no_line_is_lost_when_threads_put_while_it_stops() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream, gather_seconds=0)
    writer.start()
    started = threading.Barrier(5)

    def put_many(thread: int) -> None:
        started.wait()
        for index in range(2000):
            writer.put(f"{thread}:{index}")

    threads = [threading.Thread(target=put_many, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    writer.stop()  # while the four threads are putting
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{t}:{i}" for t in range(4) for i in range(2000))
    for number in range(4):  # each thread's lines keep their order
        mine = [line for line in lines if line.startswith(f"{number}:")]
        assert mine == [f"{number}:{index}" for index in range(2000)]


class _StalledStream(io.StringIO):
    """A stream whose first write blocks until released: a log pipe nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(10)
        return super().write(text)


def test_a_stalled_stream_bounds_the_queue_and_reports_the_dropped_count() -> None:
    stream = _StalledStream()
    writer = LineWriter(stream, gather_seconds=0, max_queued=10)
    writer.start()
    writer.put("first")
    assert stream.entered.wait(10)  # the thread holds "first" in a write that does not return
    for index in range(25):
        writer.put(f"line {index}")
    stream.release.set()
    writer.stop()
    lines = stream.getvalue().splitlines()
    assert lines[:11] == ["first", *(f"line {index}" for index in range(10))]
    assert len(lines) == 12
    assert re.fullmatch(
        rf"{_STAMP} WARNING tenantvault\.server: 15 log lines dropped: the log stream did "
        r"not keep up \(10 lines were waiting\)",
        lines[11],
    )
    writer.put("after stop")  # written directly: never dropped once the thread is gone
    assert stream.getvalue().endswith("after stop\n")


def test_access_lines_have_the_text_logging_would_give_them(logger: logging.Logger) -> None:
    created = 1_764_646_930.0071  # a millisecond part that a float rounding could change
    stream = io.StringIO()
    writer = LineWriter(stream)
    writer.access_log(logger, clock=lambda: created)("GET /v1/secret/data/app 200 1.2ms")
    writer.stop()
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "%s", ("GET /v1/secret/data/app 200 1.2ms",), None
    )
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    standard = logging.Formatter(LOG_FORMAT).format(record)
    assert stream.getvalue() == standard + "\n"
    assert LogFormatter().format(record) == standard


def test_access_lines_honour_the_logger_level(logger: logging.Logger) -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    access = writer.access_log(logger)
    logger.setLevel(logging.WARNING)
    access("GET /v1/sys/health 200 0.1ms")
    logger.setLevel(logging.INFO)
    access("GET /v1/sys/health 200 0.2ms")
    writer.stop()
    assert stream.getvalue().endswith(" 0.2ms\n")
    assert "0.1ms" not in stream.getvalue()


def test_records_and_access_lines_share_one_stream_in_order(logger: logging.Logger) -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    logger.addHandler(LineHandler(writer))
    writer.start()
    access = writer.access_log(logger)
    access("GET /v1/a 200 0.1ms")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    access("GET /v1/b 200 0.1ms")
    writer.stop()
    text = stream.getvalue()
    assert re.fullmatch(
        rf"{_STAMP} INFO {re.escape(logger.name)}: GET /v1/a 200 0\.1ms\n"
        rf"{_STAMP} ERROR {re.escape(logger.name)}: failed\nTraceback .*RuntimeError: boom\n"
        rf"{_STAMP} INFO {re.escape(logger.name)}: GET /v1/b 200 0\.1ms\n",
        text,
        re.DOTALL,
    )


def test_a_broken_stream_does_not_stop_the_writer() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    broken = os.fdopen(write_end, "w")
    writer = LineWriter(broken, gather_seconds=0)
    writer.start()
    for index in range(100):
        writer.put(f"line {index}")
    writer.stop()  # returns: the thread went on draining after the failed writes
    writer.put("after")  # written at once, and fails quietly too
    assert "stopped" in repr(writer)
    with contextlib.suppress(OSError):
        broken.close()  # its buffer may still hold what could not be written


async def test_serve_writes_one_access_line_per_request_and_loses_none_at_stop() -> None:
    token = canary("dev-root-")
    secret = canary("value-")
    with serve("--dev", "--dev-root-token", token) as server:
        root = {"X-Vault-Token": token}
        async with httpx.AsyncClient(base_url=server.url, headers=root, timeout=30) as client:
            await client.post("/v1/secret/data/app", json={"data": {"v": secret}})
            for _ in range(200):
                assert (await client.get("/v1/secret/data/app?version=1")).status_code == 200
            assert (await client.get("/v1/secret/data/missing")).status_code == 404
        # SIGTERM right after the last answer: the lines still queued must come out.
        assert server.stop() == 0
    lines = server.stderr.splitlines()
    reads = [line for line in lines if " GET /v1/secret/data/app " in line]
    assert len(reads) == 200
    pattern = rf"{_STAMP} INFO {ACCESS}: GET /v1/secret/data/app 200 \d+\.\dms"
    assert all(re.fullmatch(pattern, line) for line in reads), reads[:3]
    missing = [line for line in lines if " GET /v1/secret/data/missing " in line]
    assert len(missing) == 1
    assert re.fullmatch(
        rf"{_STAMP} INFO {ACCESS}: GET /v1/secret/data/missing 404 \S+ms", missing[0]
    )
    # The shutdown's own record comes after every access line.
    assert lines.index(next(line for line in lines if line.endswith(": stopped"))) > lines.index(
        reads[-1]
    )
    for leak in (token, secret, "version="):
        assert leak not in server.stderr
