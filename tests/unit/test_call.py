"""A handler receives data and the Core's decisions, never anything that grants or checks access.

Issue 9: no handler gets an ACL, a principal, the Core or an unbound store it could use to
widen access. The `Call` type has no such field, and nothing reachable through the public
surface of a real `Call` — as the Core hands it to a handler for a tenant token, a
root-namespace token, the in-process operator and an unauthenticated probe — is one.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tenantvault._core import Core
from tenantvault._policy import ACL
from tenantvault._policy_store import PolicyStore, TenantPolicies
from tenantvault._request import Operation, Request, Response
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import Principal, TenantTokens, TokenRecord, TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._view import AuditView
from tenantvault.backends._memory import MemoryBackend
from tenantvault.backends._protocol import Backend
from tenantvault.engines._route import Call, Caller, Route

# What would let a handler decide or widen access, or reach another tenant's records.
FORBIDDEN: tuple[type, ...] = (
    ACL,
    Core,
    Principal,
    TokenStore,
    TokenRecord,
    PolicyStore,
    TenantRegistry,
    AuditBroker,
    MemoryBackend,
)
_SCALARS = (str, bytes, int, float, bool, type(None))


def reachable(value: object, seen: set[int] | None = None) -> Iterator[object]:
    """Every value reachable from `value` through fields, containers and public attributes."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    yield value
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from reachable(key, seen)
            yield from reachable(item, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from reachable(item, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from reachable(getattr(value, item.name), seen)
    else:
        for name in dir(value):
            if name.startswith("_"):
                continue
            attribute = getattr(value, name)
            # A view's methods are its API; what they close over is its private state.
            if getattr(attribute, "__self__", None) is value:
                continue
            yield from reachable(attribute, seen)


def test_call_has_no_field_that_carries_authority() -> None:
    """The type itself: no ACL, principal, Core or store among the fields of `Call`."""
    names = {item.name for item in dataclasses.fields(Call)}
    assert not names & {"acl", "principal", "core", "token", "store", "backend"}
    for item in dataclasses.fields(Call):
        # The annotations as written (postponed): the names of the types each field holds.
        text = str(item.type)
        for kind in (*FORBIDDEN, Backend):
            assert kind.__name__ not in text, (item.name, text)


@pytest.mark.parametrize("view", [TenantTokens, AuditView, TenantPolicies])
def test_views_keep_their_stores_private(view: type) -> None:
    """A view's public surface is methods only: its store sits in private slots."""
    assert all(slot.startswith("_") for slot in vars(view)["__slots__"])
    for name in dir(view):
        if not name.startswith("_"):
            assert callable(getattr(view, name)), name


async def _calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Real Calls handed to a spy handler by a Core, for every kind of caller."""
    core = Core(MemoryBackend())
    await core.start()
    root = await core.initialize_root_token()
    assert root is not None
    await core.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
    await core.handle_as_operator(
        Request(
            Operation.UPDATE,
            "sys/policies/acl/x",
            data={"policy": 'path "auth/token/*" { capabilities = ["read", "update"] }'},
            namespace="acme",
        )
    )
    created = await core.handle_as_operator(
        Request(Operation.UPDATE, "auth/token/create", data={"policies": ["x"]}, namespace="acme")
    )
    assert created.auth is not None
    tenant_token = created.auth["client_token"]
    seen: list[Call] = []

    async def spy(call: Call) -> Response:
        seen.append(call)
        return Response(data={})

    original = core._route

    def spy_on(route: Route) -> Route:
        resolve = route.resolve
        if resolve is not None:  # a root-namespace-only placeholder: spy on what it resolves to
            return dataclasses.replace(route, resolve=lambda: spy_on(resolve()))
        return dataclasses.replace(route, handler=spy)

    def spied(*args: Any, **kwargs: Any) -> Any:
        # Whether the Core's router is a coroutine or not, the spy replaces the handler.
        result = original(*args, **kwargs)
        if inspect.isawaitable(result):

            async def later() -> Route:
                return spy_on(await result)

            return later()
        return spy_on(result)

    monkeypatch.setattr(core, "_route", spied)
    requests = [
        Request(Operation.READ, "auth/token/lookup-self", token=tenant_token),
        Request(Operation.UPDATE, "auth/token/create", data={}, token=tenant_token),
        Request(Operation.READ, "auth/token/lookup-self", token=root),
        Request(Operation.READ, "auth/token/lookup-self", token=root, namespace="acme"),
        Request(
            Operation.UPDATE,
            "transit/encrypt/k",
            data={"plaintext": ""},
            token=root,
            namespace="acme",
        ),
        Request(Operation.READ, "sys/audit/events", token=root),
        Request(Operation.READ, "sys/audit", token=root),
        Request(Operation.READ, "sys/health"),
    ]
    for request in requests:
        await core.handle(request)
    await core.handle_as_operator(Request(Operation.READ, "sys/audit/events"))
    await core.aclose()
    assert len(seen) == len(requests) + 1
    return seen


async def test_no_value_reachable_from_a_call_carries_authority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kinds: set[type] = set()
    for call in await _calls(monkeypatch):
        for value in reachable(call):
            kinds.add(type(value))
            assert not isinstance(value, FORBIDDEN), (call, type(value))
            assert not isinstance(value, Backend), (call, type(value))
    # The walk did reach what a handler gets: the caller's description and the views.
    assert {Caller, TenantTokens, TenantPolicies} <= kinds
    # The audit view handed over is a tenant's or root's (both `AuditView`s).
    assert any(issubclass(kind, AuditView) for kind in kinds)


async def test_public_probes_run_with_no_principal_and_no_views(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = await _calls(monkeypatch)
    probe = calls[-2]  # sys/health, unauthenticated
    assert (probe.caller, probe.tokens, probe.audit, probe.grant) == (None, None, None, None)
    assert probe.granted == frozenset()
    operator = calls[-1]
    assert operator.caller is None  # the operator has no token to describe
