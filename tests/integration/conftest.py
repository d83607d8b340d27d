"""Real processes for the integration suite: `tenantvault serve` in dev and embedded mode,
`bao server -dev`, and leak scans of the server logs after every module."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tenantvault.crypto import random_key
from tests._openbao import OpenBaoDev, unique_root
from tests.integration._support import (
    BaoCLI,
    assert_no_secret,
    bao_executable,
    canary,
    clean_env,
    free_port,
    read_log,
    remember_secret,
    stop,
    tenantvault_executable,
    wait_healthy,
)

MODES = ["dev", "embedded"]
# `tenantvault serve --backend vault+http://…` on a real OpenBao (the session's `openbao_dev`),
# with each tenancy strategy: the modules that claim gateway parity parametrize with
# `ALL_MODES` (`pytest.mark.parametrize("tenantvault_server", ALL_MODES, indirect=True,
# scope="session")`).
GATEWAY_MODES = ["vault-namespace", "vault-prefix"]
ALL_MODES = [*MODES, *GATEWAY_MODES]

# The log of every tenantvault process this session started, for the leak scans.
_SERVER_LOGS: list[Path] = []


@dataclass(frozen=True)
class TenantVaultServer:
    """A running `tenantvault serve`: its address, its root token and its captured output."""

    mode: str
    addr: str
    root_token: str = field(repr=False)
    log: Path = Path()

    def __iter__(self) -> Iterator[str]:
        # `addr, root_token = tenantvault_server` reads as the fixture's contract.
        return iter((self.addr, self.root_token))


@dataclass(frozen=True)
class OpenBaoServer:
    addr: str
    root_token: str = field(repr=False)


def _gateway_flags(mode: str, directory: Path, upstream: OpenBaoDev) -> list[str]:
    """`serve` flags for gateway mode on `upstream`, under a root of this server's own."""
    upstream_token = directory / "upstream-token"
    upstream_token.write_text(upstream.root_token + "\n")
    upstream_token.chmod(0o600)
    master_key = directory / "master.key"
    master_key.write_text(base64.b64encode(random_key()).decode() + "\n")
    master_key.chmod(0o600)
    return [
        *("--backend", upstream.backend_url, "--upstream-token-file", str(upstream_token)),
        *("--upstream-root", unique_root("it"), "--master-key-file", str(master_key)),
        *("--upstream-tenancy", mode.removeprefix("vault-")),
    ]


# The jwt tests' JWKS endpoint listens on this port: the server may fetch keys from it (and
# from the closed port 9 the tests also name) because the operator allows it; any other
# loopback URL is refused (`serve --jwt-jwks-allow`, engines/auth/jwt/_egress.py).
JWKS_PORT = free_port()
JWKS_ALLOW = (f"http://127.0.0.1:{JWKS_PORT}/", "http://127.0.0.1:9/")


def _start_tenantvault(
    mode: str, directory: Path, upstream: OpenBaoDev | None = None
) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    log = directory / "server.log"
    command = [*tenantvault_executable(), "serve", "--listen", f"127.0.0.1:{port}"]
    token_file = directory / "root-token"
    root_token = ""
    if mode == "dev":
        root_token = canary("root-")
        command += ["--dev", "--dev-root-token", root_token]
    else:
        command += ["--data-dir", str(directory / "data"), "--root-token-file", str(token_file)]
    if upstream is not None:
        command += _gateway_flags(mode, directory, upstream)
    for prefix in JWKS_ALLOW:
        command += ["--jwt-jwks-allow", prefix]
    # Debug logging: the level where a careless log line would show a secret.
    command += ["--log-level", "debug"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=clean_env(directory)
        )
    _SERVER_LOGS.append(log)
    addr = f"http://127.0.0.1:{port}"
    wait_healthy(process, addr, log, f"tenantvault serve ({mode})")
    if mode != "dev":
        assert token_file.stat().st_mode & 0o777 == 0o600, "root token file must be 0600"
        root_token = remember_secret(token_file.read_text().strip())
        assert root_token, "the root token file is empty"
    return process, addr, root_token


@pytest.fixture(scope="session", params=MODES)
def tenantvault_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TenantVaultServer]:
    """`tenantvault serve` as a real process on a free port, for the whole session.

    Tests share it and each works in tenants of its own (`unique_name`). Teardown sends
    SIGTERM and requires a clean exit (code 0) and a log without errors or secrets.
    """
    mode = str(request.param)
    directory = tmp_path_factory.mktemp(f"tenantvault-{mode}")
    upstream: OpenBaoDev | None = None
    if mode in GATEWAY_MODES:
        upstream = request.getfixturevalue("openbao_dev")
    process, addr, root_token = _start_tenantvault(mode, directory, upstream)
    server = TenantVaultServer(mode, addr, root_token, directory / "server.log")
    try:
        yield server
    finally:
        code = stop(process)
        log = server.log.read_text(errors="replace")
        assert code == 0, (
            f"tenantvault serve ({mode}) exited with {code} on SIGTERM:\n{log[-4000:]}"
        )
        assert_no_secret(log, f"the tenantvault ({mode}) server log")
        errors = [line for line in log.splitlines() if " ERROR " in line]
        assert not errors, f"the server logged errors: {errors[:5]}"


@pytest.fixture(scope="session")
def openbao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """A real `bao server -dev` (in-memory, unsealed) on a free port, for the whole session."""
    executable = bao_executable()
    directory = tmp_path_factory.mktemp("openbao")
    port = free_port()
    root_token = canary("bao-root-")
    log = directory / "bao-server.log"
    command = [
        str(executable),
        "server",
        "-dev",
        f"-dev-root-token-id={root_token}",
        f"-dev-listen-address=127.0.0.1:{port}",
        "-dev-no-store-token",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=clean_env(directory)
        )
    addr = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, addr, log, "bao server -dev")
        yield OpenBaoServer(addr, root_token)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def bao_cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bao-cli-home")


@pytest.fixture
def bao(tenantvault_server: TenantVaultServer, bao_cli_home: Path) -> BaoCLI:
    """The real `bao` CLI pointed at the tenantvault server of this test."""
    return BaoCLI(bao_executable(), tenantvault_server.addr, bao_cli_home)


@pytest.fixture(scope="module", autouse=True)
def _scan_server_logs_after_module() -> Iterator[None]:
    """After each module: no canary and no issued token in any tenantvault log so far."""
    yield
    assert_no_secret(read_log(_SERVER_LOGS), "a tenantvault server log")


@pytest.fixture(scope="module")
def clients(
    tenantvault_server: TenantVaultServer, openbao_server: OpenBaoServer
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """HTTP clients of the two servers a differential test compares (ours, OpenBao's)."""
    with (
        httpx.Client(base_url=tenantvault_server.addr, timeout=30) as ours,
        httpx.Client(base_url=openbao_server.addr, timeout=30) as bao,
    ):
        yield ours, bao
