"""`tenantvault mcp import` and `mcp check` on MCP client configurations, against a real
`tenantvault serve --dev` (issue 15, acceptance 4): plaintext keys move into the tenant, the
file is rewritten with references, the original is kept 0600, `--dry-run` changes nothing, and
the rewritten config runs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration._run_child import __file__ as CHILD_FILE
from tests.integration._support import (
    canary,
    clean_env,
    remember_secret,
    tenantvault_executable,
    unique_name,
)
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.parametrize("tenantvault_server", ["dev"], indirect=True)
TIMEOUT_SECONDS = 60


def _tv(
    server: TenantVaultServer, home: Path, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = clean_env(home, VAULT_ADDR=server.addr, VAULT_TOKEN=token or server.root_token)
    return subprocess.run(
        [*tenantvault_executable(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def _config(path: Path, events: Path, key: str) -> dict[str, Any]:
    document = {
        "mcpServers": {
            "github": {
                "command": sys.executable,
                "args": [CHILD_FILE, str(events), "GITHUB_PERSONAL_ACCESS_TOKEN"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": key, "GITHUB_HOST": "github.com"},
            }
        },
        "otherSetting": {"theme": "dark"},
    }
    path.write_text(json.dumps(document, indent=2))
    return document


@pytest.fixture
def tenant(tenantvault_server: TenantVaultServer) -> str:
    name = unique_name("mcp")
    response = httpx.post(
        f"{tenantvault_server.addr}/v1/sys/namespaces/{name}",
        headers={"X-Vault-Token": tenantvault_server.root_token},
    )
    assert response.status_code < 300, response.text
    return name


def test_import_moves_plaintext_keys_and_the_rewritten_config_runs(
    tenantvault_server: TenantVaultServer, tenant: str, tmp_path: Path
) -> None:
    key = remember_secret(canary("ghp-"))
    config = tmp_path / "claude_desktop_config.json"
    events = tmp_path / "events.jsonl"
    original = _config(config, events, key)
    before = config.read_bytes()

    dry = _tv(
        tenantvault_server,
        tmp_path,
        "mcp",
        "import",
        str(config),
        "--tenant",
        tenant,
        "--keep",
        "GITHUB_HOST",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "would move github GITHUB_PERSONAL_ACCESS_TOKEN" in dry.stdout
    assert config.read_bytes() == before, "--dry-run must change nothing"
    assert not (tmp_path / "claude_desktop_config.json.bak").exists()
    read = httpx.get(
        f"{tenantvault_server.addr}/v1/secret/data/mcp/github",
        headers={"X-Vault-Token": tenantvault_server.root_token, "X-Vault-Namespace": tenant},
    )
    assert read.status_code == 404, "--dry-run must write nothing"

    done = _tv(
        tenantvault_server,
        tmp_path,
        "mcp",
        "import",
        str(config),
        "--tenant",
        tenant,
        "--keep",
        "GITHUB_HOST",
    )
    assert done.returncode == 0, done.stderr
    assert key not in done.stdout + done.stderr
    rewritten = json.loads(config.read_text())
    env = rewritten["mcpServers"]["github"]["env"]
    reference = f"tv://secret/mcp/github?namespace={tenant}#GITHUB_PERSONAL_ACCESS_TOKEN"
    assert env == {"GITHUB_PERSONAL_ACCESS_TOKEN": reference, "GITHUB_HOST": "github.com"}
    assert rewritten["otherSetting"] == original["otherSetting"]
    assert key not in config.read_text()
    backup = tmp_path / "claude_desktop_config.json.bak"
    assert backup.read_bytes() == before
    assert backup.stat().st_mode & 0o777 == 0o600
    stored = httpx.get(
        f"{tenantvault_server.addr}/v1/secret/data/mcp/github",
        headers={"X-Vault-Token": tenantvault_server.root_token, "X-Vault-Namespace": tenant},
    ).json()["data"]["data"]
    assert stored == {"GITHUB_PERSONAL_ACCESS_TOKEN": key}

    checked = _tv(tenantvault_server, tmp_path, "mcp", "check", str(config))
    assert checked.returncode == 0, checked.stderr
    assert reference in checked.stdout
    assert "ok (version 1)" in checked.stdout
    assert "plaintext value" in checked.stdout
    assert key not in checked.stdout + checked.stderr

    ran = _tv(
        tenantvault_server, tmp_path, "run", "--mcp-config", str(config), "--server", "github"
    )
    assert ran.returncode == 0, ran.stderr
    [start] = [json.loads(line) for line in events.read_text().splitlines()]
    assert start["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in ran.stdout + ran.stderr

    # A second import would overwrite the backup of the plaintext original: refused, and
    # nothing changes.
    rewritten_bytes = config.read_bytes()
    again = _tv(tenantvault_server, tmp_path, "mcp", "import", str(config), "--tenant", tenant)
    assert again.returncode == 1
    assert ".bak exists" in again.stderr
    assert config.read_bytes() == rewritten_bytes
    assert backup.read_bytes() == before


def test_check_reports_an_unreadable_reference_and_exits_1(
    tenantvault_server: TenantVaultServer, tenant: str, tmp_path: Path
) -> None:
    config = tmp_path / "mcp.json"
    _config(config, tmp_path / "events.jsonl", f"tv://secret/absent?namespace={tenant}#token")
    checked = _tv(tenantvault_server, tmp_path, "mcp", "check", str(config))
    assert checked.returncode == 1
    assert "no such secret" in checked.stdout
    ran = _tv(
        tenantvault_server, tmp_path, "run", "--mcp-config", str(config), "--server", "github"
    )
    assert ran.returncode == 2
    assert f"tv://secret/absent?namespace={tenant}#token" in ran.stderr
    assert not (tmp_path / "events.jsonl").exists()
