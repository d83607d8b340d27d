"""Issue 9: one broker, whatever audit hook the Core is given. A custom `AuditHook` rides on
the broker that `sys/audit` manages, `sys/audit/events` queries and `sys/health` reports —
never on a second, disconnected one — and hears every request, refusals included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tenantvault import AuditError, RequestContext, Response, TenantVaultError
from tenantvault._audit_hook import Refusal
from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault.backends import MemoryBackend
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import canary


class RecordingHook:
    """A custom audit trail: records what it hears; refuses requests for `refuse_path`."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []
        self.refuse_path = ""
        self.slot_was_its_own = True

    async def request(self, context: RequestContext) -> None:
        # Its bookkeeping slot is its own, as if it were the Core's only hook.
        self.slot_was_its_own &= context.audit_state is None
        context.audit_state = "mine"
        self.heard.append(("request", context.request.request_id))
        if self.refuse_path and context.path == self.refuse_path:
            raise AuditError("the custom trail refuses this one")

    async def response(
        self, context: RequestContext, response: Response | None, error: TenantVaultError | None
    ) -> None:
        self.slot_was_its_own &= context.audit_state == "mine"
        self.heard.append(("response", context.request.request_id))

    async def refused(self, refusal: Refusal) -> None:
        self.heard.append(("refused", refusal.request_id))


@pytest.fixture
def hook() -> RecordingHook:
    return RecordingHook()


@pytest.fixture
def root_token() -> str:
    return canary("root-")


@pytest.fixture
async def client(hook: RecordingHook, root_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async def with_the_hook() -> Core:
        core = Core(MemoryBackend(), audit=hook)
        await core.start()
        return core

    settings = ServerSettings(dev=True, dev_root_token=root_token, access_log=False)
    app: TenantVaultApp = create_app(settings, core_factory=with_the_hook)
    async with (
        app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://tv.test"
        ) as opened,
    ):
        yield opened


async def _events(client: httpx.AsyncClient, root: dict[str, str]) -> list[dict[str, Any]]:
    reply = await client.get("/v1/sys/audit/events", headers=root, params={"limit": 1000})
    assert reply.status_code == 200, reply.text
    events: list[dict[str, Any]] = reply.json()["data"]["events"]
    return events


async def test_a_custom_hook_rides_on_the_one_broker_sys_audit_manages(
    client: httpx.AsyncClient, hook: RecordingHook, root_token: str
) -> None:
    root = {"X-Vault-Token": root_token}
    enabled = await client.post("/v1/sys/audit/trail", headers=root, json={"type": "store"})
    assert enabled.status_code == 204
    listed = await client.get("/v1/sys/audit", headers=root)
    assert "trail/" in listed.json()["data"]

    replies = [
        await client.post("/v1/sys/namespaces/acme", headers=root),
        await client.post(
            "/v1/secret/data/app",
            headers={**root, "X-Vault-Namespace": "acme"},
            json={"data": {"v": canary()}},
        ),
        await client.get("/v1/secret/data/app", headers={"X-Vault-Token": "tvs.bogus"}),
    ]
    assert [r.status_code for r in replies] == [200, 200, 403]
    served = [r.headers["x-request-id"] for r in replies]
    refusal = await client.patch(
        "/v1/secret/data/app", headers={**root, "Content-Type": "text/plain"}, content=b"x"
    )
    assert refusal.status_code == 415
    refused = refusal.headers["x-request-id"]

    events = await _events(client, root)
    in_store = {(e["type"], e["request"]["id"]) for e in events}
    for request_id in [*served, refused]:
        # The device the API enabled records what the custom hook hears: one broker.
        assert ("request", request_id) in in_store
        assert ("response", request_id) in in_store
    for request_id in served:
        assert hook.heard.count(("request", request_id)) == 1
        assert hook.heard.count(("response", request_id)) == 1
    assert hook.heard.count(("refused", refused)) == 1
    assert hook.slot_was_its_own
    health = (await client.get("/v1/sys/health")).json()
    assert health["audit"]["enabled"] is True


async def test_a_custom_hook_that_refuses_fails_the_request_closed_with_complete_pairs(
    client: httpx.AsyncClient, hook: RecordingHook, root_token: str
) -> None:
    root = {"X-Vault-Token": root_token}
    assert (
        await client.post("/v1/sys/audit/trail", headers=root, json={"type": "store"})
    ).is_success
    assert (await client.post("/v1/sys/namespaces/acme", headers=root)).status_code == 200
    hook.refuse_path = "secret/data/app"
    acme = {**root, "X-Vault-Namespace": "acme"}

    refused = await client.post("/v1/secret/data/app", headers=acme, json={"data": {"v": "x"}})

    assert refused.status_code == 500
    request_id = refused.headers["x-request-id"]
    hook.refuse_path = ""
    # Nothing happened: the write never ran.
    assert (await client.get("/v1/secret/data/app", headers=acme)).status_code == 404
    # The sinks recorded the request entry before the hook refused; its pair is complete.
    pair = [e for e in await _events(client, root) if e["request"]["id"] == request_id]
    assert [e["type"] for e in pair] == ["request", "response"]
    assert pair[1]["response"]["status"] == 500
    # The hook refused the request entry, so (as the Core does for any hook) it is owed no
    # response entry.
    assert hook.heard.count(("request", request_id)) == 1
    assert ("response", request_id) not in hook.heard
