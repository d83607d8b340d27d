"""Issue 8.11 through the real process: `tenantvault serve` refuses a store others could read
or replace, says which file, its mode and the fix, and starts with a warning on the opt-out."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from pathlib import Path

import pytest

import tenantvault
from tenantvault.backends._sqlite import MASTER_KEY_FILENAME
from tests.server.test_serve import STARTUP_SECONDS, _command, _env, _free_port, serve


def make_store(data_dir: Path) -> str:
    """A store with one tenant, made through the Python API; its master key (to look for)."""

    async def create() -> None:
        async with tenantvault.open(f"sqlite://{data_dir}") as tv:
            await tv.create_tenant("acme")

    asyncio.run(create())
    return (data_dir / MASTER_KEY_FILENAME).read_text().strip()


def serve_once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tenantvault serve` expected to give up before it listens."""
    return subprocess.run(
        [*_command(), "serve", "--listen", f"127.0.0.1:{_free_port()}", *args],
        capture_output=True,
        text=True,
        env=env or _env(),
        timeout=STARTUP_SECONDS,
        check=False,
    )


def test_a_world_readable_master_key_stops_serve_with_the_fix(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = make_store(data_dir)
    key_path = data_dir / MASTER_KEY_FILENAME
    key_path.chmod(0o644)
    result = serve_once("--data-dir", str(data_dir))
    assert result.returncode == 1
    assert f"master key file {key_path} has mode 0644" in result.stderr
    assert f"chmod 600 {key_path}" in result.stderr
    assert "--allow-insecure-permissions" in result.stderr
    assert key not in result.stderr + result.stdout
    assert "oot token" not in result.stdout


def test_a_0755_data_directory_stops_serve_with_the_fix(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_store(data_dir)
    data_dir.chmod(0o755)
    result = serve_once("--data-dir", str(data_dir))
    assert result.returncode == 1
    assert f"data directory {data_dir} has mode 0755" in result.stderr
    assert f"chmod 700 {data_dir}" in result.stderr


def test_a_group_readable_master_key_file_flag_stops_serve(tmp_path: Path) -> None:
    key_file = tmp_path / "supplied.key"
    key = base64.b64encode(os.urandom(32)).decode()
    key_file.write_text(key + "\n")
    key_file.chmod(0o640)
    result = serve_once("--data-dir", str(tmp_path / "data"), "--master-key-file", str(key_file))
    assert result.returncode == 1
    assert f"master key file {key_file} has mode 0640" in result.stderr
    assert key not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("flags", "extra_env"),
    [
        (["--allow-insecure-permissions"], {}),
        ([], {"TENANTVAULT_ALLOW_INSECURE_PERMISSIONS": "1"}),
    ],
)
def test_the_opt_out_starts_serve_with_a_warning(
    tmp_path: Path, flags: list[str], extra_env: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    key = make_store(data_dir)
    data_dir.chmod(0o755)
    (data_dir / MASTER_KEY_FILENAME).chmod(0o644)
    with serve("--data-dir", str(data_dir), *flags, env=_env(**extra_env)) as server:
        assert server.stop() == 0
    warnings = [line for line in server.stderr.splitlines() if " WARNING " in line]
    assert any(f"data directory {data_dir} has mode 0755" in line for line in warnings)
    assert any("master.key has mode 0644" in line for line in warnings)
    assert key not in server.stderr + server.stdout
