"""Property: no operation by one tenant's token reads, lists, changes or learns of another's data.

Three tenants whose names collide by prefix (`acme`, `acme-evil`, `acme2`) each hold secrets
marked with their own canary. Hypothesis drives random operations by random principals against
random tenants — via the namespace argument and via the namespace path-prefix form — and checks:
foreign attempts fail with the one indistinguishable denial and change nothing; answers to a
principal never carry another tenant's canary; own-tenant results match a simple model.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import tenantvault
from tenantvault import Operation, PermissionDeniedError, TenantVaultError

TENANTS = ["acme", "acme-evil", "acme2"]
PATHS = ["a", "b/c", "shared", "acme/x"]


def _canary(tenant: str) -> str:
    # Delimited on both sides: "acme" must not match inside "acme-evil" (prefix collision).
    return f"CANARY<{tenant}>"


def _flatten(value: Any) -> str:
    return repr(value)


class TenantIsolation(RuleBasedStateMachine):
    url = "memory://"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        url = self.url.replace("{tmp}", str(Path(self.tmp.name)))
        self.tv: tenantvault.TenantVault = self.run(tenantvault.open(url))
        self.tokens: dict[str, dict[str, str]] = {}
        self.model: dict[str, dict[str, dict[str, str]]] = {t: {} for t in TENANTS}
        self.counter = 0
        for tenant in TENANTS:
            self.run(self.tv.create_tenant(tenant))
            self.run(
                self.tv.tenant(tenant).policies.write(
                    "app",
                    'path "secret/*" { capabilities = ["create", "read", "update", "patch", '
                    '"delete", "list"] }\npath "auth/token/*" { capabilities = ["update"] }',
                )
            )
            admin = self.run(self.tv.tenant(tenant).tokens.create(policies=["root"]))
            app = self.run(self.tv.tenant(tenant).tokens.create(policies=["app"]))
            self.tokens[tenant] = {"admin": admin.token, "app": app.token}

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        self.run(self.tv.aclose())
        self.loop.close()
        self.tmp.cleanup()

    def _request(
        self,
        actor: str,
        kind: str,
        target: str,
        operation: Operation,
        path: str,
        data: dict[str, Any] | None,
        prefix_form: bool,
    ) -> Any:
        scoped = self.tv.with_token(self.tokens[actor][kind])
        if prefix_form:
            return self.run(scoped.request(operation, f"{target}/{path}", data))
        return self.run(scoped.request(operation, path, data, namespace=target))

    @rule(
        actor=st.sampled_from(TENANTS),
        kind=st.sampled_from(["admin", "app"]),
        where=st.sampled_from(TENANTS),
        path=st.sampled_from(PATHS),
        op=st.sampled_from(
            [
                "put",
                "get",
                "list",
                "delete",
                "metadata",
                "destroy",
                "patch",
                "lookup-token",
                "policy",
            ]
        ),
        prefix_form=st.booleans(),
    )
    def act(self, actor: str, kind: str, where: str, path: str, op: str, prefix_form: bool) -> None:
        target = where
        self.counter += 1
        value = f"{_canary(actor)}{self.counter}"
        requests: dict[str, tuple[Operation, str, dict[str, Any] | None]] = {
            "put": (Operation.UPDATE, f"secret/data/{path}", {"data": {"v": value}}),
            "get": (Operation.READ, f"secret/data/{path}", None),
            "list": (Operation.LIST, "secret/metadata/", None),
            "delete": (Operation.DELETE, f"secret/data/{path}", None),
            "metadata": (Operation.READ, f"secret/metadata/{path}", None),
            "destroy": (Operation.UPDATE, f"secret/destroy/{path}", {"versions": [1]}),
            "patch": (Operation.PATCH, f"secret/data/{path}", {"data": {"p": value}}),
            "lookup-token": (
                Operation.UPDATE,
                "auth/token/lookup",
                {"token": self.tokens[target]["app"]},
            ),
            "policy": (Operation.READ, "sys/policies/acl/app", None),
        }
        operation, api_path, data = requests[op]
        before = self._snapshot(target) if actor != target else None
        try:
            result = self._request(actor, kind, target, operation, api_path, data, prefix_form)
        except PermissionDeniedError as error:
            outcome: Any = ("denied", str(error), error.errors)
        except TenantVaultError as error:
            outcome = ("error", type(error).__name__, error.errors, error.status)
            if actor != target:
                raise AssertionError(f"foreign request got {outcome}, not a denial") from None
        else:
            outcome = ("ok", result.data, result.auth)
            if actor != target:
                raise AssertionError(f"foreign request succeeded: {op} {target}")
            if op == "put":
                self.model[target][path] = {"v": value}
        if actor != target:
            assert outcome == ("denied", "permission denied", ["permission denied"])
            assert self._snapshot(target) == before
        for other in TENANTS:
            if other != actor:
                assert _canary(other) not in _flatten(outcome)

    def _snapshot(self, tenant: str) -> Any:
        kv = self.tv.tenant(tenant).kv
        keys = self.run(kv.list())
        state = {}
        for key in keys:
            if not key.endswith("/"):
                state[key] = self.run(kv.metadata(key))
        return keys, state

    @invariant()
    def own_writes_are_readable_by_the_owner(self) -> None:
        for tenant, secrets in self.model.items():
            for path in secrets:
                try:
                    data = self.run(self.tv.tenant(tenant).kv.get(path)).data
                except TenantVaultError:
                    continue  # deleted or destroyed since: the model only tracks the last put
                for other in TENANTS:
                    if other != tenant:
                        assert _canary(other) not in repr(data)


class TenantIsolationOnSqlite(TenantIsolation):
    url = "sqlite://{tmp}/data"


TestTenantIsolation = TenantIsolation.TestCase
TestTenantIsolation.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# The same machine on the embedded store, fewer runs: every write there waits for an fsync.
TestTenantIsolationOnSqlite = TenantIsolationOnSqlite.TestCase
TestTenantIsolationOnSqlite.settings = settings(
    max_examples=8,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
