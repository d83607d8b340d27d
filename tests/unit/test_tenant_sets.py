"""Passes over one kind of record visit only the tenants that hold it (`_tenant_sets`).

With many tenants, the lease schedule loaded at start-up and each pass of the KV rotation
scheduler read nothing of a tenant that holds no lease or rotation: what start-up and the
background passes cost does not grow with the tenant count. A store written before the
sets existed (no `complete` mark, no members: built here by hand, as the old code left it)
is scanned once, and found leases and rotations are served as before.
"""

from __future__ import annotations

from tenantvault._core import Core
from tenantvault._request import Operation, Request
from tenantvault._tenant_sets import MOUNT, TenantSet
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.leases._store import Lease, LeaseStore
from tests.conftest import FakeClock
from tests.unit.test_token_partitions import RecordingBackend

TENANTS = 40


def _tenants_touched(backend: RecordingBackend) -> set[str]:
    return {tenant for tenant, _ in backend.calls if tenant != SYSTEM_TENANT}


async def _store(backend: RecordingBackend, clock: FakeClock) -> Core:
    core = Core(backend, clock=clock)
    await core.start()
    for index in range(TENANTS):
        await core.handle_as_operator(Request(Operation.UPDATE, f"sys/namespaces/t{index:02d}"))
    return core


async def _as_before_the_sets(backend: RecordingBackend, kind: str) -> None:
    """Remove a set's records, as in a store the set never knew."""
    for member in await backend.list(SYSTEM_TENANT, MOUNT, f"{kind}/member/"):
        await backend.delete(SYSTEM_TENANT, MOUNT, f"{kind}/member/{member}")
    await backend.delete(SYSTEM_TENANT, MOUNT, f"{kind}/complete")


async def test_start_up_reads_only_the_tenants_holding_leases(clock: FakeClock) -> None:
    backend = RecordingBackend()
    await _store(backend, clock)
    # An overdue lease in one tenant, stored by a version that kept no set.
    now = clock()
    lease = Lease(
        id="database/creds/r/old",
        path="database/creds/r",
        mount="database/",
        mount_uuid="gone",
        issue_ns=now - 20_000_000_000,
        expire_ns=now - 10_000_000_000,
        renewable=True,
        internal={},
    )
    await LeaseStore(backend).create("t07", lease)
    await _as_before_the_sets(backend, "leases")

    upgraded = Core(backend, clock=clock)
    await upgraded.start()  # the one-time scan finds it
    assert upgraded.leases.health()["scheduled"] == 1

    restarted = Core(backend, clock=clock)
    backend.calls.clear()
    await restarted.start()
    assert _tenants_touched(backend) == {"t07"}
    assert restarted.leases.health()["scheduled"] == 1
    assert await restarted.leases.revoke_due() == 1  # overdue: revoked by the first pass


async def test_start_up_of_many_tenants_without_leases_reads_none_of_them(
    clock: FakeClock,
) -> None:
    backend = RecordingBackend()
    await _store(backend, clock)
    restarted = Core(backend, clock=clock)
    backend.calls.clear()
    await restarted.start()
    assert backend.calls, "start-up read nothing at all"
    assert _tenants_touched(backend) == set()


async def test_a_rotation_pass_reads_only_the_tenants_with_rotations(clock: FakeClock) -> None:
    backend = RecordingBackend()
    core = await _store(backend, clock)
    await core.rotation.scheduler.run_due()  # a store's first pass marks its set complete

    async def send(path: str, data: dict[str, object]) -> None:
        await core.handle_as_operator(Request(Operation.UPDATE, path, data=data, namespace="t03"))

    await send("secret/data/api", {"data": {"key": "old"}})
    await send(
        "sys/rotation/config/secret/api", {"rotator": "random", "period": "1h", "field": "key"}
    )
    backend.calls.clear()
    clock.advance(3601)
    assert (await core.rotation.scheduler.run_due()).rotated == 1
    assert _tenants_touched(backend) == {"t03"}

    # A store from before the set: the first pass scans every tenant once and finds it.
    await _as_before_the_sets(backend, "kv-rotation")
    clock.advance(3601)
    assert (await core.rotation.scheduler.run_due()).rotated == 1
    backend.calls.clear()
    clock.advance(3601)
    assert (await core.rotation.scheduler.run_due()).rotated == 1
    assert _tenants_touched(backend) == {"t03"}


async def test_forgetting_a_member_keeps_it_while_its_tenant_exists(clock: FakeClock) -> None:
    """A set may hold a member too many, never one too few: a tenant created again while
    it was being forgotten stays a member."""
    backend = RecordingBackend()
    await _store(backend, clock)

    async def holds(tenant: str) -> bool:
        return False

    members = TenantSet(backend, "test", holds=holds)
    await members.add("t01")
    await members.add("t01")  # idempotent
    await members.add("gone")
    assert await members.members() == ["gone", "t01"]
    await members.forget("t01")  # it exists: kept
    await members.forget("gone")
    assert await members.members() == ["t01"]


async def test_a_pass_over_an_engine_type_reads_only_the_tenants_that_mounted_it(
    clock: FakeClock,
) -> None:
    """The database-role pass (`mounts_of_type("database")`) reads the mount tables of the
    tenants with a database mount only; a store from before the set is scanned once."""
    backend = RecordingBackend()
    core = await _store(backend, clock)
    mount = Request(Operation.UPDATE, "sys/mounts/db", data={"type": "database"}, namespace="t11")
    await core.handle_as_operator(mount)

    await core.router.mounts_of_type("database")  # the set's first use: one scan, marked
    backend.calls.clear()
    found = await core.router.mounts_of_type("database")
    assert [(tenant, m.path) for tenant, m in found] == [("t11", "db/")]
    assert _tenants_touched(backend) == {"t11"}

    await _as_before_the_sets(backend, "mount-type/database")
    fresh = Core(backend, clock=clock)
    await fresh.start()
    assert [t for t, _ in await fresh.router.mounts_of_type("database")] == ["t11"]
    backend.calls.clear()
    assert [t for t, _ in await fresh.router.mounts_of_type("database")] == ["t11"]
    assert _tenants_touched(backend) == {"t11"}
    # A default type (every tenant has kv and transit) still visits every tenant.
    assert len(await fresh.router.mounts_of_type("transit")) == TENANTS
