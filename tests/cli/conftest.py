"""CLI test fixtures: one `tenantvault serve --dev` process, and `main()` run in-process."""

from __future__ import annotations

import http.client
import io
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenantvault.cli import main

STARTUP_SECONDS = 30.0


def canary(label: str = "") -> str:
    """A unique marker for a secret value or token: any sighting of it in stderr is a leak."""
    return f"CANARY-{label}{uuid.uuid4()}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tenantvault_command() -> list[str]:
    """The installed console script (the one on PATH first, as the test command sets it up)."""
    found = shutil.which("tenantvault")
    if found is not None:
        return [found]
    sibling = Path(sys.executable).with_name("tenantvault")
    if sibling.exists():
        return [str(sibling)]
    return [sys.executable, "-m", "tenantvault.cli"]


@dataclass(frozen=True)
class Server:
    address: str
    root_token: str
    log: Path


def wait_until_serving(
    process: subprocess.Popen[bytes], server: Server, *, tls: ssl.SSLContext | None = None
) -> None:
    """Poll sys/health until the server answers; fail with its log if it exits first."""
    port = int(server.address.rsplit(":", 1)[1])
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"`tenantvault serve --dev` exited with {process.returncode}:\n"
                + server.log.read_text(errors="replace")[-4000:]
            )
        connection = (
            http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=tls)
            if tls is not None
            else http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        )
        try:
            connection.request("GET", "/v1/sys/health")
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
        finally:
            connection.close()
    pytest.fail("`tenantvault serve --dev` did not answer within 30s")


def start_server(
    directory: Path, root_token: str, *extra: str, scheme: str = "http"
) -> tuple[subprocess.Popen[bytes], Server]:
    port = free_port()
    log = directory / f"server-{port}.log"
    command = [
        *tenantvault_command(),
        "serve",
        "--dev",
        "--dev-root-token",
        root_token,
        "--listen",
        f"127.0.0.1:{port}",
        *extra,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    return process, Server(f"{scheme}://127.0.0.1:{port}", root_token, log)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One dev server for the whole CLI suite; every test works in its own fresh tenant."""
    directory = tmp_path_factory.mktemp("cli-server")
    process, info = start_server(directory, canary("root-"))
    try:
        wait_until_serving(process, info)
        yield info
    finally:
        stop_server(process)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


_VAULT_VARIABLES = (
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_NAMESPACE",
    "VAULT_FORMAT",
    "VAULT_CACERT",
    "VAULT_CAPATH",
    "VAULT_CLIENT_TIMEOUT",
)


class CLI:
    """Runs `tenantvault …` in-process through `main()`, with its own environment per call."""

    def __init__(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        server: Server,
        home: Path,
    ) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self.server = server
        self.home = home
        self.token: str | None = server.root_token
        self.namespace: str | None = None

    def __call__(
        self,
        *argv: str,
        stdin: str = "",
        token: str | None = "",
        namespace: str | None = "",
        address: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        """`token`/`namespace` default ('') to this CLI's current ones; None unsets them."""
        token = self.token if token == "" else token
        namespace = self.namespace if namespace == "" else namespace
        with self._monkeypatch.context() as patch:
            for name in _VAULT_VARIABLES:
                patch.delenv(name, raising=False)
            patch.setenv("HOME", str(self.home))
            # A bug in the CLI should fail the test with its traceback, not a one-line summary.
            patch.setenv("TENANTVAULT_CLI_TRACEBACK", "1")
            patch.setenv("VAULT_ADDR", address or self.server.address)
            if token is not None:
                patch.setenv("VAULT_TOKEN", token)
            if namespace is not None:
                patch.setenv("VAULT_NAMESPACE", namespace)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            self._capsys.readouterr()
            code = main(list(argv))
            captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: Server,
    tmp_path: Path,
) -> CLI:
    home = tmp_path / "home"
    home.mkdir()
    return CLI(capsys, monkeypatch, server, home)


@pytest.fixture
def tenant(cli: CLI) -> Iterator[str]:
    """A fresh tenant, selected with VAULT_NAMESPACE for every call of `cli` (as root)."""
    name = f"t{uuid.uuid4().hex[:16]}"
    created = cli("tenant", "create", name, namespace=None)
    assert created.code == 0, created.err
    cli.namespace = name
    yield name
    cli("tenant", "delete", name, namespace=None, token=cli.server.root_token)


def assert_clean(result: Result, *secrets: str) -> None:
    """None of `secrets` (nor any canary at all) may appear in error output."""
    for secret in secrets:
        assert secret not in result.err
    assert "CANARY-" not in result.err
