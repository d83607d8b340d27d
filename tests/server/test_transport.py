"""The HTTP mechanics: verbs, lifespan, graceful shutdown, error mapping and logging."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault._exceptions import BackendTimeoutError, ConfigurationError
from tenantvault.backends import Faults, MemoryBackend
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import canary
from tests.server.conftest import BASE_URL, Vault, assert_no_canary, raw_call


def _client(app: TenantVaultApp, *, started: asyncio.Event | None = None) -> httpx.AsyncClient:
    """A client of `app`; `started` is set whenever a request reaches the app."""

    async def entered(scope: Any, receive: Any, send: Any) -> None:
        if started is not None:
            started.set()
        await app(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=entered), base_url=BASE_URL)


async def _memory_core(faults: Faults) -> Core:
    core = Core(MemoryBackend(faults=faults))
    await core.start()
    return core


# -- verbs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT", "FOO", "HEAD", "SCAN"])
async def test_unknown_verbs_are_405(app: TenantVaultApp, root_token: str, method: str) -> None:
    reply = await raw_call(
        app, method, b"/v1/secret/data/x", headers=[(b"x-vault-token", root_token.encode())]
    )
    assert reply.status == 405
    if method != "HEAD":
        assert reply.json() == {"errors": ["unsupported operation"]}


async def test_unknown_mounts_are_404_for_the_authenticated_and_403_for_others(
    vault: Vault,
) -> None:
    await vault.create_tenant("acme")
    assert (await vault.root("GET", "transit/keys/x", namespace="acme")).status_code == 404
    assert (await vault.request("GET", "transit/keys/x", namespace="acme")).status_code == 403


async def test_204_has_no_body_and_no_length(app: TenantVaultApp, root_token: str) -> None:
    token = (b"x-vault-token", root_token.encode())
    reply = await raw_call(app, "POST", b"/v1/sys/namespaces/acme", headers=[token])
    assert reply.status == 200
    reply = await raw_call(
        app,
        "PUT",
        b"/v1/sys/policies/acl/p",
        headers=[token, (b"x-vault-namespace", b"acme")],
        body=b'{"policy":"path \\"secret/*\\" { capabilities = [\\"read\\"] }"}',
    )
    assert reply.status == 204
    assert reply.body == b""
    assert b"content-length" not in reply.headers
    assert b"x-request-id" in reply.headers


async def test_head_of_the_openapi_document(app: TenantVaultApp) -> None:
    reply = await raw_call(app, "HEAD", b"/v1/sys/internal/specs/openapi")
    assert reply.status == 200
    assert reply.body == b""
    assert int(reply.headers[b"content-length"]) > 1000


async def test_missing_raw_path_falls_back_without_double_decoding(
    app: TenantVaultApp, root_token: str
) -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    headers = [(b"x-vault-token", root_token.encode())]
    for path, status in (("/v1/sys/mounts", 200), ("/v1/sys/%2e%2e/mounts", 400)):
        sent.clear()
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": headers,
        }
        await app(scope, receive, send)
        assert sent[0]["status"] == status


# -- lifecycle ----------------------------------------------------------------------------------


async def test_requests_before_startup_are_503(settings: ServerSettings) -> None:
    app = create_app(settings)
    async with _client(app) as client:
        response = await client.get("/v1/sys/health")
    assert response.status_code == 503
    assert response.json() == {"errors": ["tenantvault is not ready"]}


async def test_lifespan_protocol_starts_and_stops_the_store(settings: ServerSettings) -> None:
    app = create_app(settings)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: list[MutableMapping[str, Any]] = []
    answered = asyncio.Event()

    async def send(message: MutableMapping[str, Any]) -> None:
        outbox.append(message)
        answered.set()

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    await answered.wait()
    assert outbox == [{"type": "lifespan.startup.complete"}]
    assert app.core is not None
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    assert outbox[-1] == {"type": "lifespan.shutdown.complete"}
    async with _client(app) as client:
        assert (await client.get("/v1/sys/health")).status_code == 503


async def test_lifespan_startup_failure_is_reported_without_secrets() -> None:
    secret = canary()

    async def broken() -> Core:
        raise ConfigurationError("master key file is malformed")

    app = create_app(ServerSettings(dev=True, dev_root_token=secret), core_factory=broken)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        outbox.append(message)

    await inbox.put({"type": "lifespan.startup"})
    await app({"type": "lifespan"}, inbox.get, send)
    assert outbox == [
        {"type": "lifespan.startup.failed", "message": "master key file is malformed"}
    ]
    assert isinstance(app.startup_error, ConfigurationError)


async def test_startup_and_shutdown_are_idempotent(settings: ServerSettings) -> None:
    app = create_app(settings)
    await app.startup()
    core = app.core
    await app.startup()
    assert app.core is core
    await app.shutdown()
    await app.shutdown()
    with pytest.raises(Exception, match="not running"):
        _ = app.core


async def test_initial_root_token_is_reported_once_per_store(tmp_path: Path) -> None:
    seen: list[str] = []
    settings = ServerSettings(data_dir=tmp_path / "data")
    for _ in range(2):
        async with create_app(settings, on_root_token=seen.append) as app, _client(app) as client:
            assert (await client.get("/v1/sys/health")).status_code == 200
    assert len(seen) == 1
    async with create_app(settings) as app, _client(app) as client:
        lookup = await client.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": seen[0]})
        assert lookup.status_code == 200
        assert lookup.json()["data"]["policies"] == ["root"]


async def test_shutdown_lets_in_flight_requests_finish(root_token: str) -> None:
    faults = Faults()
    app = create_app(
        ServerSettings(dev=True, dev_root_token=root_token),
        core_factory=lambda: _memory_core(faults),
    )
    await app.startup()
    started = asyncio.Event()
    async with _client(app, started=started) as client:
        headers = {"X-Vault-Token": root_token}
        assert (await client.post("/v1/sys/namespaces/acme", headers=headers)).status_code == 200
        faults.latency_seconds = 0.05
        started.clear()
        slow = asyncio.create_task(client.get("/v1/sys/namespaces/acme", headers=headers))
        await started.wait()
        await asyncio.sleep(0.01)  # inside the Core now, waiting on the slow backend
        closing = asyncio.create_task(app.shutdown())
        await asyncio.sleep(0.01)
        late = await client.get("/v1/sys/namespaces/acme", headers=headers)
        assert late.status_code == 503
        assert (await slow).status_code == 200
        await closing


async def test_shutdown_gives_up_on_stuck_requests_after_the_timeout(
    root_token: str, logs: pytest.LogCaptureFixture
) -> None:
    faults = Faults()
    settings = ServerSettings(dev=True, dev_root_token=root_token, shutdown_timeout_seconds=0.05)
    app = create_app(settings, core_factory=lambda: _memory_core(faults))
    await app.startup()
    started = asyncio.Event()
    async with _client(app, started=started) as client:
        faults.latency_seconds = 5
        stuck = asyncio.create_task(
            client.get("/v1/sys/mounts", headers={"X-Vault-Token": root_token})
        )
        await started.wait()
        await app.shutdown()
        assert "still running" in logs.text
        stuck.cancel()


async def test_websockets_are_refused(app: TenantVaultApp) -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/v1/sys/health"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


# -- error mapping --------------------------------------------------------------------------


async def test_unexpected_exceptions_are_500_without_details(
    root_token: str, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = canary("boom-")
    faults = Faults()
    app = create_app(
        ServerSettings(dev=True, dev_root_token=root_token),
        core_factory=lambda: _memory_core(faults),
    )
    async with app, _client(app) as client:

        async def explode(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(f"exploded near {secret}")

        monkeypatch.setattr(app.core.mounts, "_list", lambda tenant, uid: explode)
        response = await client.get("/v1/sys/mounts?x=1", headers={"X-Vault-Token": root_token})
    assert response.status_code == 500
    assert response.json() == {"errors": ["internal error"]}
    assert "internal error (RuntimeError)" in logs.text
    assert_no_canary([logs.text, response.text], secret, root_token)


async def test_backend_outage_is_503_with_retry_after(root_token: str) -> None:
    faults = Faults()
    app = create_app(
        ServerSettings(dev=True, dev_root_token=root_token),
        core_factory=lambda: _memory_core(faults),
    )
    async with app, _client(app) as client:
        faults.unavailable = True
        response = await client.get(
            "/v1/auth/token/lookup-self", headers={"X-Vault-Token": root_token}
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "errors" in response.json()


async def test_backend_timeout_is_504(root_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = Faults()
    app = create_app(
        ServerSettings(dev=True, dev_root_token=root_token),
        core_factory=lambda: _memory_core(faults),
    )
    async with app, _client(app) as client:

        async def timeout(*args: Any, **kwargs: Any) -> None:
            raise BackendTimeoutError("upstream timed out")

        monkeypatch.setattr(app.core.mounts, "_list", lambda tenant, uid: timeout)
        response = await client.get("/v1/sys/mounts", headers={"X-Vault-Token": root_token})
    assert response.status_code == 504


async def test_a_slow_body_is_408(root_token: str) -> None:
    settings = ServerSettings(dev=True, dev_root_token=root_token, body_timeout_seconds=0.05)
    async with create_app(settings) as app:
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(10)
            raise AssertionError("unreachable")

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/sys/namespaces/acme",
            "raw_path": b"/v1/sys/namespaces/acme",
            "query_string": b"",
            "headers": [(b"x-vault-token", root_token.encode())],
        }
        await app(scope, receive, send)
    assert sent[0]["status"] == 408


async def test_a_client_that_disconnects_mid_body_gets_nothing(
    app: TenantVaultApp, root_token: str, logs: pytest.LogCaptureFixture
) -> None:
    sent: list[MutableMapping[str, Any]] = []
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"da', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/sys/namespaces/acme",
        "raw_path": b"/v1/sys/namespaces/acme",
        "query_string": b"",
        "headers": [(b"x-vault-token", root_token.encode())],
    }
    await app(scope, receive, send)
    assert sent == []
    assert "POST /v1/sys/namespaces/acme 499" in logs.text


# -- logging --------------------------------------------------------------------------------


async def test_access_log_has_method_path_status_and_nothing_else(
    vault: Vault, logs: pytest.LogCaptureFixture
) -> None:
    await vault.create_tenant("acme")
    secret = canary()
    await vault.root("POST", "secret/data/k", namespace="acme", json={"data": {"v": secret}})
    await vault.root("GET", "secret/data/k", namespace="acme", params={"version": "1"})
    lines = [r.getMessage() for r in logs.records if r.name == "tenantvault.server.access"]
    assert lines[-2].startswith("POST /v1/secret/data/k 200 ")
    assert lines[-1].startswith("GET /v1/secret/data/k 200 ")
    assert lines[-1].endswith("ms")
    assert_no_canary([logs.text], secret, vault.root_token, "version=")


async def test_access_log_escapes_control_characters(
    app: TenantVaultApp, logs: pytest.LogCaptureFixture
) -> None:
    await raw_call(app, "GET", b"/v1/a\r\nINFO forged line")
    messages = [r.getMessage() for r in logs.records if r.name == "tenantvault.server.access"]
    assert "\n" not in messages[-1]
    assert "\\r\\n" in messages[-1]


async def test_access_log_can_be_disabled(root_token: str, logs: pytest.LogCaptureFixture) -> None:
    settings = ServerSettings(dev=True, dev_root_token=root_token, access_log=False)
    async with create_app(settings) as app, _client(app) as client:
        await client.get("/v1/sys/health")
    assert not [r for r in logs.records if r.name == "tenantvault.server.access"]


@pytest.mark.parametrize("enabled", [True, False])
async def test_access_log_goes_to_the_callable_given_instead_of_the_logger(
    root_token: str, logs: pytest.LogCaptureFixture, enabled: bool
) -> None:
    lines: list[str] = []
    settings = ServerSettings(dev=True, dev_root_token=root_token, access_log=enabled)
    async with (
        create_app(settings, access_log=lines.append) as app,
        _client(app) as client,
    ):
        await client.get("/v1/sys/health")
        headers = {"X-Vault-Token": root_token}
        await client.get("/v1/secret/data/nothing", params={"version": "1"}, headers=headers)
    assert not [r for r in logs.records if r.name == "tenantvault.server.access"]
    if not enabled:
        assert lines == []
        return
    assert len(lines) == 2
    assert lines[0].startswith("GET /v1/sys/health 200 ")
    assert lines[1].startswith("GET /v1/secret/data/nothing 404 ")
    assert all(line.endswith("ms") for line in lines)
    assert_no_canary(lines, root_token, "version=")


async def test_app_repr_shows_state_only(settings: ServerSettings) -> None:
    app = create_app(settings)
    assert repr(app) == "<TenantVaultApp new>"
    await app.startup()
    assert repr(app) == "<TenantVaultApp ready>"
    await app.shutdown()
    assert repr(app) == "<TenantVaultApp closed>"
    assert settings.dev_root_token is not None
    assert settings.dev_root_token not in repr(settings)


async def test_concurrent_requests_each_get_their_own_tenants_answer(vault: Vault) -> None:
    """Many tenants, many concurrent reads: every response carries its own tenant's canary."""
    secrets: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for index in range(8):
        tenant = f"t{index}"
        tokens[tenant] = await vault.tenant_admin(tenant)
        secrets[tenant] = canary(f"{tenant}-")
        await vault.put(tenant, "k", {"v": secrets[tenant]}, token=tokens[tenant])

    async def read(tenant: str) -> tuple[str, str]:
        response = await vault.request("GET", "secret/data/k", token=tokens[tenant])
        return tenant, response.json()["data"]["data"]["v"]

    results = await asyncio.gather(*(read(t) for t in list(secrets) * 25))
    for tenant, value in results:
        assert value == secrets[tenant]


async def test_http_error_statuses_are_logged_at_warning_only_for_5xx(
    vault: Vault, logs: pytest.LogCaptureFixture
) -> None:
    await vault.root("GET", "secret/data/x", namespace="ghost")
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]
