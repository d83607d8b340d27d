"""A static role's `rotation_schedule` with a `rotation_window`, on a fake clock and a real
PostgreSQL: inside the window the role rotates; a window that passes unrotated (the server
was down, or every attempt failed) is skipped until the next scheduled time, as Vault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tenantvault._core import Core
from tenantvault._request import Operation
from tests.conftest import FakeClock
from tests.database.conftest import Admin, can_login, new_login
from tests.rotation.conftest import Ops

NS = 1_000_000_000


def _midnight_after(clock: FakeClock) -> int:
    now = datetime.fromtimestamp(clock() / NS, UTC)
    following = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(following.timestamp()) * NS


async def _role(ops: Ops, admin: Admin) -> str:
    await ops(Operation.UPDATE, "sys/mounts/database", {"type": "database"})
    await ops(Operation.UPDATE, "database/config/pg", admin.config(allowed_roles="*"))
    user, _ = await new_login(admin.cluster)
    body = {
        "db_name": "pg",
        "username": user,
        "rotation_schedule": "0 0 * * *",
        "rotation_window": "1h",
    }
    await ops(Operation.UPDATE, "database/static-roles/s", body)
    return user


async def _creds(ops: Ops) -> dict[str, Any]:
    return dict((await ops(Operation.READ, "database/static-creds/s")).data or {})


async def test_inside_the_window_the_role_rotates(
    core: Core, ops: Ops, clock: FakeClock, admin: Admin
) -> None:
    await _role(ops, admin)
    first = await _creds(ops)
    clock.now = _midnight_after(clock) + 30 * 60 * NS
    assert await core.database.rotate_due() == 1
    assert (await _creds(ops))["password"] != first["password"]


async def test_a_missed_window_waits_for_the_next_scheduled_time(
    core: Core, ops: Ops, clock: FakeClock, admin: Admin
) -> None:
    user = await _role(ops, admin)
    first = await _creds(ops)
    midnight = _midnight_after(clock)
    clock.now = midnight + 2 * 3600 * NS  # down through the window
    assert await core.database.rotate_due() == 0
    creds = await _creds(ops)
    assert creds["password"] == first["password"]
    # Not overdue any more: the next rotation is the next midnight.
    assert creds["ttl"] == 22 * 3600
    assert await core.database.rotate_due() == 0
    assert core.database.static.health()["skipped"] == 1
    clock.now = midnight + 24 * 3600 * NS + 60 * NS
    assert await core.database.rotate_due() == 1
    latest = await _creds(ops)
    assert latest["password"] != first["password"]
    assert await can_login(admin.cluster, user, latest["password"])


async def test_failing_through_the_window_skips_to_the_next_one(
    core: Core, ops: Ops, clock: FakeClock, admin: Admin
) -> None:
    user = await _role(ops, admin)
    first = await _creds(ops)
    broken = admin.config(
        connection_url=admin.cluster.template_url().replace(f":{admin.cluster.port}/", ":1/"),
        verify_connection=False,
        allowed_roles="*",
    )
    await ops(Operation.UPDATE, "database/config/pg", broken)
    midnight = _midnight_after(clock)
    clock.now = midnight + 60 * NS
    assert await core.database.rotate_due() == 0  # failed; it would retry in 10 s
    assert core.database.static.health()["failures"] == 1
    await ops(Operation.UPDATE, "database/config/pg", admin.config(allowed_roles="*"))
    clock.now = midnight + 3600 * NS + 60 * NS  # the window is over
    assert await core.database.rotate_due() == 0
    assert (await _creds(ops))["password"] == first["password"]
    assert await can_login(admin.cluster, user, first["password"])
    clock.now = midnight + 24 * 3600 * NS
    assert await core.database.rotate_due() == 1
    assert await can_login(admin.cluster, user, (await _creds(ops))["password"])
