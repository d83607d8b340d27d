"""Issue 8 item 8: the API may create file audit devices only in the operator's directory;
and `GET sys/audit/<name>` hands out a file device's chain head, `verify --device`'s anchor."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import tenantvault
from tenantvault._config import ServerSettings
from tenantvault.audit._chain import ChainHead, verify_lines
from tenantvault.server import TenantVaultApp, create_app
from tests.server.conftest import BASE_URL, Vault


@pytest.fixture
def settings(root_token: str, tmp_path: Path) -> ServerSettings:
    (tmp_path / "logs").mkdir()
    return ServerSettings(dev=True, dev_root_token=root_token, audit_dir=tmp_path / "logs")


async def _enable(vault: Vault, name: str, options: dict[str, str], kind: str = "file") -> int:
    response = await vault.root("PUT", f"sys/audit/{name}", json={"type": kind, "options": options})
    return response.status_code


async def test_a_file_device_outside_the_audit_directory_is_refused(
    vault: Vault, tmp_path: Path
) -> None:
    """Before: the API appended audit lines to any writable file, e.g. a config file."""
    config = tmp_path / "app.conf"
    config.write_text("setting = 1\n")
    (tmp_path / "logs" / "link.log").symlink_to(config)
    for path in (
        str(config),
        str(tmp_path / "logs" / ".." / "app.conf"),
        str(tmp_path / "logs" / "link.log"),  # a symlink out of the directory
        "../app.conf",
        str(tmp_path / "logs"),
    ):
        assert await _enable(vault, "x", {"file_path": path}) == 400, path
    assert await _enable(vault, "db", {"path": str(tmp_path / "x.db")}, kind="store") == 400
    assert config.read_text() == "setting = 1\n"
    assert not (tmp_path / "x.db").exists()

    assert await _enable(vault, "ok", {"file_path": str(tmp_path / "logs" / "ok.log")}) == 204
    assert await _enable(vault, "rel", {"file_path": "rel.log"}) == 204
    await vault.create_tenant("acme")
    assert b"acme" in (tmp_path / "logs" / "ok.log").read_bytes()
    assert b"acme" in (tmp_path / "logs" / "rel.log").read_bytes()


async def test_without_an_audit_directory_only_the_settings_create_file_devices(
    root_token: str, tmp_path: Path
) -> None:
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with create_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            response = await vault.root(
                "PUT",
                "sys/audit/x",
                json={"type": "file", "options": {"file_path": str(tmp_path / "a.log")}},
            )
    assert response.status_code == 400
    assert "--audit-dir" in response.text
    assert not (tmp_path / "a.log").exists()


async def test_the_device_read_gives_the_chain_head_that_anchors_verify(
    vault: Vault, app: TenantVaultApp, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "a.log"
    assert await _enable(vault, "a", {"file_path": str(log)}) == 204
    await vault.create_tenant("acme")
    response = await vault.root("GET", "sys/audit/a")
    assert response.status_code == 200
    head = response.json()["data"]["chain_head"]
    lines = log.read_bytes().splitlines(keepends=True)
    anchor = ChainHead(head["seq"], head["hash"])
    assert verify_lines(lines, anchor=anchor).ok  # a live log: the anchor vouches for it
    # (The read itself is audited: its request entry comes after the head it returned.)
    assert not verify_lines(lines[: anchor.seq - 1], anchor=anchor).ok

    admin = await vault.tenant_admin("acme")
    denied = await vault.request("GET", "sys/audit/a", token=admin, namespace="acme")
    assert denied.status_code == 403


async def test_the_python_api_names_the_audit_directory(tmp_path: Path) -> None:
    """`tenantvault.open(audit_dir=…)` is the embedded twin of `serve --audit-dir`."""
    inside, outside = tmp_path / "logs", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    async with tenantvault.open("memory://", audit_dir=inside) as tv:
        await tv.request(
            "update",
            "sys/audit/api",
            {"type": "file", "options": {"file_path": str(inside / "api.log")}},
        )
        with pytest.raises(tenantvault.InvalidRequestError):
            await tv.request(
                "update",
                "sys/audit/away",
                {"type": "file", "options": {"file_path": str(outside / "away.log")}},
            )
    assert (inside / "api.log").exists()
    assert not (outside / "away.log").exists()
    async with tenantvault.open("memory://") as tv:
        with pytest.raises(tenantvault.InvalidRequestError):
            await tv.request(
                "update",
                "sys/audit/api",
                {"type": "file", "options": {"file_path": str(inside / "other.log")}},
            )


async def test_options_are_weakly_decoded_like_vaults_key_value_pairs(vault: Vault) -> None:
    """Vault's `options` is a TypeKVPairs field: a boolean or a number arrives as its text
    (OpenBao 2.7.2 accepts `{"keep_newest": 100, "hmac_accessor": false}`); only a nested
    value is refused (400)."""
    options: dict[str, object] = {"keep_newest": 100, "hmac_accessor": False, "rate": 1.5}
    response = await vault.root("PUT", "sys/audit/weak", json={"type": "store", "options": options})
    assert response.status_code == 204, response.text
    listed = (await vault.root("GET", "sys/audit")).json()["data"]["weak/"]["options"]
    assert listed == {"path": ":memory:", "keep_newest": "100"}
    nested = {"type": "store", "options": {"keep_newest": {"n": 1}}}
    refused = await vault.root("PUT", "sys/audit/nested", json=nested)
    assert refused.status_code == 400
    assert "keep_newest" in refused.json()["errors"][0]
