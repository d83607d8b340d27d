"""Stateful property: the memory mock and the embedded SQLite store are observably identical.

Hypothesis drives both with the same steps (same clock) and requires the same answer from
each — data, metadata, errors and their bodies — for every KV v2 operation, tenant lifecycle
and token use.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

import tenantvault
from tenantvault import Operation, TenantVaultError
from tests.conftest import FakeClock

TENANTS = ["acme", "acme-evil", "beta"]
PATHS = ["a", "a/b", "a/b/c", "d"]
values = st.dictionaries(
    st.sampled_from(["k", "x", "nested"]),
    st.one_of(
        st.none(),
        st.integers(-5, 5),
        st.text(max_size=5),
        st.dictionaries(st.sampled_from(["p", "q"]), st.text(max_size=3), max_size=2),
    ),
    max_size=3,
)
versions = st.lists(st.integers(0, 6), min_size=0, max_size=3)


def _outcome(result: Any) -> Any:
    if isinstance(result, TenantVaultError):
        body = getattr(result, "body", None)
        return ("error", type(result).__name__, result.errors, body)
    data = result.data
    if isinstance(data, dict) and ("uuid" in data or "accessor" in data):
        # Tenant ids, tokens and accessors are random per store; everything else must agree.
        data = {k: v for k, v in data.items() if k not in ("id", "uuid", "accessor")}
    return ("ok", result.status, data, _strip_auth(result.auth))


def _strip_auth(auth: dict[str, Any] | None) -> Any:
    if auth is None:
        return None
    return {k: v for k, v in auth.items() if k not in ("client_token", "accessor")}


class BackendsAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = FakeClock()
        self.memory = self.run(tenantvault.open("memory://", clock=self.clock))
        self.sqlite = self.run(
            tenantvault.open(f"sqlite://{Path(self.tmp.name) / 'data'}", clock=self.clock)
        )
        self.tokens: list[tuple[str, str]] = []  # (memory token, sqlite token) pairs

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        self.run(self.memory.aclose())
        self.run(self.sqlite.aclose())
        self.loop.close()
        self.tmp.cleanup()

    def both(
        self,
        operation: Operation,
        path: str,
        data: dict[str, Any] | None,
        namespace: str | None,
        token_index: int | None = None,
    ) -> None:
        outcomes = []
        for index, tv in enumerate((self.memory, self.sqlite)):
            actor = tv
            if token_index is not None and self.tokens:
                actor = tv.with_token(self.tokens[token_index % len(self.tokens)][index])
            try:
                result: Any = self.run(actor.request(operation, path, data, namespace=namespace))
            except TenantVaultError as error:
                result = error
            outcomes.append(_outcome(result))
        assert outcomes[0] == outcomes[1], f"{operation} {path}: {outcomes}"

    @rule(tenant=st.sampled_from(TENANTS))
    def create_tenant(self, tenant: str) -> None:
        self.both(Operation.UPDATE, f"sys/namespaces/{tenant}", None, None)

    @rule(tenant=st.sampled_from(TENANTS))
    def delete_tenant(self, tenant: str) -> None:
        self.both(Operation.DELETE, f"sys/namespaces/{tenant}", None, None)

    @rule(
        tenant=st.sampled_from(TENANTS),
        path=st.sampled_from(PATHS),
        data=values,
        cas=st.one_of(st.none(), st.integers(0, 4)),
    )
    def put(self, tenant: str, path: str, data: dict[str, Any], cas: int | None) -> None:
        body: dict[str, Any] = {"data": {k: v for k, v in data.items() if v is not None}}
        if cas is not None:
            body["options"] = {"cas": cas}
        self.both(Operation.UPDATE, f"secret/data/{path}", body, tenant)

    @rule(tenant=st.sampled_from(TENANTS), path=st.sampled_from(PATHS), data=values)
    def patch(self, tenant: str, path: str, data: dict[str, Any]) -> None:
        self.both(Operation.PATCH, f"secret/data/{path}", {"data": data}, tenant)

    @rule(tenant=st.sampled_from(TENANTS), path=st.sampled_from(PATHS), version=st.integers(0, 6))
    def read(self, tenant: str, path: str, version: int) -> None:
        self.both(Operation.READ, f"secret/data/{path}", {"version": version}, tenant)
        self.both(Operation.READ, f"secret/subkeys/{path}", {"version": version}, tenant)

    @rule(
        tenant=st.sampled_from(TENANTS),
        path=st.sampled_from(PATHS),
        action=st.sampled_from(["delete", "undelete", "destroy"]),
        numbers=versions,
    )
    def change_versions(self, tenant: str, path: str, action: str, numbers: list[int]) -> None:
        self.both(Operation.UPDATE, f"secret/{action}/{path}", {"versions": numbers}, tenant)

    @rule(tenant=st.sampled_from(TENANTS), path=st.sampled_from(PATHS))
    def delete_latest(self, tenant: str, path: str) -> None:
        self.both(Operation.DELETE, f"secret/data/{path}", None, tenant)

    @rule(
        tenant=st.sampled_from(TENANTS),
        path=st.sampled_from(PATHS),
        max_versions=st.integers(0, 4),
        cas_required=st.booleans(),
        patch=st.booleans(),
    )
    def write_metadata(
        self, tenant: str, path: str, max_versions: int, cas_required: bool, patch: bool
    ) -> None:
        body = {
            "max_versions": max_versions,
            "cas_required": cas_required,
            "custom_metadata": {"owner": "me"},
        }
        self.both(
            Operation.PATCH if patch else Operation.UPDATE, f"secret/metadata/{path}", body, tenant
        )

    @rule(tenant=st.sampled_from(TENANTS), path=st.sampled_from(PATHS))
    def metadata(self, tenant: str, path: str) -> None:
        self.both(Operation.READ, f"secret/metadata/{path}", None, tenant)

    @rule(tenant=st.sampled_from(TENANTS), path=st.sampled_from(PATHS))
    def delete_metadata(self, tenant: str, path: str) -> None:
        self.both(Operation.DELETE, f"secret/metadata/{path}", None, tenant)

    @rule(tenant=st.sampled_from(TENANTS), directory=st.sampled_from(["", "a/", "a/b/"]))
    def list_keys(self, tenant: str, directory: str) -> None:
        self.both(Operation.LIST, f"secret/metadata/{directory}", None, tenant)

    @rule(tenant=st.sampled_from(TENANTS), max_versions=st.integers(0, 3))
    def configure(self, tenant: str, max_versions: int) -> None:
        self.both(Operation.UPDATE, "secret/config", {"max_versions": max_versions}, tenant)

    @rule(tenant=st.sampled_from(TENANTS))
    def create_token(self, tenant: str) -> None:
        pair = []
        for tv in (self.memory, self.sqlite):
            try:
                response = self.run(
                    tv.request(
                        Operation.UPDATE,
                        "auth/token/create",
                        {"policies": ["root"], "ttl": "1h"},
                        namespace=tenant,
                    )
                )
            except TenantVaultError:
                return
            pair.append((response.auth or {})["client_token"])
        self.tokens.append((pair[0], pair[1]))

    @rule(index=st.integers(0, 10), tenant=st.sampled_from(TENANTS), path=st.sampled_from(PATHS))
    def use_token(self, index: int, tenant: str, path: str) -> None:
        self.both(Operation.READ, f"secret/data/{path}", None, tenant, token_index=index)
        self.both(Operation.READ, "auth/token/lookup-self", None, None, token_index=index)

    @rule(seconds=st.sampled_from([1, 600, 3601]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)


TestBackendsAgree = BackendsAgree.TestCase
TestBackendsAgree.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
