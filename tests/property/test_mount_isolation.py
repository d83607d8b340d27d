"""Property: mount tables keep tenants and mounts apart, whatever the order of enable, disable,
write and read. Two tenants enable and disable same-named mounts (kv v1, kv v2, transit-free
paths that nest by prefix) at random; every read answers what a simple model says: the value
last written through this tenant's current incarnation of that mount, or nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

import tenantvault
from tenantvault import NotFoundError, Operation

TENANTS = ["acme", "acme2"]
# Same names in both tenants; `team/a` and `team/ab` are siblings that share a prefix.
MOUNTS = ["kv", "team/a", "team/ab"]
KEYS = ["x", "d/y"]


class MountIsolation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tv: tenantvault.TenantVault = self.run(tenantvault.open("memory://"))
        for tenant in TENANTS:
            self.run(self.tv.create_tenant(tenant))
        # (tenant, mount) -> version (1 or 2) of the mounted kv, absent when not mounted.
        self.mounted: dict[tuple[str, str], int] = {}
        self.model: dict[tuple[str, str, str], str] = {}
        self.counter = 0

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        self.run(self.tv.aclose())
        self.loop.close()

    @rule(tenant=st.sampled_from(TENANTS), mount=st.sampled_from(MOUNTS), v=st.sampled_from([1, 2]))
    def enable(self, tenant: str, mount: str, v: int) -> None:
        mounts = self.tv.tenant(tenant).mounts
        if (tenant, mount) in self.mounted:
            with pytest.raises(tenantvault.InvalidRequestError, match="path is already in use"):
                self.run(mounts.enable(mount, "kv", version=v))
            return
        self.run(mounts.enable(mount, "kv", version=v))
        self.mounted[(tenant, mount)] = v

    @rule(tenant=st.sampled_from(TENANTS), mount=st.sampled_from(MOUNTS))
    def disable(self, tenant: str, mount: str) -> None:
        self.run(self.tv.tenant(tenant).mounts.disable(mount))
        self.mounted.pop((tenant, mount), None)
        for key in [k for k in self.model if k[:2] == (tenant, mount)]:
            del self.model[key]

    @rule(tenant=st.sampled_from(TENANTS), mount=st.sampled_from(MOUNTS), key=st.sampled_from(KEYS))
    def write(self, tenant: str, mount: str, key: str) -> None:
        version = self.mounted.get((tenant, mount))
        if version is None:
            return
        self.counter += 1
        value = f"{tenant}:{mount}:{key}:{self.counter}"
        handle = self.tv.tenant(tenant)
        if version == 2:
            self.run(handle.kv_at(mount).put(key, {"v": value}))
        else:
            self.run(handle.kv1_at(mount).put(key, {"v": value}))
        self.model[(tenant, mount, key)] = value

    @rule(tenant=st.sampled_from(TENANTS), mount=st.sampled_from(MOUNTS), key=st.sampled_from(KEYS))
    def read(self, tenant: str, mount: str, key: str) -> None:
        version = self.mounted.get((tenant, mount))
        handle = self.tv.tenant(tenant)
        expected = self.model.get((tenant, mount, key))
        if version is None:
            try:
                self.run(self.tv.request(Operation.READ, f"{mount}/{key}", namespace=tenant))
            except NotFoundError:
                return
            raise AssertionError(f"{tenant} read {mount}/{key} with nothing mounted there")
        try:
            if version == 2:
                got = self.run(handle.kv_at(mount).get(key)).data["v"]
            else:
                got = self.run(handle.kv1_at(mount).get(key))["v"]
        except NotFoundError:
            got = None
        assert got == expected, (tenant, mount, key, got, expected)


TestMountIsolation = MountIsolation.TestCase
TestMountIsolation.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
