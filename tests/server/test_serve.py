"""`tenantvault serve` as a real process on granian: dev mode, the embedded store, the root
token hand-off, TLS, the listen-address guard and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import canary

STARTUP_SECONDS = 60.0  # generous: three test workers share two cores in CI


def _command() -> list[str]:
    script = Path(sys.executable).with_name("tenantvault")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tenantvault.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTVAULT_")}
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    stdout: str = ""
    stderr: str = ""

    def stop(self, sig: int | None = signal.SIGTERM) -> int:
        """Send `sig` (None: none, the stop is already under way) and wait for the exit."""
        if sig is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=STARTUP_SECONDS)
        self.stdout += out
        self.stderr += err
        return self.process.returncode


def _wait_ready(server: Server, *, verify: bool | ssl.SSLContext = True) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            server.stop()
            raise AssertionError(f"server exited early: {server.stderr}")
        try:
            response = httpx.get(f"{server.url}/v1/sys/health", verify=verify, timeout=1)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError("server did not become ready")


@contextmanager
def serve(
    *args: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    verify: bool | ssl.SSLContext = True,
) -> Iterator[Server]:
    port = _free_port()
    process = subprocess.Popen(
        [*_command(), "serve", "--listen", f"127.0.0.1:{port}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or _env(),
    )
    server = Server(process, f"{scheme}://127.0.0.1:{port}")
    try:
        _wait_ready(server, verify=verify)
        yield server
    finally:
        if process.poll() is None:
            server.stop(signal.SIGKILL)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as opened:
        yield opened


def _root_token_from(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    label = next(i for i, line in enumerate(lines) if "oot token" in line)
    return lines[label + 1]


async def test_dev_mode_serves_the_vault_api_and_stops_cleanly(
    client: httpx.AsyncClient,
) -> None:
    token = canary("dev-root-")
    with serve("--dev", "--dev-root-token", token) as server:
        root = {"X-Vault-Token": token}
        assert (
            await client.post(f"{server.url}/v1/sys/namespaces/acme", headers=root)
        ).status_code == 200
        secrets = {}
        for tenant in ("acme", "beta"):
            if tenant != "acme":
                await client.post(f"{server.url}/v1/sys/namespaces/{tenant}", headers=root)
            secrets[tenant] = canary(f"{tenant}-")
            written = await client.post(
                f"{server.url}/v1/{tenant}/secret/data/app",
                headers=root,
                json={"data": {"v": secrets[tenant]}},
            )
            assert written.status_code == 200

        async def read(tenant: str) -> tuple[str, str]:
            response = await client.get(
                f"{server.url}/v1/secret/data/app", headers={**root, "X-Vault-Namespace": tenant}
            )
            return tenant, response.json()["data"]["data"]["v"]

        for tenant, value in await asyncio.gather(*(read(t) for t in ["acme", "beta"] * 50)):
            assert value == secrets[tenant]
        listed = await client.request("LIST", f"{server.url}/v1/sys/namespaces", headers=root)
        assert listed.json()["data"]["keys"] == ["acme/", "beta/"]
        assert server.stop() == 0
    assert token not in server.stdout + server.stderr
    for value in secrets.values():
        assert value not in server.stderr
    assert "GET /v1/secret/data/app 200" in server.stderr


async def test_dev_mode_generates_and_prints_a_root_token(client: httpx.AsyncClient) -> None:
    with serve("--dev") as server:
        server.stop()
    token = _root_token_from(server.stdout)
    assert token.startswith("tvs.")
    assert token not in server.stderr


async def test_embedded_store_prints_the_root_token_once_and_persists(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    data_dir = tmp_path / "data"
    secret = canary("persist-")
    with serve("--data-dir", str(data_dir)) as first:
        root_probe = await client.get(f"{first.url}/v1/sys/seal-status")
        assert root_probe.status_code == 200
        first.stop()
    token = _root_token_from(first.stdout)
    with serve("--data-dir", str(data_dir)) as again:
        headers = {"X-Vault-Token": token}
        assert (
            await client.post(f"{again.url}/v1/sys/namespaces/acme", headers=headers)
        ).status_code == 200
        assert (
            await client.post(
                f"{again.url}/v1/acme/secret/data/k", headers=headers, json={"data": {"v": secret}}
            )
        ).status_code == 200
        assert again.stop() == 0
    assert again.stdout == ""
    with serve(env=_env(TENANTVAULT_DATA_DIR=str(data_dir))) as third:
        response = await client.get(
            f"{third.url}/v1/acme/secret/data/k", headers={"X-Vault-Token": token}
        )
        assert response.json()["data"]["data"] == {"v": secret}
        third.stop()
    assert third.stdout == ""
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for output in (first.stderr, again.stderr, third.stderr):
        assert token not in output
        assert secret not in output
    raw = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    assert secret.encode() not in raw
    assert token.encode() not in raw


async def test_root_token_file_gets_the_token_instead_of_stdout(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    token_file = tmp_path / "root-token"
    with serve(
        "--data-dir", str(tmp_path / "data"), "--root-token-file", str(token_file)
    ) as server:
        server.stop()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token.startswith("tvs.")
    assert token not in server.stdout + server.stderr
    assert server.stdout == ""


def test_root_token_file_in_a_missing_directory_is_refused_before_init(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *_command(),
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--root-token-file",
            str(tmp_path / "nope" / "token"),
            "--listen",
            f"127.0.0.1:{_free_port()}",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=STARTUP_SECONDS,
        check=False,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("listen", ["0.0.0.0", "::", "10.1.2.3"])  # noqa: S104 -- refused
def test_non_loopback_listen_without_tls_is_refused(listen: str) -> None:
    host = f"[{listen}]" if ":" in listen else listen
    result = subprocess.run(
        [*_command(), "serve", "--dev", "--listen", f"{host}:{_free_port()}"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=STARTUP_SECONDS,
        check=False,
    )
    assert result.returncode == 2
    assert "without TLS" in result.stderr
    assert "--insecure-listen" in result.stderr


def test_insecure_listen_allows_a_non_loopback_address() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [*_command(), "serve", "--dev", "--listen", f"0.0.0.0:{port}", "--insecure-listen"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server)
        assert server.stop() == 0
    finally:
        if process.poll() is None:
            server.stop(signal.SIGKILL)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    with serve(
        "--dev", "--tls-cert", str(cert), "--tls-key", str(key), scheme="https", verify=context
    ) as server:
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.get(f"{server.url}/v1/sys/seal-status")
            assert response.status_code == 200
        assert server.stop() == 0


async def test_sigterm_lets_an_in_flight_request_finish(client: httpx.AsyncClient) -> None:
    token = canary("root-")
    with serve("--dev", "--dev-root-token", token) as server:
        sent_first = asyncio.Event()
        resume = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield b'{"custom_metadata":'
            sent_first.set()
            await resume.wait()
            yield b'{"a":"b"}}'

        request = asyncio.create_task(
            client.post(
                f"{server.url}/v1/sys/namespaces/acme",
                content=body(),
                headers={"X-Vault-Token": token, "Content-Type": "application/json"},
            )
        )
        await sent_first.wait()
        await asyncio.sleep(0.3)  # the request is now in flight inside the server
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert server.process.poll() is None  # still draining
        resume.set()
        response = await request
        assert response.status_code == 200
        assert response.json()["data"]["custom_metadata"] == {"a": "b"}
        assert server.stop(None) == 0


def test_a_busy_port_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*_command(), "serve", "--dev", "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=STARTUP_SECONDS,
            check=False,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def test_a_wrong_master_key_refuses_to_open_an_existing_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key_file = tmp_path / "key"
    key_file.write_text("A" * 43 + "=\n")
    os.chmod(key_file, 0o600)
    with serve("--data-dir", str(data_dir), "--master-key-file", str(key_file)) as server:
        server.stop()
    other = canary()
    result = subprocess.run(
        [
            *_command(),
            "serve",
            "--data-dir",
            str(data_dir),
            "--listen",
            f"127.0.0.1:{_free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=False,
        env=_env(TENANTVAULT_MASTER_KEY=base64.b64encode(other.encode()[:32]).decode()),
    )
    assert result.returncode == 1
    assert "cannot open the store" in result.stderr
    assert other[:32] not in result.stderr


async def _hammer(url: str, stop: asyncio.Event, statuses: list[int]) -> None:
    """One keep-alive connection sending requests back to back until the server closes it.

    Raw HTTP/1.1 on asyncio streams: a cheap load generator, so that the server (not the
    client library) is what saturates."""
    host, port = url.removeprefix("http://").split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return
    request = b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: t\r\n\r\n"
    try:
        while not stop.is_set():
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.append(int(head.split(b" ", 2)[1]))
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError, StopIteration):
        pass
    finally:
        writer.close()


async def test_sigterm_under_load_still_stops_the_server() -> None:
    """A signal must not be lost while the loop is saturated (see _StopOnSignals)."""
    with serve("--dev", "--no-access-log") as server:
        stop = asyncio.Event()
        statuses: list[int] = []
        workers = [asyncio.create_task(_hammer(server.url, stop, statuses)) for _ in range(100)]
        await asyncio.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        try:
            exit_code = await asyncio.to_thread(server.process.wait, STARTUP_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*workers)
        assert exit_code == 0
        server.stop(None)
    assert len(statuses) > 100
    # Served, or refused while draining: never a 5xx other than that 503.
    assert set(statuses) <= {200, 503}


def _run_in_process(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    import argparse
    import io

    from tenantvault.cli import _serve

    parser = argparse.ArgumentParser()
    _serve.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = _serve.run(args, environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--listen", "0.0.0.0:8200"], {}, "without TLS"),
        (["--listen", "nohost"], {}, "HOST:PORT"),
        (["--listen", "example.com:8200"], {}, "IP address"),
        (["--dev-root-token", "x"], {}, "dev mode"),
        (["--tls-cert", "c.pem"], {}, "both a certificate and a key"),
        (["--dev", "--master-key-file", "k"], {}, "no master key"),
        ([], {"TENANTVAULT_MASTER_KEY": "CANARY-not-a-key"}, "base64"),
        ([], {"TENANTVAULT_LISTEN": "CANARY"}, "HOST:PORT"),
    ],
)
def test_bad_flags_and_settings_exit_2_before_anything_starts(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    code, out, err = _run_in_process(*argv, environ=environ)
    assert code == 2
    assert message in err
    assert out == ""
    assert "CANARY" not in err


@pytest.mark.parametrize(
    ("flags", "extra_env", "on_uvloop"),
    [
        ((), {}, True),
        (("--event-loop", "asyncio"), {}, False),
        ((), {"TENANTVAULT_EVENT_LOOP": "asyncio"}, False),
        (("--event-loop", "uvloop"), {"TENANTVAULT_EVENT_LOOP": "asyncio"}, True),
    ],
)
async def test_serve_runs_on_uvloop_unless_asked_for_asyncio(
    client: httpx.AsyncClient,
    flags: tuple[str, ...],
    extra_env: dict[str, str],
    on_uvloop: bool,
) -> None:
    """uvloop by default; `--event-loop asyncio` (or its variable, which a flag overrides)
    serves on asyncio's own loop. Either serves, and stops cleanly on SIGTERM."""
    token = canary("loop-root-")
    with serve("--dev", "--dev-root-token", token, *flags, env=_env(**extra_env)) as server:
        written = await client.post(
            f"{server.url}/v1/secret/data/app",
            headers={"X-Vault-Token": token},
            json={"data": {"k": "v"}},
        )
        assert written.status_code == 200, written.text
        assert server.stop() == 0
    loop = "uvloop" if on_uvloop else "asyncio"
    assert f"(dev mode, in-memory store; {loop} event loop)" in server.stderr


def test_an_unknown_event_loop_is_refused() -> None:
    flag = subprocess.run(
        [*_command(), "serve", "--dev", "--event-loop", "trio"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert flag.returncode == 2
    assert "invalid choice: 'trio'" in flag.stderr
    variable = subprocess.run(
        [*_command(), "serve", "--dev"],
        capture_output=True,
        text=True,
        env=_env(TENANTVAULT_EVENT_LOOP="trio"),
        timeout=30,
    )
    assert variable.returncode == 2
    assert "event loop must be 'uvloop' or 'asyncio'" in variable.stderr
