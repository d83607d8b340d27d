"""Two `tenantvault serve` processes on one data directory: the second one is refused."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import tenantvault
from tenantvault import ConfigurationError
from tests.server.test_serve import STARTUP_SECONDS, Server, _command, _env, _free_port, serve


def _address() -> str:
    return f"127.0.0.1:{_free_port()}"


def _second_server(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), "serve", "--data-dir", str(data_dir), *args, "--listen", _address()],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=STARTUP_SECONDS,
        check=False,
    )


def _in_use_by(data_dir: Path, server: Server) -> str:
    return (
        f"the data directory {data_dir} is in use by another tenantvault process "
        f"(pid {server.process.pid})"
    )


async def test_a_second_server_on_the_same_data_directory_exits_with_a_clear_error(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with serve("--data-dir", str(data_dir)) as first:
        second = _second_server(data_dir)
        assert second.returncode == 1
        assert _in_use_by(data_dir, first) in second.stderr
        # Nor can a program open the store underneath the running server.
        with pytest.raises(ConfigurationError, match="in use"):
            await tenantvault.open(f"sqlite://{data_dir}")
        assert first.stop() == 0
    # Released at exit: the next server starts.
    with serve("--data-dir", str(data_dir)) as again:
        assert again.stop() == 0


def test_a_sealed_server_holds_its_data_directory_too(tmp_path: Path) -> None:
    """Sealed, a server has not opened its store yet: the server's own hold refuses the
    second one (else both would unseal onto one store)."""
    data_dir = tmp_path / "data"
    port = _free_port()
    sealed = ["--data-dir", str(data_dir), "--seal", "shamir"]
    process = subprocess.Popen(
        [*_command(), "serve", *sealed, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    first = Server(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, first.stop()
            try:
                if httpx.get(f"{first.url}/v1/sys/seal-status", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the sealed server did not start"
            time.sleep(0.05)
        second = _second_server(data_dir, "--seal", "shamir")
        assert second.returncode == 1
        assert _in_use_by(data_dir, first) in second.stderr
    finally:
        first.stop(signal.SIGTERM)
