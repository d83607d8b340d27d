"""Issue 9, the observer seam: every request's outcome reaches each subscribed observer exactly
once, after it was answered — served, denied, invalid, refused by the HTTP layer or failing
with a bug — without a secret in it; an observer that raises never fails a request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault._exceptions import PermissionDeniedError
from tenantvault._observe import RequestOutcome
from tenantvault._request import Operation, Request, Response
from tenantvault.backends import MemoryBackend
from tenantvault.engines._route import Call
from tenantvault.engines.kv import KVEngine
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import canary


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[RequestOutcome] = []

    def observe(self, outcome: RequestOutcome) -> None:
        self.outcomes.append(outcome)


class Exploding:
    def observe(self, outcome: RequestOutcome) -> None:
        raise RuntimeError("an observer with a bug")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def root_token() -> str:
    return canary("root-")


@pytest.fixture
async def app(recorder: Recorder, root_token: str) -> AsyncIterator[TenantVaultApp]:
    settings = ServerSettings(dev=True, dev_root_token=root_token, access_log=False)
    async with create_app(settings, observers=[Exploding(), recorder]) as started:
        yield started


async def test_each_request_is_observed_once_with_its_outcome(
    app: TenantVaultApp,
    recorder: Recorder,
    root_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tenantvault.observe")
    root = {"X-Vault-Token": root_token}
    acme = {**root, "X-Vault-Namespace": "acme"}
    secret = canary()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tv.test") as client:
        created = await client.post("/v1/sys/namespaces/acme", headers=root)
        written = await client.post(
            "/v1/secret/data/app", headers=acme, json={"data": {"v": secret}}
        )
        denied = await client.get("/v1/secret/data/app", headers={"X-Vault-Token": "tvs.bogus"})
        invalid = await client.post(
            "/v1/secret/data/app", headers=acme, json={"data": {"v": "x"}, "options": {"cas": 9}}
        )
        refused = await client.patch(
            "/v1/secret/data/app", headers={**acme, "Content-Type": "text/plain"}, content=b"x"
        )

        async def broken(self: KVEngine, call: Call, *args: Any) -> Response:
            raise ZeroDivisionError("a bug")

        monkeypatch.setattr(KVEngine, "_read", broken)
        failed = await client.get("/v1/secret/data/app", headers=acme)
    replies = [created, written, denied, invalid, refused, failed]
    assert [r.status_code for r in replies] == [200, 200, 403, 400, 415, 500]

    # Exactly one outcome per request, in order, with the id the client was given.
    assert [o.request_id for o in recorder.outcomes] == [r.headers["x-request-id"] for r in replies]
    assert [o.status for o in recorder.outcomes] == [r.status_code for r in replies]
    assert [o.denied for o in recorder.outcomes] == [False, False, True, False, False, False]
    assert [o.refused for o in recorder.outcomes] == [False, False, False, False, True, False]
    write = recorder.outcomes[1]
    assert (write.operation, write.mount) == ("update", "secret")
    assert write.tenant_uid == await app.core.tenants.uid("acme")
    assert recorder.outcomes[4].tenant_uid == ""  # a refusal belongs to no tenant
    assert all(o.duration_seconds >= 0 for o in recorder.outcomes)
    # No secret in what observers receive.
    assert secret not in repr(recorder.outcomes)
    assert root_token not in repr(recorder.outcomes)
    # The exploding observer (subscribed first) failed every time, and nothing else did.
    warnings = [r for r in caplog.records if r.name == "tenantvault.observe"]
    assert len(warnings) == len(replies)
    assert "Exploding failed (RuntimeError)" in warnings[0].getMessage()
    assert "an observer with a bug" not in caplog.text


async def test_observers_given_to_the_core_hear_every_surface(recorder: Recorder) -> None:
    core = Core(MemoryBackend(), observers=[recorder])
    await core.start()
    try:
        try:
            raise LookupError("the caller's own exception")
        except LookupError:
            # Served while its caller handles an exception: still observed as served.
            await core.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
        with pytest.raises(PermissionDeniedError):
            await core.handle(Request(Operation.READ, "secret/data/app", token="tvs.bogus"))
    finally:
        await core.aclose()
    assert [(o.mount, o.status, o.denied) for o in recorder.outcomes] == [
        ("sys", 200, False),
        ("", 403, True),
    ]
