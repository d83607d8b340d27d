"""Acceptance 5 end to end: KV v2 writes through the public API survive SIGKILL of the writer.

The writer process puts versions of a few keys through `tenantvault.open("sqlite://…")` and
prints an ACK only after `put` returned. The test kills it at random moments, restarts it, and
finally checks that every acknowledged version is readable with its exact data, versions are
contiguous, and SQLite's integrity check passes.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tenantvault

pytestmark = pytest.mark.slow

WRITER = """
import asyncio, sys
import tenantvault

async def main(url: str) -> None:
    async with tenantvault.open(url) as tv:
        if "acme" not in await tv.list_tenants():
            await tv.create_tenant("acme")
        kv = tv.tenant("acme").kv
        await kv.configure(max_versions=1000)
        n = 0
        while True:
            n += 1
            key = f"key-{n % 3}"
            info = await kv.put(key, {"n": str(n), "pad": "x" * (n % 500)})
            print(f"ACK {key} {info.version} {n}", flush=True)

asyncio.run(main(sys.argv[1]))
"""


def _run_and_kill(url: str, delay: float) -> list[tuple[str, int, int]]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    acks: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + 20
    # Wait for the first ACK so each kill lands in the middle of a stream of writes.
    first = process.stdout.readline()
    assert first.startswith("ACK"), "writer never acknowledged a write"
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    rest = process.stdout.read()
    process.wait()
    process.stdout.close()
    assert time.monotonic() < deadline
    for line in [first, *rest.splitlines(keepends=True)]:
        if line.endswith("\n") and line.startswith("ACK "):
            _, key, version, n = line.split()
            acks.append((key, int(version), int(n)))
    return acks


def test_acknowledged_kv_writes_survive_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = f"sqlite://{data_dir}"
    rng = random.Random(os.environ.get("PYTEST_SEED", "tenantvault"))
    acked: dict[tuple[str, int], int] = {}
    for _ in range(6):
        for key, version, n in _run_and_kill(url, rng.uniform(0.05, 0.5)):
            acked[(key, version)] = n
    assert len(acked) > 20

    async def verify() -> None:
        async with tenantvault.open(url) as tv:
            kv = tv.tenant("acme").kv
            for (key, version), n in acked.items():
                secret = await kv.get(key, version=version)
                assert secret.data == {"n": str(n), "pad": "x" * (n % 500)}
            for key in {key for key, _ in acked}:
                meta = await kv.metadata(key)
                assert sorted(meta.versions) == list(range(1, meta.current_version + 1))

    asyncio.run(verify())
    with sqlite3.connect(data_dir / "tenantvault.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
