"""Issue 8 item 5 against the real `tenantvault serve`: kill -9, restart, and the audit file
says so (a `gap` checkpoint), `sys/health` says so, and `audit verify` does not say ok."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import orjson

from tests.server.test_serve import STARTUP_SECONDS, _command, _env, serve


def _verify(
    log: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), "audit", "verify", str(log), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=STARTUP_SECONDS,
        env=env or _env(),
    )


def test_a_kill_9_then_restart_is_reported_by_the_log_health_and_verify(tmp_path: Path) -> None:
    """Before: the restart resumed the chain and wrote its own checkpoints, so the log of a
    killed server verified ok once it had been started and stopped again."""
    log, token_file = tmp_path / "audit.log", tmp_path / "root-token"
    args = (
        "--data-dir", str(tmp_path / "data"),
        "--audit-file", str(log),
        "--root-token-file", str(token_file),
    )  # fmt: skip
    with serve(*args) as server:
        headers = {"X-Vault-Token": token_file.read_text().strip()}
        with httpx.Client(base_url=f"{server.url}/v1", headers=headers, timeout=10) as client:
            assert client.post("sys/namespaces/acme").status_code in (200, 204)
            for n in range(5):
                reply = client.post(
                    "secret/data/k", json={"data": {"v": n}}, headers={"X-Vault-Namespace": "acme"}
                )
                assert reply.status_code == 200
            health = client.get("sys/health").json()["audit"]
            assert health["chain_intact"] is True
            # Against the running server: its chain head anchors the live log...
            env = _env(VAULT_ADDR=server.url, VAULT_TOKEN=headers["X-Vault-Token"])
            live = _verify(log, "--device", "file", env=env)
            assert live.returncode == 0, live.stdout + live.stderr
            # ...and a copy cut right after its first checkpoint, which verifies on its own,
            # fails against it.
            cut = tmp_path / "cut.log"
            cut.write_bytes(log.read_bytes().splitlines(keepends=True)[0])
            assert _verify(cut).returncode == 0
            anchored = _verify(cut, "--device", "file", env=env)
            assert anchored.returncode == 1
            assert "truncated" in anchored.stdout
        server.stop(signal.SIGKILL)

    with serve(*args) as server:
        health = httpx.get(f"{server.url}/v1/sys/health", timeout=10).json()["audit"]
        assert health["chain_intact"] is False
        assert "kill -9" in health["gaps"][0]["detail"]
        assert server.stop() == 0

    gaps = [
        entry
        for entry in map(orjson.loads, log.read_bytes().splitlines())
        if entry["type"] == "checkpoint" and entry["reason"] == "gap"
    ]
    assert len(gaps) == 1
    report = _verify(log)
    assert report.returncode == 1
    assert "GAP" in report.stdout
