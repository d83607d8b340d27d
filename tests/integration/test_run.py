"""`tenantvault run` end to end against a real `tenantvault serve --dev` (issue 15, acceptance
1-3): a stdio child gets its `tv://` values in its environment only, its JSON-RPC stream passes
byte-exact, signals and exit codes are the child's, AppRole (wrapped secret-id) and JWT logins,
rotation restarts or signals the child, and the value shows nowhere else."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration._support import (
    canary,
    clean_env,
    remember_secret,
    tenantvault_executable,
    unique_name,
)
from tests.integration.conftest import TenantVaultServer

CHILD = Path(__file__).with_name("_run_child.py")
# Generous bounds for events to show up; they are waits, never assertions on durations.
WAIT_SECONDS = 30.0
READER = """
path "secret/data/mcp/*" { capabilities = ["read"] }
path "secret/metadata/mcp/*" { capabilities = ["read"] }
"""
ISSUER = "https://workload.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

pytestmark = pytest.mark.parametrize("tenantvault_server", ["dev"], indirect=True)


@dataclass
class Setup:
    """A tenant with a secret at `secret/mcp/github`, and a reader token for it."""

    server: TenantVaultServer
    http: httpx.Client
    tenant: str
    value: str
    token: str
    tmp: Path

    def root(self, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        response = self.http.request(
            method,
            f"/v1/{path}",
            json=body,
            headers={
                "X-Vault-Token": self.server.root_token,
                "X-Vault-Namespace": self.tenant,
                **headers,
            },
        )
        assert response.status_code < 300, response.text
        return response

    def put(self, value: str) -> None:
        self.root("POST", "secret/data/mcp/github", {"data": {"token": value}})


@pytest.fixture
def setup(tenantvault_server: TenantVaultServer, tmp_path: Path) -> Iterator[Setup]:
    with httpx.Client(base_url=tenantvault_server.addr, timeout=30) as http:
        tenant = unique_name("run")
        response = http.post(
            f"/v1/sys/namespaces/{tenant}",
            headers={"X-Vault-Token": tenantvault_server.root_token},
        )
        assert response.status_code < 300, response.text
        value = canary("ghp-")
        made = Setup(tenantvault_server, http, tenant, value, "", tmp_path)
        made.put(value)
        made.root("PUT", "sys/policies/acl/reader", {"policy": READER})
        created = made.root("POST", "auth/token/create", {"policies": ["reader"], "ttl": "1h"})
        made.token = remember_secret(created.json()["auth"]["client_token"])
        yield made


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _env(setup: Setup, **extra: str) -> dict[str, str]:
    return clean_env(
        setup.tmp / "home",
        VAULT_ADDR=setup.server.addr,
        VAULT_NAMESPACE=setup.tenant,
        **extra,
    )


def _start(
    setup: Setup, *options: str, env: dict[str, str], command: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    events = setup.tmp / "events.jsonl"
    argv = [*tenantvault_executable(), "run", *options]
    if command is None:
        command = [sys.executable, str(CHILD), str(events), "GITHUB_TOKEN"]
    if not any(option.startswith("--mcp-config") for option in options):
        argv += ["--", *command]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=setup.tmp,
    )
    return process, events


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _wait_for(path: Path, condition: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        events = _events(path)
        if condition(events):
            return events
        time.sleep(0.05)
    pytest.fail(f"the child's events never matched: {_events(path)}")


def _finish(
    process: subprocess.Popen[bytes], payload: bytes = b'{"exit": 0}\n'
) -> tuple[int, bytes, str]:
    out, err = process.communicate(payload, timeout=WAIT_SECONDS)
    return process.returncode, out, err.decode(errors="replace")


def _started(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == "start"]


def _scan_for(value: str, directory: Path) -> list[str]:
    """Every file under `directory` holding `value`."""
    needle = value.encode()
    return [
        str(path) for path in directory.rglob("*") if path.is_file() and needle in path.read_bytes()
    ]


def _command_lines_holding(value: str) -> list[str]:
    """The processes whose /proc/<pid>/cmdline holds `value`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile, or not ours to read
        if value.encode() in cmdline:
            found.append(entry.name)
    return found


def test_the_child_gets_the_value_and_the_stdio_stream_passes_byte_exact(setup: Setup) -> None:
    process, events_file = _start(
        setup, env=_env(setup, VAULT_TOKEN=setup.token, GITHUB_TOKEN="tv://secret/mcp/github#token")
    )
    events = _wait_for(events_file, lambda events: bool(_started(events)))
    child_pid = events[0]["pid"]
    # The value is in the child's environment, and in no process's command line.
    assert setup.value.encode() in Path(f"/proc/{child_pid}/environ").read_bytes()
    assert _command_lines_holding(setup.value) == []
    assert process.stdin is not None
    assert process.stdout is not None
    lines = [
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1"}}\n',
        '{"jsonrpc":"2.0","id":2,"params":{"q":"caf\u00e9 \u2603"}}\n'.encode(),
        b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n',
        b'{"jsonrpc":"2.0","id":3,"params":{"blob":"' + b"x" * 100_000 + b'"}}\n',
    ]
    for line in lines:
        process.stdin.write(line)
        process.stdin.flush()
        assert process.stdout.readline() == line
    code, rest, stderr = _finish(process, b'{"exit": 5}\n')
    assert code == 5, stderr
    assert rest == b"", "nothing but the child's answers may reach stdout"
    [start] = _started(_events(events_file))
    assert start["sha256"] == _digest(setup.value)
    assert start["vault_token"] is False, "our token must not be handed to the child"
    assert setup.value not in stderr
    assert setup.token not in stderr
    assert _scan_for(setup.value, setup.tmp) == []


def test_signals_are_forwarded_and_the_exit_code_is_the_childs(setup: Setup) -> None:
    process, events_file = _start(
        setup, env=_env(setup, VAULT_TOKEN=setup.token, GITHUB_TOKEN="tv://secret/mcp/github#token")
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    process.send_signal(signal.SIGUSR1)
    _wait_for(events_file, lambda events: any(e["event"] == "SIGUSR1" for e in events))
    process.send_signal(signal.SIGTERM)
    # Stdin stays open until the child has the signal: at EOF it would exit by itself.
    _wait_for(events_file, lambda events: any(e["event"] == "SIGTERM" for e in events))
    _, stderr = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 143, stderr
    assert [e["event"] for e in _events(events_file)] == ["start", "SIGUSR1", "SIGTERM"]


def test_an_unreadable_reference_exits_2_naming_it_and_starts_nothing(setup: Setup) -> None:
    reference = "tv://secret/other/place#token"
    process, events_file = _start(
        setup, env=_env(setup, VAULT_TOKEN=setup.token, GITHUB_TOKEN=reference)
    )
    code, out, stderr = _finish(process)
    assert code == 2
    assert out == b""
    assert reference in stderr
    assert "permission denied" in stderr
    assert not events_file.exists(), "no child may start with a missing credential"


def test_a_missing_field_exits_2(setup: Setup) -> None:
    process, events_file = _start(
        setup, env=_env(setup, VAULT_TOKEN=setup.token, GITHUB_TOKEN="tv://secret/mcp/github#nope")
    )
    code, _, stderr = _finish(process)
    assert code == 2
    assert "has no field 'nope'" in stderr
    assert not events_file.exists()


def _approle(setup: Setup, **role: Any) -> tuple[Path, str]:
    """An AppRole login for the reader policy: the role-id file and a wrapped secret-id."""
    setup.root("POST", "sys/auth/approle", {"type": "approle"})
    setup.root("POST", "auth/approle/role/mcp", {"token_policies": ["reader"], **role})
    role_id = setup.root("GET", "auth/approle/role/mcp/role-id").json()["data"]["role_id"]
    wrapped = setup.root(
        "POST", "auth/approle/role/mcp/secret-id", {}, **{"X-Vault-Wrap-TTL": "5m"}
    )
    wrapping_token = remember_secret(wrapped.json()["wrap_info"]["token"])
    role_id_file = setup.tmp / "role-id"
    role_id_file.write_text(role_id)
    return role_id_file, wrapping_token


def test_approle_login_with_a_wrapped_secret_id_unwraps_it_once(setup: Setup) -> None:
    role_id_file, wrapping_token = _approle(setup)
    wrapped_file = setup.tmp / "wrapped-secret-id"
    wrapped_file.write_text(wrapping_token + "\n")
    process, events_file = _start(
        setup,
        "--role-id-file",
        str(role_id_file),
        "--wrapped-secret-id-file",
        str(wrapped_file),
        env=_env(setup, GITHUB_TOKEN="tv://secret/mcp/github#token"),
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    code, _, stderr = _finish(process)
    assert code == 0, stderr
    assert _started(_events(events_file))[0]["sha256"] == _digest(setup.value)
    assert "as a approle identity" in stderr or "approle" in stderr
    again = setup.http.post(
        "/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": wrapping_token}, json={}
    )
    assert again.status_code == 400, "the wrapping token must be used up by the run"
    assert wrapping_token not in stderr
    assert setup.value not in stderr


def test_jwt_login_from_a_projected_token_file(setup: Setup) -> None:
    pem = (
        RSA_KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    setup.root("POST", "sys/auth/jwt", {"type": "jwt"})
    setup.root("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [pem], "bound_issuer": ISSUER})
    setup.root(
        "POST",
        "auth/jwt/role/workload",
        {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["tenantvault"],
            "token_policies": ["reader"],
        },
    )
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "mcp-github",
        "aud": "tenantvault",
        "iat": now,
        "exp": now + 600,
    }
    token_file = setup.tmp / "token.jwt"
    token_file.write_text(remember_secret(jwt.encode(claims, RSA_KEY, algorithm="RS256")))
    process, events_file = _start(
        setup,
        "--jwt-file",
        str(token_file),
        "--role",
        "workload",
        env=_env(setup, GITHUB_TOKEN="tv://secret/mcp/github#token"),
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    code, _, stderr = _finish(process)
    assert code == 0, stderr
    assert _started(_events(events_file))[0]["sha256"] == _digest(setup.value)


def test_rotation_restarts_the_child_with_the_new_value(setup: Setup) -> None:
    process, events_file = _start(
        setup,
        "--on-rotate",
        "restart",
        "--poll-interval",
        "1",
        env=_env(setup, VAULT_TOKEN=setup.token, GITHUB_TOKEN="tv://secret/mcp/github#token"),
    )
    first = _wait_for(events_file, lambda events: bool(_started(events)))[0]
    rotated = canary("ghp-rotated-")
    setup.put(rotated)
    events = _wait_for(events_file, lambda events: len(_started(events)) == 2)
    second = _started(events)[1]
    assert second["sha256"] == _digest(rotated)
    assert second["pid"] != first["pid"]
    assert "SIGTERM" in [e["event"] for e in events], "the old child is stopped with SIGTERM"
    code, _, stderr = _finish(process)
    assert code == 0, stderr
    assert rotated not in stderr
    assert setup.value not in stderr


def test_rotation_with_signal_hup_signals_the_child(setup: Setup) -> None:
    process, events_file = _start(
        setup,
        "--on-rotate=signal:HUP",
        "--poll-interval=1",
        env=_env(setup, VAULT_TOKEN=setup.token, GITHUB_TOKEN="tv://secret/mcp/github#token"),
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    setup.put(canary("ghp-rotated-"))
    events = _wait_for(events_file, lambda events: any(e["event"] == "SIGHUP" for e in events))
    assert len(_started(events)) == 1
    code, _, stderr = _finish(process)
    assert code == 0, stderr


def test_an_expiring_token_is_replaced_without_restarting_the_child(setup: Setup) -> None:
    """The AppRole token lives 2s at most; the run logs in again, the child stays, and a
    rotation after the first token's death is still seen (so the new token works)."""
    role_id_file, wrapping_token = _approle(setup, token_ttl="2s", token_max_ttl="2s")
    wrapped_file = setup.tmp / "wrapped"
    wrapped_file.write_text(wrapping_token)
    process, events_file = _start(
        setup,
        "--role-id-file",
        str(role_id_file),
        "--wrapped-secret-id-file",
        str(wrapped_file),
        "--on-rotate=restart",
        "--poll-interval=1",
        env=_env(setup, GITHUB_TOKEN="tv://secret/mcp/github#token"),
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    time.sleep(4)  # two lifetimes of the first token
    assert len(_started(_events(events_file))) == 1, "a new token must not restart the child"
    rotated = canary("ghp-rotated-")
    setup.put(rotated)
    events = _wait_for(events_file, lambda events: len(_started(events)) == 2)
    assert _started(events)[1]["sha256"] == _digest(rotated)
    code, _, stderr = _finish(process)
    assert code == 0, stderr
    assert "logged in again" in stderr


def test_an_mcp_config_entry_is_run_with_its_env_resolved(setup: Setup) -> None:
    events_file = setup.tmp / "events.jsonl"
    config = setup.tmp / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "github": {
                        "command": sys.executable,
                        "args": [str(CHILD), str(events_file), "GITHUB_TOKEN"],
                        "env": {"GITHUB_TOKEN": "tv://secret/mcp/github#token"},
                    }
                }
            }
        )
    )
    process, _ = _start(
        setup,
        "--mcp-config",
        str(config),
        "--server",
        "github",
        env=_env(setup, VAULT_TOKEN=setup.token),
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    code, _, stderr = _finish(process)
    assert code == 0, stderr
    assert _started(_events(events_file))[0]["sha256"] == _digest(setup.value)
    assert _scan_for(setup.value, setup.tmp) == []


def test_env_file_references_are_resolved(setup: Setup) -> None:
    env_file = setup.tmp / "mcp.env"
    env_file.write_text("# the github server\nGITHUB_TOKEN=tv://secret/mcp/github#token\n")
    process, events_file = _start(
        setup, "--env-file", str(env_file), env=_env(setup, VAULT_TOKEN=setup.token)
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    code, _, stderr = _finish(process)
    assert code == 0, stderr
    assert _started(_events(events_file))[0]["sha256"] == _digest(setup.value)
    assert os.environ.get("GITHUB_TOKEN") != setup.value


def test_a_short_lived_token_is_renewed_in_the_background(setup: Setup) -> None:
    """A 4s renewable token from VAULT_TOKEN outlives its TTL: a rotation seen after its
    lifetime proves the run still reads with it (renewals, no login method)."""
    created = setup.root("POST", "auth/token/create", {"policies": ["reader"], "ttl": "4s"})
    token = remember_secret(created.json()["auth"]["client_token"])
    log_file = setup.tmp / "run.log"
    process, events_file = _start(
        setup,
        "--on-rotate=restart",
        "--poll-interval=1",
        "--log-file",
        str(log_file),
        env=_env(setup, VAULT_TOKEN=token, GITHUB_TOKEN="tv://secret/mcp/github#token"),
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    time.sleep(5)  # longer than the token lives unrenewed
    rotated = canary("ghp-rotated-")
    setup.put(rotated)
    events = _wait_for(events_file, lambda events: len(_started(events)) == 2)
    assert _started(events)[1]["sha256"] == _digest(rotated)
    code, out, stderr = _finish(process)
    assert code == 0, log_file.read_text()
    assert out == b""
    assert stderr == "", "with --log-file, nothing of ours goes to stderr"
    log = log_file.read_text()
    assert "token renewed" in log
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert rotated not in log
    assert token not in log


def test_rotation_with_exit_stops_the_child_and_the_run(setup: Setup) -> None:
    process, events_file = _start(
        setup,
        "--on-rotate=exit",
        "--poll-interval=1",
        env=_env(setup, VAULT_TOKEN=setup.token, GITHUB_TOKEN="tv://secret/mcp/github#token"),
    )
    _wait_for(events_file, lambda events: bool(_started(events)))
    setup.put(canary("ghp-rotated-"))
    _wait_for(events_file, lambda events: any(e["event"] == "SIGTERM" for e in events))
    _, stderr = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 143, stderr
    assert len(_started(_events(events_file))) == 1
    assert b"new secret version for GITHUB_TOKEN: stopping" in stderr
