"""Exactly one rotation of a secret at a time: two Cores over one backend (two instances),
concurrent triggers, and two schedulers that find the same secret due."""

from __future__ import annotations

import asyncio

import pytest

from tenantvault._core import Core
from tenantvault._request import Operation, Request
from tenantvault.backends import MemoryBackend
from tenantvault.rotation import RotationBusyError, RotationSettings
from tests.conftest import FakeClock
from tests.rotation._receiver import Receiver
from tests.rotation.conftest import Ops, open_core


@pytest.fixture
async def second(
    backend: MemoryBackend, clock: FakeClock, rotation_settings: RotationSettings
) -> Core:
    """Another instance over the same backend."""
    return await open_core(backend, clock, rotation_settings)


async def test_a_second_instance_cannot_rotate_a_secret_that_is_rotating(
    core: Core, second: Core, ops: Ops, receiver: Receiver, clock: FakeClock
) -> None:
    other = Ops(second)
    await ops.put("saas/key", {"api_key": "before"})
    await ops.configure(
        "secret/saas/key",
        rotator="webhook",
        period="30s",
        field="api_key",
        params={"url": receiver.url, "secret": receiver.secret},
    )
    receiver.behaviour.hold = "set"
    first = asyncio.create_task(ops.rotate("secret/saas/key"))
    assert await asyncio.to_thread(receiver.behaviour.held.wait, 30)
    with pytest.raises(RotationBusyError):
        await other.rotate("secret/saas/key")
    with pytest.raises(RotationBusyError):
        await ops.rotate("secret/saas/key")
    assert (await other.status("secret/saas/key"))["state"] == "rotating"
    clock.advance(30)  # due now, but leased: the other scheduler leaves it alone
    assert (await second.rotation.scheduler.run_due()).due == 0
    receiver.behaviour.release.set()
    assert (await first).data == {"version": 2}
    assert receiver.phases == ["create", "set", "test", "finish"]
    assert receiver.max_in_flight == 1
    assert (await other.get("saas/key"))["metadata"]["version"] == 2


async def test_concurrent_triggers_on_two_instances_never_overlap(
    core: Core, second: Core, ops: Ops
) -> None:
    await ops.put("db", {"password": "p0", "user": "u"})
    await ops.configure("secret/db", rotator="random", period="1h", field="password")
    instances = [Ops(core), Ops(second)] * 10
    results = await asyncio.gather(
        *(instance.rotate("secret/db") for instance in instances), return_exceptions=True
    )
    versions = sorted(
        int((r.data or {})["version"]) for r in results if not isinstance(r, BaseException)
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, RotationBusyError) for r in refused)
    assert versions == list(range(2, 2 + len(versions)))  # contiguous, none written twice
    current = await ops.get("db")
    assert current["metadata"]["version"] == 1 + len(versions)
    assert current["data"]["user"] == "u"
    assert (await ops.status("secret/db"))["rotations"] == len(versions)


async def test_two_schedulers_finding_the_same_due_secret_rotate_it_once(
    core: Core, second: Core, ops: Ops, clock: FakeClock
) -> None:
    await ops.put("db", {"password": "p0"})
    await ops.configure("secret/db", rotator="random", period="10s", field="password")
    clock.advance(10)
    first, other = await asyncio.gather(
        core.rotation.scheduler.run_due(), second.rotation.scheduler.run_due()
    )
    assert first.due == other.due == 1  # both saw it due ...
    assert (await ops.get("db"))["metadata"]["version"] == 2  # ... one rotated it
    assert (await ops.status("secret/db"))["rotations"] == 1
    # A scheduler that saw it due before the other instance finished asks `if_due`: the
    # due check inside the check-and-set sees it was done, and nothing rotates again.
    late = await Ops(second)(Operation.UPDATE, "sys/rotation/rotate/secret/db", {"if_due": True})
    assert late.status == 204
    assert (await ops.get("db"))["metadata"]["version"] == 2


async def test_a_lease_of_a_dead_instance_expires_and_the_rotation_resumes(
    core: Core, ops: Ops, clock: FakeClock, backend: MemoryBackend
) -> None:
    await ops.put("db", {"password": "p0"})
    await ops.configure("secret/db", rotator="random", period="1h", field="password")
    # An instance that took the lease and died: the record says rotating, leased.
    from tenantvault.rotation import _record

    mount = await core.mount_of("acme", "secret/")
    rotation = await _record.read(mount.storage, "db")
    assert rotation is not None
    rotation.state, rotation.lease_owner = "rotating", "dead:instance"
    rotation.lease_until_ns = clock() + core.rotation.settings.lease_seconds * 1_000_000_000
    await _record.write(mount.storage, rotation)
    with pytest.raises(RotationBusyError):
        await ops.rotate("secret/db")
    clock.advance(core.rotation.settings.lease_seconds + 1)
    assert (await ops.status("secret/db"))["state"] == "failed"
    assert (await core.rotation.scheduler.run_due()).rotated == 1
    assert (await ops.get("db"))["metadata"]["version"] == 2
    response = await core.handle_as_operator(
        Request(Operation.READ, "sys/rotation/config/secret/db", namespace="acme")
    )
    assert (response.data or {})["state"] == "idle"
