"""An acknowledged write to the SQLite backend survives kill -9 of the writing process."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tenantvault.backends import _sqlite
from tenantvault.backends._sqlite import DB_FILENAME, SqliteBackend

pytestmark = pytest.mark.slow

KILLS = 8
MIN_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 0.6
FIRST_ACK_TIMEOUT_SECONDS = 15.0

_ACK = re.compile(r"ACK (\S+) (\d+)\n\Z")


def expected_value(key: str, n: int) -> bytes:
    """The value the writer stores for (key, n): varied sizes, some spilling into overflow pages."""
    return f"{key}|{n}|".encode() * (1 + (n * 37) % 400)


# The writer runs in its own process so that SIGKILL hits it mid-write. It prints an ACK
# line, flushed, only after `write` returned: an ACKed write is one the contract calls durable.
_WRITER = (
    inspect.getsource(expected_value)
    + """
import asyncio
import sys
from pathlib import Path

from tenantvault.backends._sqlite import SqliteBackend


async def main(data_dir: str, run: str) -> None:
    backend = await SqliteBackend.open(Path(data_dir))
    try:
        if not await backend.has_tenant("acme"):
            await backend.create_tenant("acme")
        n = 0
        while True:
            n += 1
            key = f"run-{run}/rec-{n}"
            await backend.write("acme", "secret", key, expected_value(key, n), expected_revision=0)
            print(f"ACK {key} {n}", flush=True)
            counter = f"counter-{run}"
            await backend.write("acme", "secret", counter, str(n).encode(), expected_revision=None)
            print(f"ACK {counter} {n}", flush=True)
    finally:
        await backend.aclose()


asyncio.run(main(sys.argv[1], sys.argv[2]))
"""
)


def _writer_env() -> dict[str, str]:
    # The directory holding the `tenantvault` package this test imported, installed or not.
    package_root = str(Path(_sqlite.__file__).absolute().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def _run_and_kill(data_dir: Path, run: int, delay_seconds: float) -> list[tuple[str, int]]:
    """Start a writer, SIGKILL it `delay_seconds` after its first ACK, return its ACKs."""
    lines: list[str] = []
    first_ack = threading.Event()
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(data_dir), str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_writer_env(),
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        stdout = proc.stdout

        def read_stdout() -> None:
            for line in stdout:
                lines.append(line)
                first_ack.set()

        reader = threading.Thread(target=read_stdout, daemon=True)
        reader.start()
        started = first_ack.wait(FIRST_ACK_TIMEOUT_SECONDS)
        if started:
            time.sleep(delay_seconds)
        proc.kill()
        proc.wait()
        reader.join()
        stderr = proc.stderr.read()
    assert started, f"the writer never acknowledged a write; stderr:\n{stderr}"
    assert proc.returncode == -9, stderr
    acks = []
    for line in lines:
        match = _ACK.match(line)
        if match:  # a line cut short by the kill was never an acknowledgement
            acks.append((match[1], int(match[2])))
    return acks


async def _check_store(data_dir: Path, acks_by_run: dict[int, list[tuple[str, int]]]) -> None:
    async with await SqliteBackend.open(data_dir) as backend:
        for run, acks in acks_by_run.items():
            records = [(key, n) for key, n in acks if key.startswith("run-")]
            for key, n in records:
                record = await backend.read("acme", "secret", key)
                assert record is not None, f"acknowledged write lost: {key}"
                assert record.value == expected_value(key, n), f"wrong value at {key}"
            # Nothing beyond the last ACK but, at most, the one write the kill cut short.
            last = max(n for _, n in records)
            stored = await backend.list("acme", "secret", f"run-{run}/")
            assert stored in (
                [f"rec-{i}" for i in sorted(range(1, last + 1), key=lambda i: f"rec-{i}")],
                [f"rec-{i}" for i in sorted(range(1, last + 2), key=lambda i: f"rec-{i}")],
            )
            counters = [n for key, n in acks if key == f"counter-{run}"]
            if counters:
                record = await backend.read("acme", "secret", f"counter-{run}")
                assert record is not None
                assert int(record.value) in (counters[-1], counters[-1] + 1)


def _integrity_check(data_dir: Path) -> str:
    with contextlib.closing(sqlite3.connect(data_dir / DB_FILENAME)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    acks_by_run: dict[int, list[tuple[str, int]]] = {}
    for run in range(KILLS):
        delay = rng.uniform(MIN_DELAY_SECONDS, MAX_DELAY_SECONDS)
        acks_by_run[run] = _run_and_kill(data_dir, run, delay)
        # Every earlier run is checked again: recovery must not lose older data either.
        asyncio.run(_check_store(data_dir, acks_by_run))
        assert _integrity_check(data_dir) == "ok", f"seed={seed} run={run}"
    assert sum(len(acks) for acks in acks_by_run.values()) > KILLS
