"""One process (and one open store in it) per data directory: `backends._lock`."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tenantvault._exceptions import ConfigurationError
from tenantvault.backends import _sqlite
from tenantvault.backends._lock import LOCK_FILENAME, lock_data_dir
from tenantvault.backends._sqlite import SqliteBackend

# A second process that opens the store, says so, and keeps it open until its stdin closes.
_HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tenantvault.backends._sqlite import SqliteBackend

    async def main():
        backend = await SqliteBackend.open(Path(sys.argv[1]))
        print("open", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await backend.aclose()

    asyncio.run(main())
    """
)


@contextmanager
def other_process_holding(data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "open\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


async def test_a_store_open_in_another_process_is_refused_until_it_closes(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with other_process_holding(data_dir) as holder:
        with pytest.raises(
            ConfigurationError, match=f"in use by .* process \\(pid {holder.pid}\\)"
        ):
            await SqliteBackend.open(data_dir)
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait() == 0
    async with await SqliteBackend.open(data_dir) as backend:
        assert await backend.list_tenants() == []


async def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with other_process_holding(data_dir) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    async with await SqliteBackend.open(data_dir) as backend:
        assert await backend.has_tenant("_system")


async def test_a_second_store_in_this_process_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite, "_LOCK_WAIT_SECONDS", 0.0)
    data_dir = tmp_path / "data"
    async with await SqliteBackend.open(data_dir):
        with pytest.raises(ConfigurationError, match="already open in this process"):
            await SqliteBackend.open(data_dir)
        # The same directory under another name is the same directory.
        os.symlink(data_dir, tmp_path / "alias")
        with pytest.raises(ConfigurationError, match="already open in this process"):
            await SqliteBackend.open(tmp_path / "alias")
    async with await SqliteBackend.open(data_dir):
        pass


async def test_a_store_being_closed_in_this_process_is_waited_for(tmp_path: Path) -> None:
    """As after a seal: the old store closes when its last request is done, while the
    unseal opens the new one."""
    data_dir = tmp_path / "data"
    first = await SqliteBackend.open(data_dir)
    await first.create_tenant("acme")
    opening = asyncio.create_task(SqliteBackend.open(data_dir))
    await asyncio.sleep(0.2)  # not a timed assertion: only gives the open time to wait
    assert not opening.done()
    await first.aclose()
    second = await opening
    try:
        assert await second.list_tenants() == ["acme"]
    finally:
        await second.aclose()


async def test_the_server_and_its_store_share_the_lock(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = lock_data_dir(data_dir, role="server")
    try:
        async with await SqliteBackend.open(data_dir) as backend:
            assert await backend.list_tenants() == []
        # The store closed, the server still holds the directory against other processes.
        holder = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _HOLDER, str(data_dir)],
            input="",
            capture_output=True,
            text=True,
            check=False,
        )
        assert holder.returncode != 0
        assert f"in use by another tenantvault process (pid {os.getpid()})" in holder.stderr
    finally:
        server.release()
        server.release()  # idempotent
    with other_process_holding(data_dir):
        pass


def test_the_lock_file_is_private_and_holds_only_a_process_id(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    held = lock_data_dir(data_dir, role="server")
    try:
        path = data_dir / LOCK_FILENAME
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert path.read_text() == f"{os.getpid()}\n"
        assert "held" in repr(held)
    finally:
        held.release()
    assert "released" in repr(held)
