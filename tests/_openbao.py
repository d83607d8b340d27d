"""One real `bao server -dev` for a whole test session, for the suites that need an upstream.

The contract suite (on the upstream record backend) and `tests/upstream/` share it through
the `openbao_dev` fixture of `tests/conftest.py`; every test works under a root of its own
(`unique_root`), so tests never see each other's records.
"""

from __future__ import annotations

import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.integration._support import bao_executable, clean_env, free_port, stop, wait_healthy


@dataclass(frozen=True)
class OpenBaoDev:
    """A running dev server: its address (`http://127.0.0.1:PORT`, https with `ca_file`
    when started with TLS) and root token."""

    addr: str
    root_token: str = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)
    ca_file: Path | None = None

    @property
    def backend_url(self) -> str:
        """The same address as a tenantvault backend URL."""
        return "vault+" + self.addr


def unique_root(prefix: str = "t") -> str:
    """A fresh upstream root (a namespace or path prefix) for one test."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _wait_tls(process: subprocess.Popen[bytes], addr: str, ca_file: Path, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            # The server writes its CA file as it starts: read it only once it is there.
            context = ssl.create_default_context(cafile=str(ca_file))
            if httpx.get(f"{addr}/v1/sys/health", verify=context, timeout=2).is_success:
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.05)
    stop(process)
    raise AssertionError("bao server -dev -dev-tls did not start:\n" + log.read_text()[-2000:])


@contextmanager
def running_openbao(directory: Path, *, tls: bool = False) -> Iterator[OpenBaoDev]:
    """Start `bao server -dev` on a free loopback port (`-dev-tls`: HTTPS with its own CA,
    written to `directory`); stop it on exit."""
    port = free_port()
    root_token = f"bao-root-{uuid.uuid4().hex}"
    log = directory / "bao-server.log"
    command = [
        str(bao_executable()),
        "server",
        "-dev",
        f"-dev-root-token-id={root_token}",
        f"-dev-listen-address=127.0.0.1:{port}",
        "-dev-no-store-token",
    ]
    if tls:
        command += ["-dev-tls", f"-dev-tls-cert-dir={directory}"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=clean_env(directory)
        )
    try:
        if tls:
            addr, ca_file = f"https://127.0.0.1:{port}", directory / "vault-ca.pem"
            _wait_tls(process, addr, ca_file, log)
            yield OpenBaoDev(addr, root_token, process, ca_file)
        else:
            addr = f"http://127.0.0.1:{port}"
            wait_healthy(process, addr, log, "bao server -dev")
            yield OpenBaoDev(addr, root_token, process)
    finally:
        stop(process)
