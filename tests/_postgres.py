"""One throwaway PostgreSQL cluster for a test session (Debian's `postgresql` package).

`initdb` makes a cluster in a temporary directory and `pg_ctl` starts it on a free loopback
port with password authentication; the session's admin role is `tvadmin` with a random
password. initdb refuses to run as root, so as root the cluster is made and run as the
`postgres` system user the Debian package creates (`runuser -u postgres`); anyone else runs
it as themselves. A missing PostgreSQL fails the session under TENANTVAULT_REQUIRE_ALL=1
(CI) and skips only on a developer's machine.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration._support import free_port, remember_secret

ADMIN_USER = "tvadmin"


@dataclass(frozen=True)
class PostgresCluster:
    """A running cluster: where it listens and its admin role."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str = "postgres"

    def dsn(self, *, user: str | None = None, password: str | None = None) -> str:
        """A libpq key=value DSN (as `user`/`password`, the admin by default)."""
        return (
            f"host={self.host} port={self.port} dbname={self.database} "
            f"user={user or self.user} password={password or self.password} connect_timeout=5"
        )

    def template_url(self) -> str:
        """A Vault-style connection_url with `{{username}}`/`{{password}}` placeholders."""
        return (
            f"postgresql://{{{{username}}}}:{{{{password}}}}@{self.host}:{self.port}"
            f"/{self.database}?sslmode=disable"
        )


def _bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<major>/bin` that has initdb."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run(command: list[str]) -> None:
    """Run a PostgreSQL tool; on failure, its own words (no secret: the password travels in
    a file)."""
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        tool = next(Path(part).name for part in command if "/postgresql/" in part)
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _missing(why: str) -> None:
    message = (
        f"PostgreSQL is not available ({why}); install it with `apt-get install -y postgresql`"
    )
    # Never a skip (as `bao_executable`): the database engine's claims rest on these tests.
    pytest.fail(message)


@contextmanager
def running_postgres(directory: Path) -> Iterator[PostgresCluster]:
    """Create and start a cluster under `directory`; stop it on exit.

    As root the cluster lives in a directory of its own under the system temp dir, owned by
    `postgres`: pytest keeps its own base temp dir private (0700), which `postgres` cannot
    walk into, and resets it whenever another pytest session starts.
    """
    bin_dir = _bin_dir()
    if bin_dir is None:
        _missing("initdb not found")
        raise AssertionError("unreachable")
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        if shutil.which("runuser") is None:
            _missing("runuser not found to run initdb as the postgres user")
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _missing("no `postgres` system user to run initdb as")
        prefix = ["runuser", "-u", "postgres", "--"]
        directory = Path(tempfile.mkdtemp(prefix="tenantvault-pg-"))
        shutil.chown(directory, "postgres", "postgres")
    data = directory / "pgdata"
    password = remember_secret(f"pg-{uuid.uuid4().hex}")
    pwfile = directory / "pwfile"
    pwfile.write_text(password)
    if as_root:
        shutil.chown(pwfile, "postgres", "postgres")
    pwfile.chmod(0o600)
    try:
        yield from _started(prefix, bin_dir, directory, data, pwfile, password)
    finally:
        if as_root:
            shutil.rmtree(directory, ignore_errors=True)


def _started(
    prefix: list[str], bin_dir: Path, directory: Path, data: Path, pwfile: Path, password: str
) -> Iterator[PostgresCluster]:
    """initdb, then pg_ctl start on a free loopback port; stopped when the caller is done."""
    _run(
        [
            *prefix,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            ADMIN_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ]
    )
    pwfile.unlink()
    port = free_port()
    log = directory / "postgres.log"
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"
    _run(
        [
            *prefix,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "start",
        ]
    )
    try:
        yield PostgresCluster("127.0.0.1", port, ADMIN_USER, password)
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
