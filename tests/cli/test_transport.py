"""The CLI's HTTP transport: TLS with VAULT_CACERT, redirects not followed, odd answers."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cli.conftest import (
    CLI,
    Server,
    assert_clean,
    canary,
    start_server,
    stop_server,
    wait_until_serving,
)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantvault test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
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
    cert_path = directory / "server.crt"
    key_path = directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    directory = tmp_path_factory.mktemp("cli-tls")
    cert, key = _self_signed(directory)
    process, info = start_server(
        directory, canary("root-"), "--tls-cert", str(cert), "--tls-key", str(key), scheme="https"
    )
    try:
        wait_until_serving(process, info, tls=ssl.create_default_context(cafile=str(cert)))
        yield info, cert
    finally:
        stop_server(process)


def test_tls_with_vault_cacert(cli: CLI, tls_server: tuple[Server, Path]) -> None:
    server, cert = tls_server
    got = cli("status", address=server.address, env={"VAULT_CACERT": str(cert)})
    assert got.code == 0, got.err
    flag = cli("status", f"-ca-cert={cert}", address=server.address)
    assert flag.code == 0, flag.err


def test_tls_without_the_ca_fails_verification(cli: CLI, tls_server: tuple[Server, Path]) -> None:
    server, _ = tls_server
    got = cli("kv", "get", "secret/x", address=server.address, namespace="acme")
    assert got.code == 1
    assert "TLS certificate verification failed" in got.err
    assert "VAULT_CACERT" in got.err
    assert_clean(got, cli.server.root_token)


def test_an_unreadable_ca_file_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    got = cli("status", address="https://127.0.0.1:1", env={"VAULT_CACERT": str(bogus)})
    assert got.code == 2
    assert "CA certificate" in got.err


class _Odd(BaseHTTPRequestHandler):
    """Answers that no tenantvault sends: a redirect elsewhere, HTML, a terminal escape."""

    seen_tokens: list[str | None] = []  # noqa: RUF012 -- test-only record shared across requests

    def log_message(self, format: str, *args: object) -> None:
        del format, args

    def do_GET(self) -> None:
        _Odd.seen_tokens.append(self.headers.get("X-Vault-Token"))
        if self.path.startswith("/v1/sys/seal-status"):
            self._reply(307, b"", {"Location": "http://203.0.113.9/v1/sys/seal-status"})
        elif self.path.startswith("/v1/secret/data/html"):
            self._reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
        else:
            self._reply(
                400, b'{"errors":["\\u001b[31mred\\u001b[0m \\u202e"]}', {"Content-Type": "x"}
            )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def odd_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_redirects_are_not_followed(cli: CLI, odd_server: str) -> None:
    got = cli("status", address=odd_server)
    assert got.code == 1
    assert "redirected to http://203.0.113.9/v1/sys/seal-status" in got.err
    assert "Code: 307" in got.err


def test_a_non_json_error_is_described_not_printed(cli: CLI, odd_server: str) -> None:
    got = cli("kv", "get", "secret/html", address=odd_server)
    assert got.code == 1
    assert "Code: 502" in got.err
    assert "not JSON (text/html, 24 bytes)" in got.err
    assert "<html>" not in got.err


def test_control_characters_from_the_server_are_escaped(cli: CLI, odd_server: str) -> None:
    got = cli("kv", "get", "secret/other", address=odd_server)
    assert got.code == 1
    assert "\x1b" not in got.err
    assert "\u202e" not in got.err
    assert "\\x1b[31mred" in got.err
    assert "\\u202e" in got.err


def test_status_sends_no_token(cli: CLI, odd_server: str) -> None:
    _Odd.seen_tokens.clear()
    cli("status", address=odd_server)
    assert _Odd.seen_tokens == [None]
