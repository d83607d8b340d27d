"""Tenant-bound views: what the Core hands handlers instead of the token and audit stores.

A tenant's token view addresses tokens only in its incarnation's own space, so another
tenant's token cannot be named at all — not by token, not by accessor, not by handing the
view a record obtained elsewhere. A tenant's audit view holds its own partition of the audit
store, on a connection SQLite confines to it, and nothing that could name another.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import sqlite3
import types
from collections.abc import AsyncIterator

import orjson
import pytest

from tenantvault._core import Core
from tenantvault._exceptions import PermissionDeniedError
from tenantvault._policy_store import TenantPolicies
from tenantvault._request import Operation, Request
from tenantvault._tokens import MOUNT, TenantTokens
from tenantvault.audit import AuditBroker, StoreSink
from tenantvault.audit._partitions import AuditDatabase, Partition
from tenantvault.audit._view import AuditView, RootAuditView, TenantAuditView, open_view
from tenantvault.backends._memory import MemoryBackend


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    opened = Core(MemoryBackend())
    await opened.start()
    for name in ("acme", "acme-evil"):
        await opened.handle_as_operator(Request(Operation.UPDATE, f"sys/namespaces/{name}"))
    yield opened
    await opened.aclose()


async def _token(core: Core, tenant: str | None) -> tuple[str, str]:
    created = await core.handle_as_operator(
        Request(Operation.UPDATE, "auth/token/create", data={"policies": ["x"]}, namespace=tenant)
    )
    assert created.auth is not None
    return created.auth["client_token"], created.auth["accessor"]


async def _view(core: Core, tenant: str | None) -> TenantTokens:
    uid = await core.tenants.uid(tenant) if tenant else ""
    assert uid is not None
    return core.tokens.bound(tenant=tenant, tenant_uid=uid, caller=None)


async def test_a_tenant_view_cannot_name_another_tenants_token(core: Core) -> None:
    token, accessor = await _token(core, "acme-evil")
    mine = await _view(core, "acme")
    assert await mine.lookup(token) is None
    assert await mine.lookup_accessor(accessor) is None
    assert await mine.lookup(token, dying=True) is None
    # Its own view does see it.
    theirs = await _view(core, "acme-evil")
    assert (await theirs.lookup(token)) is not None


async def test_a_foreign_record_handed_to_a_view_is_not_renewed_or_revoked(core: Core) -> None:
    """Even a record obtained elsewhere resolves again through the view: nothing happens."""
    token, _ = await _token(core, "acme-evil")
    foreign = await (await _view(core, "acme-evil")).lookup(token)
    assert foreign is not None
    mine = await _view(core, "acme")
    with pytest.raises(PermissionDeniedError):
        await mine.renew(foreign, None)
    await mine.revoke(foreign)
    assert await core.tokens.lookup(token) is not None  # still alive


async def test_the_root_namespace_view_does_not_see_tenant_tokens(core: Core) -> None:
    token, accessor = await _token(core, "acme")
    root = await _view(core, None)
    assert await root.lookup(token) is None
    assert await root.lookup_accessor(accessor) is None
    own, _ = await _token(core, None)
    assert await root.lookup(own) is not None


async def test_the_space_decides_not_the_record(core: Core) -> None:
    """A view reads only its own incarnation's space: a tenant's token record copied into
    another tenant's space is not addressable there (its suffix names its own incarnation),
    and a record in the view's own space that names another incarnation is not either."""
    token, _ = await _token(core, "acme")
    record = await core.tokens.lookup(token)
    assert record is not None
    backend = core.backend
    key = f"token/{record.token_hash}"
    stored = await backend.read("acme", MOUNT, key)
    assert stored is not None
    await backend.write("acme-evil", MOUNT, key, stored.value, expected_revision=0)
    assert await (await _view(core, "acme-evil")).lookup(token) is None
    assert await (await _view(core, "acme")).lookup(token) is not None
    # In its own space, a record of another incarnation belongs to no one.
    evil_uid = await core.tenants.uid("acme-evil")
    assert evil_uid is not None
    forged = token.rpartition(".")[0] + "." + evil_uid
    await backend.write(
        "acme-evil", MOUNT, f"token/{core.tokens._hash(forged)}", stored.value, expected_revision=0
    )
    assert await (await _view(core, "acme-evil")).lookup(forged) is None


async def test_a_view_mints_tokens_in_its_own_tenant(core: Core) -> None:
    view = await _view(core, "acme")
    _, record = await view.create(
        policies=["x"],
        orphan=False,
        ttl_seconds=None,
        explicit_max_ttl_seconds=0,
        period_seconds=0,
        renewable=True,
        num_uses=0,
        meta=None,
        display_name="token",
        path="auth/token/create",
    )
    assert record.tenant == "acme"
    assert record.tenant_uid == await core.tenants.uid("acme")


async def _audit_view(core: Core, tenant: str | None) -> AuditView:
    uid = await core.tenants.uid(tenant) if tenant else ""
    assert uid is not None
    return await open_view(
        core.audit_broker,
        tenant=tenant,
        tenant_uid=uid,
        tokens=core.tokens,
        tenant_uid_lookup=core.tenants.uid,
        kv_mount=core._secret_storage,
    )


@pytest.fixture
async def audited(core: Core) -> Core:
    """The core with a queryable store holding entries of both tenants and of root."""
    await core.audit_broker.enable("store", "store", {}, persist=False)
    for tenant in ("acme", "acme-evil"):
        await core.handle_as_operator(
            Request(Operation.UPDATE, "secret/data/s", data={"data": {"v": 1}}, namespace=tenant)
        )
    await core.handle_as_operator(Request(Operation.READ, "sys/mounts"))
    return core


def _tenants_in(partitions: list[Partition]) -> set[str]:
    rows = [row for p in partitions for row in p.read("SELECT entry FROM {events}", ())]
    return {orjson.loads(entry)["request"]["tenant"] for (entry,) in rows}


async def test_a_tenant_audit_view_reads_its_own_partition_whatever_it_is_asked(
    audited: Core,
) -> None:
    view = await _audit_view(audited, "acme")
    try:
        for asked in ({}, {"tenant": "acme-evil"}, {"tenant": "acme-evil", "tenant_uid": "*"}):
            partitions = await view.partitions(asked)
            assert len(partitions) == 1
            assert _tenants_in(partitions) == {"acme"}
        subject = await view.subject({"tenant": "acme-evil"})
        assert (subject.tenant, subject.current) == ("acme", True)
        assert _tenants_in(list(subject.partitions)) == {"acme"}
    finally:
        view.close()
    # Root's view picks: one tenant's partition, or all of them.
    root = await _audit_view(audited, None)
    assert _tenants_in(await root.partitions({"tenant": "acme-evil"})) == {"acme-evil"}
    assert _tenants_in(await root.partitions({})) == {"", "acme", "acme-evil"}


async def test_no_method_of_a_tenant_audit_view_takes_a_tenant() -> None:
    """Its whole API: nothing on it can be told which tenant or partition to read."""
    allowed = {"self", "data", "subject", "accessor"}
    for name, member in inspect.getmembers(TenantAuditView, inspect.isfunction):
        if name.startswith("__"):
            continue
        assert set(inspect.signature(member).parameters) <= allowed, name


# What a tenant's audit view must not reach: anything that can open, list or name another
# partition (the store, its database, the broker, the Core, root's view).
_FORBIDDEN: tuple[type, ...] = (Core, AuditBroker, StoreSink, AuditDatabase, RootAuditView)
_ATOMS = (str, bytes, int, float, bool, type(None), enum.Enum)


def _walk(
    start: object, forbidden_types: tuple[type, ...] = _FORBIDDEN
) -> tuple[list[str], list[object], set[str]]:
    """(paths to forbidden objects, connections, strings) reachable from `start`, following
    attributes, slots, items, closure cells and — stricter than the client-privacy walk —
    the `__self__` of bound methods too."""
    forbidden: list[str] = []
    connections: list[object] = []
    strings: set[str] = set()
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("view", start)]
    while stack:
        path, obj = stack.pop()
        if isinstance(obj, str):
            strings.add(obj)
            continue
        if id(obj) in seen or isinstance(obj, _ATOMS):
            continue
        seen.add(id(obj))
        if isinstance(obj, forbidden_types):
            forbidden.append(f"{path}: {type(obj).__name__}")
            continue
        if isinstance(obj, sqlite3.Connection):
            connections.append(obj)
            continue
        if isinstance(obj, types.MethodType):
            stack.append((f"{path}.__self__", obj.__self__))
            continue
        if isinstance(obj, types.FunctionType):
            for index, cell in enumerate(obj.__closure__ or ()):
                stack.append((f"{path}.__closure__[{index}]", cell.cell_contents))
            continue
        if isinstance(obj, types.ModuleType | type | types.BuiltinFunctionType):
            continue
        if isinstance(obj, dict):
            stack.extend((f"{path}[{k!r}]", v) for k, v in obj.items())
            stack.extend((f"{path}.key", k) for k in obj)
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(obj))
            continue
        names = set(getattr(obj, "__dict__", {}))
        for klass in type(obj).__mro__:
            slots = klass.__dict__.get("__slots__", ())
            names.update((slots,) if isinstance(slots, str) else slots)
        for name in sorted(names):
            with contextlib.suppress(AttributeError):
                stack.append((f"{path}.{name}", getattr(obj, name)))
    return forbidden, connections, strings


async def test_the_walk_finds_the_store_from_root_s_view(audited: Core) -> None:
    """The walk is not vacuous: from root's view it reaches the broker at once."""
    view = await _audit_view(audited, None)
    forbidden, _, _ = _walk(view, tuple(t for t in _FORBIDDEN if t is not RootAuditView))
    assert "view._broker: AuditBroker" in forbidden


async def test_a_tenant_audit_view_holds_nothing_that_names_another_partition(
    audited: Core,
) -> None:
    """By construction: nothing reachable from a tenant's view is the store, its catalog or
    the means to open a partition; the one connection it holds is confined by SQLite to the
    tenant's own table, so no SQL on it, whatever its text, reads another partition."""
    view = await _audit_view(audited, "acme")
    try:
        forbidden, connections, strings = _walk(view)
        assert forbidden == []
        assert len(connections) == 1
        (conn,) = connections
        assert isinstance(conn, sqlite3.Connection)
        store = audited.audit_broker.store()
        assert isinstance(store, StoreSink)
        tables = {
            (str(t), str(u)): f"events_{n}"
            for t, u, n in store.query("SELECT tenant, tenant_uid, id FROM audit_partitions", ())
        }
        own = tables[("acme", await audited.tenants.uid("acme") or "")]
        assert conn.execute(f"SELECT count(*) FROM {own}").fetchone()[0] > 0  # noqa: S608
        others = set(tables.values()) - {own}
        assert len(others) == 2  # acme-evil's and root's
        assert not strings & others  # no other partition is even named
        for sql in (
            *(f"SELECT * FROM {table}" for table in others),  # noqa: S608 -- test SQL
            "SELECT * FROM audit_partitions",
            "SELECT * FROM sqlite_master",
            "PRAGMA table_list",
            *(f"SELECT * FROM pragma_table_info('{table}')" for table in others),  # noqa: S608
            # A CTE that takes the own table's name still reads the other table.
            *(f"WITH {own} AS (SELECT * FROM {table}) SELECT * FROM {own}" for table in others),  # noqa: S608 -- test SQL
            "ATTACH DATABASE ':memory:' AS other",
            "PRAGMA query_only = OFF",
            f"DELETE FROM {own}",  # noqa: S608 -- test SQL
            "VACUUM INTO 'copy.db'",
        ):
            with pytest.raises(sqlite3.DatabaseError, match=r"not authorized|prohibited|denied"):
                conn.execute(sql)
    finally:
        view.close()


async def test_a_policy_view_reads_and_writes_its_own_tenant_only(core: Core) -> None:
    mine = TenantPolicies(core.policies, "acme")
    await mine.write("app", 'path "secret/*" { capabilities = ["read"] }')
    assert "app" in await mine.list()
    theirs = TenantPolicies(core.policies, "acme-evil")
    assert await theirs.read("app") is None
    assert "app" not in await theirs.list()
