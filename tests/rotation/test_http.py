"""`sys/rotation/*` over HTTP: each endpoint needs the caller's policy on its own path, the
scheduler shows in sys/health, expiring secrets are listed, and nothing secret reaches the
audit trail or the logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import canary
from tests.rotation._receiver import Receiver
from tests.server.conftest import BASE_URL, Vault, assert_no_canary


@pytest.fixture
def root_token() -> str:
    return canary("root-")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="tenantvault")
    return caplog


@pytest.fixture
def settings(root_token: str, receiver: Receiver, tmp_path: Path) -> ServerSettings:
    return ServerSettings(
        dev=True,
        dev_root_token=root_token,
        rotation_webhook_allow=(receiver.prefix,),
        audit_file=tmp_path / "audit.jsonl",
    )


@pytest.fixture
async def app(settings: ServerSettings) -> AsyncIterator[TenantVaultApp]:
    async with create_app(settings) as started:
        yield started


@pytest.fixture
async def vault(app: TenantVaultApp, root_token: str) -> AsyncIterator[Vault]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield Vault(client, root_token)


ROTATOR_POLICY = """
path "secret/*" { capabilities = ["create", "read", "update", "list"] }
path "sys/rotation/config/secret/app/*" { capabilities = ["create", "update", "read", "delete"] }
path "sys/rotation/rotate/secret/app/*" { capabilities = ["update"] }
"""


async def test_each_endpoint_needs_the_callers_policy_on_its_path(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.write_policy("acme", "rotator", ROTATOR_POLICY)
    token = (await vault.create_token("acme", ["rotator"]))["client_token"]
    nobody = (await vault.create_token("acme", ["default"]))["client_token"]
    await vault.put("acme", "app/key", {"v": "1"}, token=token)
    await vault.put("acme", "other/key", {"v": "1"}, token=token)
    body = {"rotator": "random", "period": "1h", "field": "v"}
    ok = await vault.request("POST", "sys/rotation/config/secret/app/key", token=token, json=body)
    assert ok.status_code == 204, ok.text
    for method, path, payload in [
        ("POST", "sys/rotation/config/secret/other/key", body),
        ("POST", "sys/rotation/rotate/secret/other/key", {}),
        ("GET", "sys/rotation/expiring", None),
        ("LIST", "sys/rotation/config", None),
    ]:
        denied = await vault.request(method, path, token=token, json=payload)
        assert denied.status_code == 403, (path, denied.text)
    for method, path in [
        ("GET", "sys/rotation/config/secret/app/key"),
        ("POST", "sys/rotation/rotate/secret/app/key"),
    ]:
        denied = await vault.request(
            method, path, token=nobody, json={} if method == "POST" else None
        )
        assert denied.status_code == 403
    rotated = await vault.request(
        "POST", "sys/rotation/rotate/secret/app/key", token=token, json={}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["data"] == {"version": 2}
    status = await vault.request("GET", "sys/rotation/config/secret/app/key", token=token)
    assert status.json()["data"]["rotations"] == 1
    # Another tenant's token reaches nothing of acme's.
    await vault.create_tenant("globex")
    await vault.write_policy("globex", "rotator", ROTATOR_POLICY)
    stranger = (await vault.create_token("globex", ["rotator"]))["client_token"]
    foreign = await vault.request(
        "GET", "sys/rotation/config/secret/app/key", token=stranger, namespace="acme"
    )
    assert foreign.status_code == 403
    own = await vault.request("GET", "sys/rotation/config/secret/app/key", token=stranger)
    assert own.status_code == 404  # globex's own secret/ has no such configuration


async def test_the_scheduler_is_a_supervised_service_in_health(vault: Vault) -> None:
    health = (await vault.request("GET", "sys/health")).json()
    service = health["services"]["kv-rotation"]
    assert service["state"] == "running"
    assert set(service["detail"]) >= {"passes", "last_pass", "due", "rotated", "failed"}


async def test_expiring_and_stale_secrets_are_listed_per_tenant(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.create_tenant("globex")
    now = datetime.now(UTC)
    soon = (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    late = (now + timedelta(days=90)).isoformat()
    past = (now - timedelta(hours=1)).isoformat()
    for path, expires in [
        ("keys/soon", soon),
        ("keys/late", late),
        ("keys/gone", past),
        ("keys/bad", "tomorrow"),
    ]:
        await vault.put("acme", path, {"k": "v"})
        written = await vault.root(
            "POST",
            f"secret/metadata/{path}",
            namespace="acme",
            json={"custom_metadata": {"expires_at": expires}},
        )
        assert written.status_code == 204
    await vault.put("globex", "keys/theirs", {"k": "v"})
    await vault.root(
        "POST",
        "secret/metadata/keys/theirs",
        namespace="globex",
        json={"custom_metadata": {"expires_at": soon}},
    )
    answer = await vault.root(
        "GET", "sys/rotation/expiring", namespace="acme", params={"within": "7d"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    listed = [(item["path"], item["expired"]) for item in body["data"]["expiring"]]
    assert listed == [("secret/keys/gone", True), ("secret/keys/soon", False)]
    assert body["warnings"] == [
        "custom_metadata.expires_at of secret/keys/bad is not an RFC 3339 time"
    ]
    assert body["data"]["stale"] == []
    # Everything is older than 0 days: all four are stale at stale_days... 1 day none is.
    fresh = await vault.root(
        "GET", "sys/rotation/expiring", namespace="acme", params={"stale_days": "1"}
    )
    assert fresh.json()["data"]["stale"] == []


async def test_no_secret_in_the_audit_trail_responses_or_logs(
    vault: Vault, receiver: Receiver, settings: ServerSettings, logs: pytest.LogCaptureFixture
) -> None:
    await vault.create_tenant("acme")
    old = canary("old-api-key-")
    await vault.put("acme", "saas/key", {"api_key": old})
    configured = await vault.root(
        "POST",
        "sys/rotation/config/secret/saas/key",
        namespace="acme",
        json={
            "rotator": "webhook",
            "period": "30d",
            "field": "api_key",
            "params": {"url": receiver.url, "secret": receiver.secret},
        },
    )
    assert configured.status_code == 204, configured.text
    rotated = await vault.root("POST", "sys/rotation/rotate/secret/saas/key", namespace="acme")
    assert rotated.status_code == 200, rotated.text
    receiver.behaviour.fail["test"] = 500
    failed = await vault.root("POST", "sys/rotation/rotate/secret/saas/key", namespace="acme")
    assert failed.status_code == 502
    assert failed.json()["errors"] == ["test failed: the webhook answered HTTP 500 to test"]
    status = await vault.root("GET", "sys/rotation/config/secret/saas/key", namespace="acme")
    assert status.json()["data"]["state"] == "failed"
    assert settings.audit_file is not None
    trail = settings.audit_file.read_text()
    assert "sys/rotation/rotate/secret/saas/key" in trail
    assert "test failed: the webhook answered HTTP 500 to test" in trail
    secrets = [old, receiver.secret, *receiver.values]
    assert_no_canary([trail, *vault.seen.texts, logs.text], *secrets)
