"""The read cache in gateway mode, in front of a real OpenBao (both tenancy strategies):
reads are served from the cache, this instance's writes are seen at once, a change made
straight upstream shows within the TTL (the documented bound across instances), and an
upstream outage serves the last good value, flagged, for the stale-if-error window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tenantvault._core import Core
from tenantvault._exceptions import BackendUnavailableError, NotFoundError
from tenantvault._request import Operation, Request, Response
from tenantvault.backends._memory import MemoryBackend
from tenantvault.cache import STALE_WARNING
from tenantvault.cache._store import SealedStore
from tenantvault.upstream import UpstreamClient, UpstreamSettings
from tenantvault.upstream.engines import Gateway, UpstreamKV
from tests._openbao import OpenBaoDev
from tests.conftest import FakeClock, count_routes
from tests.upstream._fault_proxy import FaultProxy, fault_proxy
from tests.upstream._gateway_app import STRATEGIES, tenancy_for

PAST_TTL = 2.5


@dataclass
class Gw:
    """A Core whose tenants' `secret/` is in OpenBao, reached through a fault proxy."""

    core: Core
    gateway: Gateway
    proxy: FaultProxy
    server: OpenBaoDev
    clock: FakeClock

    @property
    def store(self) -> SealedStore:
        store = self.core.read_cache.store
        assert store is not None
        return store

    async def call(
        self, operation: Operation, path: str, data: dict[str, Any] | None = None
    ) -> Response:
        return await self.core.handle_as_operator(
            Request(operation, path, data=data, namespace="acme")
        )

    async def put(self, path: str, data: dict[str, Any]) -> None:
        await self.call(Operation.UPDATE, f"secret/data/{path}", {"data": data})

    async def get(self, path: str) -> Response:
        return await self.call(Operation.READ, f"secret/data/{path}")

    async def put_upstream(self, path: str, data: dict[str, Any]) -> None:
        """Write straight into OpenBao, as another instance (or an operator) would."""
        placement = self.gateway.tenancy.kv("acme", f"data/{path}")
        headers = {"X-Vault-Token": self.server.root_token}
        if placement.namespace:
            headers["X-Vault-Namespace"] = placement.namespace
        async with httpx.AsyncClient(base_url=self.server.addr, headers=headers) as direct:
            written = await direct.post(f"/v1/{placement.path}", json={"data": data})
        assert written.status_code == 200, written.text


@pytest.fixture(params=STRATEGIES)
async def gw(
    request: pytest.FixtureRequest, openbao_dev: OpenBaoDev, clock: FakeClock
) -> AsyncIterator[Gw]:
    async with fault_proxy(openbao_dev.addr) as proxy:
        # Fail fast while the proxy is down: one retry, a short backoff, no breaker trips.
        settings = UpstreamSettings(
            proxy.addr, retries=1, backoff_base_seconds=0.01, backoff_max_seconds=0.05
        )
        async with UpstreamClient(settings) as client:
            gateway = Gateway(
                client, tenancy_for(str(request.param)), lambda: openbao_dev.root_token
            )
            core = Core(MemoryBackend(), clock=clock, gateway=gateway)
            await core.start()
            try:
                await core.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
                yield Gw(core, gateway, proxy, openbao_dev, clock)
            finally:
                await core.aclose()


async def test_reads_are_cached_and_this_instances_writes_are_seen_at_once(gw: Gw) -> None:
    await gw.put("app/db", {"password": "one"})
    for _ in range(3):
        read = await gw.get("app/db")
        assert read.data is not None
        assert read.data["data"] == {"password": "one"}
    assert (gw.store.misses, gw.store.hits) == (1, 2)
    await gw.put("app/db", {"password": "two"})
    read = await gw.get("app/db")
    assert read.data is not None
    assert read.data["data"] == {"password": "two"}


async def test_a_change_made_straight_upstream_shows_within_the_ttl(gw: Gw) -> None:
    await gw.put("app/db", {"password": "one"})
    await gw.get("app/db")
    await gw.put_upstream("app/db", {"password": "two"})
    # Inside the TTL this instance may still answer the old value (the documented bound)...
    early = await gw.get("app/db")
    assert early.data is not None
    assert early.data["data"] == {"password": "one"}
    # ...and past it, never.
    gw.clock.advance(PAST_TTL)
    late = await gw.get("app/db")
    assert late.data is not None
    assert late.data["data"] == {"password": "two"}


async def test_an_upstream_outage_serves_the_last_good_value_flagged(gw: Gw) -> None:
    await gw.put("app/db", {"password": "one"})
    await gw.get("app/db")
    await gw.proxy.set_mode("down")
    gw.clock.advance(PAST_TTL)
    stale = await gw.get("app/db")
    assert stale.data is not None
    assert stale.data["data"] == {"password": "one"}
    assert stale.warnings == [STALE_WARNING]
    gw.clock.advance(30)  # past the stale-if-error window
    with pytest.raises(BackendUnavailableError):
        await gw.get("app/db")
    await gw.proxy.set_mode("pass")
    back = await gw.get("app/db")
    assert back.warnings is None


async def test_a_forwarded_kv_route_is_resolved_once_per_table_revision(
    gw: Gw, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved = count_routes(monkeypatch, UpstreamKV)
    await gw.put("app/db", {"password": "one"})
    for _ in range(3):
        read = await gw.get("app/db")
        assert read.data is not None
        assert read.data["data"] == {"password": "one"}
    assert resolved == ["data/app/db", "data/app/db"]  # the write's route, then the read's
    # A newer table (the mount tuned) resolves it again, once.
    await gw.call(Operation.UPDATE, "sys/mounts/secret/tune", {"description": "tuned"})
    await gw.get("app/db")
    await gw.get("app/db")
    assert resolved == ["data/app/db"] * 3


async def test_a_disabled_forwarded_mount_leaves_no_route_behind(gw: Gw) -> None:
    await gw.put("app/db", {"password": "one"})
    await gw.get("app/db")
    await gw.call(Operation.DELETE, "sys/mounts/secret")
    with pytest.raises(NotFoundError):
        await gw.get("app/db")
    # Enabled again: a new, empty mount (the old one's secrets went upstream with it).
    await gw.call(
        Operation.UPDATE, "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}
    )
    with pytest.raises(NotFoundError):
        await gw.get("app/db")
