"""Issue 8.11: the embedded store refuses files others could read or replace, like ssh does.

Driven through the public `tenantvault.open("sqlite:///…")`; `tenantvault serve` is covered
in tests/server/test_serve_permissions.py.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest

import tenantvault
from tenantvault import ConfigurationError
from tenantvault.backends._sqlite import DB_FILENAME, MASTER_KEY_FILENAME

SOMEONE_ELSE = 4242


def owned_by_someone_else(path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Make `path` (not followed) belong to another user; returns that owner's uid.

    As root the file really changes owner. Otherwise (only root may chown) the owner the
    store reads for exactly this path is replaced: either way the check sees a file that
    neither this user nor root owns, and no test depends on who runs the suite.
    """
    if os.geteuid() == 0:
        os.lchown(path, SOMEONE_ELSE, SOMEONE_ELSE)
        return SOMEONE_ELSE
    real_lstat = Path.lstat

    def lstat(self: Path) -> os.stat_result:
        found = real_lstat(self)
        if self != path:
            return found
        fields = list(found)
        fields[4] = SOMEONE_ELSE  # st_uid
        return os.stat_result(fields)

    monkeypatch.setattr(Path, "lstat", lstat)
    return SOMEONE_ELSE


def url(data_dir: Path) -> str:
    return f"sqlite://{data_dir}"


async def make_store(
    data_dir: Path, *, master_key: bytes | None = None, master_key_file: Path | None = None
) -> list[str]:
    """Open the store (creating it and tenant `acme` on first use); its tenants."""
    async with tenantvault.open(
        url(data_dir), master_key=master_key, master_key_file=master_key_file
    ) as tv:
        if not await tv.list_tenants():
            await tv.create_tenant("acme")
        return await tv.list_tenants()


async def refusal(data_dir: Path, *, master_key_file: Path | None = None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        await make_store(data_dir, master_key_file=master_key_file)
    return caught.value.message


def set_mode(path: Path, mode: int) -> None:
    # chmod, not the umask-bound mode of mkdir/open: the test sets exactly this mode.
    path.chmod(mode)


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


def key_file(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "supplied.key"
    path.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    path.chmod(mode)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


async def test_a_fresh_store_is_created_private_and_reopens(data_dir: Path) -> None:
    await make_store(data_dir)
    assert mode_of(data_dir) == 0o700
    assert mode_of(data_dir / MASTER_KEY_FILENAME) == 0o600
    assert await make_store(data_dir) == ["acme"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606], ids=oct)
async def test_a_master_key_others_can_use_is_refused_with_the_fix(
    data_dir: Path, mode: int
) -> None:
    await make_store(data_dir)
    key = data_dir / MASTER_KEY_FILENAME
    set_mode(key, mode)
    message = await refusal(data_dir)
    assert f"master key file {key} has mode {mode:04o}" in message
    assert f"chmod 600 {key}" in message
    assert "--allow-insecure-permissions" in message
    assert key.read_text().strip() not in message


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o711, 0o770, 0o707], ids=oct)
async def test_a_data_directory_others_can_use_is_refused_with_the_fix(
    data_dir: Path, mode: int
) -> None:
    await make_store(data_dir)
    set_mode(data_dir, mode)
    message = await refusal(data_dir)
    assert f"data directory {data_dir} has mode {mode:04o}" in message
    assert f"chmod 700 {data_dir}" in message


async def test_an_existing_0755_directory_is_refused_before_anything_is_created(
    data_dir: Path,
) -> None:
    os.mkdir(data_dir)
    set_mode(data_dir, 0o755)
    assert "has mode 0755" in await refusal(data_dir)
    assert os.listdir(data_dir) == []


async def test_database_files_others_can_use_are_refused(data_dir: Path) -> None:
    await make_store(data_dir)
    database = data_dir / DB_FILENAME
    set_mode(database, 0o644)
    message = await refusal(data_dir)
    assert f"database file {database} has mode 0644" in message
    assert f"chmod 600 {database}" in message


async def test_a_given_master_key_file_others_can_read_is_refused(
    tmp_path: Path, data_dir: Path
) -> None:
    loose = key_file(tmp_path, 0o644)
    message = await refusal(data_dir, master_key_file=loose)
    assert f"master key file {loose} has mode 0644" in message
    assert loose.read_text().strip() not in message
    # Refused before anything was created for the new store.
    assert not (data_dir / DB_FILENAME).exists()
    set_mode(loose, 0o400)
    assert await make_store(data_dir, master_key_file=loose) == ["acme"]


async def test_a_symlink_of_ones_own_to_a_private_key_is_accepted(
    tmp_path: Path, data_dir: Path
) -> None:
    link = tmp_path / "link.key"
    link.symlink_to(key_file(tmp_path, 0o600))
    assert await make_store(data_dir, master_key_file=link) == ["acme"]


async def test_a_symlink_is_judged_by_its_target(tmp_path: Path, data_dir: Path) -> None:
    target = key_file(tmp_path, 0o644)
    link = tmp_path / "link.key"
    link.symlink_to(target)
    assert f"master key file {link} has mode 0644" in await refusal(data_dir, master_key_file=link)


async def test_a_symlink_owned_by_someone_else_is_refused(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "link.key"
    link.symlink_to(key_file(tmp_path, 0o600))
    owner = owned_by_someone_else(link, monkeypatch)
    message = await refusal(data_dir, master_key_file=link)
    assert f"master key file {link} is a symlink owned by uid {owner}" in message


async def test_a_data_directory_owned_by_someone_else_is_refused(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_store(data_dir)
    owner = owned_by_someone_else(data_dir, monkeypatch)
    message = await refusal(data_dir)
    assert f"data directory {data_dir} is owned by uid {owner}" in message
    assert f"chown {os.geteuid()} {data_dir}" in message


async def test_the_opt_out_warns_and_opens(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await make_store(data_dir)
    set_mode(data_dir, 0o755)
    key = data_dir / MASTER_KEY_FILENAME
    set_mode(key, 0o644)
    with caplog.at_level(logging.WARNING, logger="tenantvault"):
        async with tenantvault.open(url(data_dir), allow_insecure_permissions=True) as tv:
            assert "acme" in await tv.list_tenants()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"data directory {data_dir} has mode 0755" in w for w in warnings), warnings
    assert any(f"master key file {key} has mode 0644" in w for w in warnings), warnings
    assert all(key.read_text().strip() not in w for w in warnings)


async def test_an_explicit_master_key_needs_no_key_file_check(data_dir: Path) -> None:
    key = os.urandom(32)
    await make_store(data_dir, master_key=key)
    (data_dir / MASTER_KEY_FILENAME).write_text("a stray file, not used\n")
    set_mode(data_dir / MASTER_KEY_FILENAME, 0o644)
    assert await make_store(data_dir, master_key=key) == ["acme"]
