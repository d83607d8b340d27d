"""Issue 9 acceptance 5: a `with_token` handle cannot walk around the Core (`_client.py`).

The line, since Python has no real privacy: everything a handle *holds* is walked — public
and private attributes, properties, `__dict__` and slot values, container items, the cells
of closures — recursively, and none of it may be a Core, a store, an engine, a backend, key
material or anything with an operator entry point. Not walked: modules, classes, functions'
globals and code, and the `__self__` of a bound method. The handle keeps exactly one bound
method of the Core, `Core.handle` (the same front door HTTP uses), and the walk pins that it
is that one and no other; reaching the Core from it takes introspection of a function
object (`__self__`), as reaching a module's globals from any function would.
"""

from __future__ import annotations

import enum
import inspect
import types
from collections.abc import Iterator
from typing import Any

import pytest

import tenantvault
from tenantvault import PermissionDeniedError
from tenantvault._core import Core
from tenantvault._policy_store import PolicyStore
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import TokenStore
from tenantvault.audit import AuditBroker
from tenantvault.backends import Backend
from tenantvault.crypto._aead import AeadKey
from tenantvault.crypto._keyring import Keyring
from tenantvault.engines.audit import AuditEngine
from tenantvault.engines.kv import KVEngine
from tenantvault.engines.sys import SysEngine
from tenantvault.engines.token import TokenEngine
from tenantvault.engines.transit import TransitEngine
from tenantvault.testing import core_of

FORBIDDEN: tuple[type, ...] = (
    Core,
    Backend,
    TokenStore,
    TenantRegistry,
    PolicyStore,
    AuditBroker,
    KVEngine,
    TransitEngine,
    SysEngine,
    TokenEngine,
    AuditEngine,
    AeadKey,
    Keyring,
)
_ATOMS = (str, bytes, int, float, bool, type(None), enum.Enum)
_NOT_WALKED = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)


def _held(obj: object) -> Iterator[tuple[str, object]]:
    """What `obj` holds: (name, value) for attributes, properties, slots, items, cells."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", key
            yield f"[{key!r}]", value
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for index, item in enumerate(obj):
            yield f"[{index}]", item
        return
    names = set(dir(obj))
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    names.update(getattr(obj, "__dict__", {}))
    for name in sorted(names):
        if name.startswith("__") and name.endswith("__"):
            continue
        static = inspect.getattr_static(obj, name, None)
        if isinstance(static, types.FunctionType | staticmethod | classmethod):
            continue  # a method: bound to `obj` itself, or to its class
        yield f".{name}", getattr(obj, name)  # properties too: `handle.root` is a path


def _walk(start: object) -> tuple[list[str], list[str]]:
    """(paths to anything forbidden, paths to bound methods of a Core) reachable from `start`."""
    forbidden: list[str] = []
    core_methods: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("handle", start)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _ATOMS):
            continue
        seen.add(id(obj))
        if isinstance(obj, FORBIDDEN) or hasattr(obj, "handle_as_operator"):
            forbidden.append(f"{path}: {type(obj).__name__}")
            continue
        if isinstance(obj, types.MethodType):
            if isinstance(obj.__self__, FORBIDDEN):
                core_methods.append(f"{path}: {type(obj.__self__).__name__}.{obj.__name__}")
            continue  # `__self__` and `__func__` are introspection, out of the walk
        if isinstance(obj, types.FunctionType):
            for index, cell in enumerate(obj.__closure__ or ()):
                stack.append((f"{path}.__closure__[{index}]", cell.cell_contents))
            continue
        if isinstance(obj, _NOT_WALKED):
            continue
        stack.extend((path + name, value) for name, value in _held(obj))
    return forbidden, core_methods


@pytest.fixture
async def scoped(tv: tenantvault.TenantVault) -> tenantvault.TenantVault:
    """A handle for a token of tenant a that may read its own secrets; b exists too."""
    for name in ("a", "b"):
        await tv.create_tenant(name)
        await tv.tenant(name).kv.put("s", {"v": f"secret-of-{name}"})
    a = tv.tenant("a")
    await a.policies.write("reader", 'path "secret/data/*" { capabilities = ["read"] }')
    token = await a.tokens.create(policies=["reader"])
    return tv.with_token(token.token)


async def test_the_walk_finds_the_core_from_the_handle_that_opened_the_store(
    tv: tenantvault.TenantVault,
) -> None:
    """The walk is not vacuous: from the operator's handle it reaches the Core at once."""
    forbidden, _ = _walk(tv)
    assert "handle._core: Core" in forbidden


async def test_nothing_a_token_handle_holds_leads_to_the_core_or_another_tenant(
    scoped: tenantvault.TenantVault,
) -> None:
    """From a `with_token` handle, its `tenant("b")` facade, its root facade and a handle it
    derives, no attribute path reaches a Core, store, engine, backend, key or operator entry;
    the only bound methods of the Core held are `Core.handle`, the checked front door."""
    starts: list[Any] = [
        scoped,
        scoped.tenant("b"),
        scoped.tenant("a"),
        scoped.root,
        scoped.with_token("another-token"),
    ]
    for start in starts:
        forbidden, core_methods = _walk(start)
        assert forbidden == [], start
        assert core_methods, "the walk must see the handle's one entry point"
        assert {entry.rsplit(": ", 1)[1] for entry in core_methods} == {"Core.handle"}


async def test_the_old_way_around_is_gone(scoped: tenantvault.TenantVault) -> None:
    """The issue's exploit: `scoped.core.handle_as_operator(...)` read tenant b's secret."""
    assert not hasattr(scoped, "core")
    with pytest.raises(TypeError):
        core_of(scoped)
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("b").kv.get("s")
    assert (await scoped.tenant("a").kv.get("s")).data == {"v": "secret-of-a"}


async def test_the_operator_reaches_its_core_only_through_the_testing_accessor(
    tv: tenantvault.TenantVault,
) -> None:
    """The handle `open()` returned has no public `core`; tests reach it deliberately."""
    assert not hasattr(tv, "core")
    assert isinstance(core_of(tv), Core)
