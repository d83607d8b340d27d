"""The pkcs11 seal against SoftHSM2, a real PKCS#11 module: `bao operator init` hands out
recovery keys, every start auto-unseals through the HSM, a wrong PIN or a missing token stops
the start with a clear message, and the master key is on disk only as the HSM wrapped it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration._support import (
    STARTUP_SECONDS,
    BaoCLI,
    bao_executable,
    clean_env,
    free_port,
    stop,
    tenantvault_executable,
)

_LIBRARY_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
)
_PIN = "4711-user"


def _library() -> Path:
    for candidate in _LIBRARY_CANDIDATES:
        if candidate.is_file():
            return candidate
    pytest.fail("SoftHSM2 is not installed (apt-get install -y softhsm2): the pkcs11 seal's test")


@dataclass(frozen=True)
class Token:
    conf: Path
    label: str


def _hsm(token: Token, script: str) -> str:
    """Run python-pkcs11 in a child (the module keeps one library per process) on `token`."""
    prelude = textwrap.dedent(
        f"""
        import base64, sys, pkcs11
        from pkcs11 import Attribute, KeyType, Mechanism, MGF, ObjectClass
        from pkcs11.mechanisms import GCMParams
        token = pkcs11.lib({str(_library())!r}).get_token(token_label={token.label!r})
        session = token.open(user_pin={_PIN!r}, rw=True)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        env={**clean_env(token.conf.parent), "SOFTHSM2_CONF": str(token.conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture
def token(tmp_path: Path) -> Token:
    """A fresh SoftHSM2 token with an AES key and an RSA key pair that never leave it."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    init = subprocess.run(
        [
            "softhsm2-util",
            *("--init-token", "--free", "--label", "tenantvault"),
            *("--pin", _PIN, "--so-pin", "so-secret"),
        ],
        env={**clean_env(tmp_path), "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    made = Token(conf, "tenantvault")
    _hsm(
        made,
        """
        private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        session.generate_key(KeyType.AES, 256, label="seal-aes", store=True, template=private)
        session.generate_keypair(KeyType.RSA, 2048, label="seal-rsa", store=True,
                                 private_template=private)
        """,
    )
    return made


@dataclass
class Served:
    addr: str
    home: Path
    process: subprocess.Popen[bytes]

    def http(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        url = f"{self.addr}/v1/{path}"
        return httpx.request(method, url, json=json, headers=headers, timeout=10)


def _command(home: Path, token: Token, mechanism: str, port: int) -> list[str]:
    return [
        *tenantvault_executable(),
        "serve",
        *("--seal", "pkcs11", "--data-dir", str(home / "data")),
        *("--listen", f"127.0.0.1:{port}"),
        *("--pkcs11-library", str(_library()), "--pkcs11-token-label", token.label),
        *("--pkcs11-key-label", "seal-aes" if mechanism == "CKM_AES_GCM" else "seal-rsa"),
        *("--pkcs11-mechanism", mechanism),
        *("--log-level", "debug"),
    ]


def _env(home: Path, token: Token, pin: str = _PIN) -> dict[str, str]:
    return clean_env(home, SOFTHSM2_CONF=str(token.conf), TENANTVAULT_PKCS11_PIN=pin)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop(process)


def _start(
    started: list[subprocess.Popen[bytes]],
    home: Path,
    token: Token,
    mechanism: str,
    port: int | None = None,
) -> Served:
    port = port or free_port()
    log = home / "server.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            _command(home, token, mechanism, port),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(home, token),
        )
    started.append(process)
    served = Served(f"http://127.0.0.1:{port}", home, process)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if served.http("GET", "sys/seal-status").status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail("serve did not answer")


def _refused_start(
    home: Path, token: Token, *, pin: str = _PIN
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(home, token, "CKM_AES_GCM", free_port()),
        env=_env(home, token, pin),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _master_key(token: Token, data_dir: Path, mechanism: str) -> bytes:
    """The master key, unwrapped by the HSM from the seal file (what the server does)."""
    wrapped = json.loads((data_dir / "seal.json").read_text())["wrapped_master_key"]
    if mechanism == "CKM_AES_GCM":
        script = f"""
        blob = base64.b64decode({wrapped!r})
        key = session.get_key(label="seal-aes", key_type=KeyType.AES,
                              object_class=ObjectClass.SECRET_KEY)
        from tenantvault.crypto import encode_aad
        params = GCMParams(blob[:12], encode_aad("tenantvault:seal:pkcs11-master-key"), 128)
        sys.stdout.write(bytes(key.decrypt(blob[12:], mechanism=Mechanism.AES_GCM,
                                           mechanism_param=params)).hex())
        """
    else:
        script = f"""
        blob = base64.b64decode({wrapped!r})
        key = session.get_key(label="seal-rsa", key_type=KeyType.RSA,
                              object_class=ObjectClass.PRIVATE_KEY)
        oaep = (Mechanism.SHA_1, MGF.SHA1, None)
        plain = key.decrypt(blob, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
        sys.stdout.write(bytes(plain).hex())
        """
    return bytes.fromhex(_hsm(token, script))


@pytest.mark.parametrize("mechanism", ["CKM_AES_GCM", "CKM_RSA_PKCS_OAEP"])
def test_auto_unseal_on_every_start(
    tmp_path: Path, token: Token, serve: list[subprocess.Popen[bytes]], mechanism: str
) -> None:
    home = tmp_path / "server"
    home.mkdir()
    served = _start(serve, home, token, mechanism)
    status = served.http("GET", "sys/seal-status").json()
    assert (status["type"], status["initialized"], status["sealed"], status["recovery_seal"]) == (
        "pkcs11",
        False,
        True,
        True,
    )
    bao = BaoCLI(bao_executable(), served.addr, home)
    init = bao.run(
        "operator", "init", "-recovery-shares=3", "-recovery-threshold=2", "-format=json"
    )
    assert init.code == 0, init.text
    document = json.loads(init.out)
    assert len(document["recovery_keys_b64"]) == 3
    assert document["unseal_keys_b64"] == []
    root = document["root_token"]
    status = served.http("GET", "sys/seal-status").json()
    assert (status["sealed"], status["t"], status["n"]) == (False, 2, 3)
    # The recovery keys mint a new root token (generate-root-token, OTP-encoded).
    root_headers = {"X-Vault-Token": root}
    attempt = served.http("PUT", "sys/generate-root-token/attempt", json={}, headers=root_headers)
    otp, nonce = attempt.json()["data"]["otp"], attempt.json()["data"]["nonce"]
    for key in document["recovery_keys_b64"][:2]:
        reply = served.http(
            "PUT",
            "sys/generate-root-token/update",
            json={"key": key, "nonce": nonce},
            headers=root_headers,
        )
    assert reply.json()["data"]["complete"] is True, reply.text
    decoded = bao.run(
        "operator",
        "generate-root",
        f"-decode={reply.json()['data']['encoded_token']}",
        f"-otp={otp}",
        token=root,
    )
    assert decoded.code == 0, decoded.text
    assert decoded.out.strip().startswith("tvs.")
    assert bao.run("secrets", "enable", "-path=kv", "-version=2", "kv", token=root).code == 0
    assert bao.run("kv", "put", "-mount=kv", "app", "password=hunter2", token=root).code == 0

    # Every start unseals through the HSM; the data is there.
    stop(served.process)
    port = int(served.addr.rsplit(":", 1)[1])
    served = _start(serve, home, token, mechanism, port)
    assert served.http("GET", "sys/health").status_code == 200
    got = bao.run("kv", "get", "-mount=kv", "-field=password", "app", token=root)
    assert (got.code, got.out.strip()) == (0, "hunter2"), got.text
    stop(served.process)

    # The master key is on disk only as the HSM wrapped it.
    data_dir = home / "data"
    master_key = _master_key(token, data_dir, mechanism)
    assert len(master_key) == 32
    forms = [master_key, base64.b64encode(master_key), master_key.hex().encode()]
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(form in content for form in forms), path
    assert not (data_dir / "master.key").exists()


def test_a_wrong_pin_or_a_missing_token_stops_the_start(
    tmp_path: Path, token: Token, serve: list[subprocess.Popen[bytes]]
) -> None:
    home = tmp_path / "server"
    home.mkdir()
    served = _start(serve, home, token, "CKM_AES_GCM")
    assert served.http("PUT", "sys/init", json={}).status_code == 200
    stop(served.process)

    wrong_pin = _refused_start(home, token, pin="0000")
    assert wrong_pin.returncode == 1
    assert "the HSM refused the PIN for its token (label 'tenantvault')" in wrong_pin.stderr
    assert "Traceback" not in wrong_pin.stderr + wrong_pin.stdout
    assert "0000" not in wrong_pin.stderr

    removed = Token(token.conf, "another-token")  # the token the store needs is not there
    missing = _refused_start(home, removed)
    assert missing.returncode == 1
    assert "the HSM token (label 'another-token') is not present" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
