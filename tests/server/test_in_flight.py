"""`sys/in-flight-req`: the requests being served, by request id, in Vault's bare-JSON shape;
root namespace only, authorized and audited like any route, and nothing left behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenantvault.engines.kv import KVEngine
from tenantvault.server import TenantVaultApp
from tests.server.conftest import Vault

FIELDS = {"start_time", "client_remote_address", "request_path", "request_method", "client_id"}


async def test_it_lists_itself_and_a_request_still_being_served(
    app: TenantVaultApp, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    original = KVEngine._read

    async def slow(self: KVEngine, *args: Any) -> Any:
        await release.wait()
        return await original(self, *args)

    monkeypatch.setattr(KVEngine, "_read", slow)
    pending = asyncio.create_task(vault.root("GET", "secret/data/app"))
    for _ in range(100):
        if app._in_flight:
            break
        await asyncio.sleep(0.01)
    listed = await vault.root("GET", "sys/in-flight-req")
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    entries = listed.json()
    assert listed.headers["x-request-id"] in entries  # itself
    by_path = {entry["request_path"]: entry for entry in entries.values()}
    assert set(by_path) == {"/v1/sys/in-flight-req", "/v1/secret/data/app"}
    served = by_path["/v1/secret/data/app"]
    assert set(served) == FIELDS
    assert served["request_method"] == "GET"
    assert served["client_id"] == ""
    assert served["start_time"].endswith("Z")
    release.set()
    assert (await pending).status_code == 404  # nothing written there: a 404, but answered
    assert app._in_flight == {}


async def test_it_needs_read_in_the_root_namespace_and_is_absent_in_a_tenant(
    vault: Vault,
) -> None:
    await vault.write_policy(
        None, "watcher", 'path "sys/in-flight-req" { capabilities = ["read"] }'
    )
    watcher = (await vault.create_token(None, ["watcher"]))["client_token"]
    other = (await vault.create_token(None, ["default"]))["client_token"]
    assert (await vault.request("GET", "sys/in-flight-req", token=watcher)).status_code == 200
    denied = await vault.request("GET", "sys/in-flight-req", token=other)
    assert (denied.status_code, denied.json()) == (403, {"errors": ["permission denied"]})
    await vault.create_tenant("acme")
    inside = await vault.root("GET", "sys/in-flight-req", namespace="acme")
    assert (inside.status_code, inside.json()) == (404, {"errors": ["unsupported path"]})
    assert (await vault.root("POST", "sys/in-flight-req")).status_code == 405
