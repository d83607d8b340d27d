"""The `database` rotator against the database engine on a real PostgreSQL: a KV secret
follows a static role's password, which changes in the database (old fails, new works)."""

from __future__ import annotations

import pytest

from tenantvault._core import Core
from tenantvault._exceptions import InvalidRequestError
from tenantvault._request import Operation
from tenantvault.rotation import RotationFailedError
from tests.database.conftest import Admin, can_login, new_login
from tests.rotation.conftest import Ops


async def _static_role(ops: Ops, admin: Admin) -> tuple[str, str]:
    await ops(Operation.UPDATE, "sys/mounts/database", {"type": "database"})
    await ops(Operation.UPDATE, "database/config/pg", admin.config(allowed_roles="*"))
    user, first = await new_login(admin.cluster)
    await ops(
        Operation.UPDATE,
        "database/static-roles/app",
        {"db_name": "pg", "username": user, "rotation_period": "24h"},
    )
    return user, first


async def test_the_secret_follows_the_static_roles_new_password(
    core: Core, ops: Ops, admin: Admin
) -> None:
    user, first = await _static_role(ops, admin)
    before = (await ops(Operation.READ, "database/static-creds/app")).data or {}
    await ops.put("db/app", {"username": user, "password": before["password"], "host": "h"})
    await ops.configure(
        "secret/db/app",
        rotator="database",
        period="1h",
        field="password",
        params={"mount": "database", "role": "app"},
    )
    assert (await ops.rotate("secret/db/app")).data == {"version": 2}
    current = (await ops.get("db/app"))["data"]
    assert current["username"] == user
    assert current["host"] == "h"
    assert current["password"] != before["password"]
    after = (await ops(Operation.READ, "database/static-creds/app")).data or {}
    assert after["password"] == current["password"]
    assert await can_login(admin.cluster, user, current["password"])
    assert not await can_login(admin.cluster, user, before["password"])
    assert not await can_login(admin.cluster, user, first)
    status = await ops.status("secret/db/app")
    assert status["params"] == {"mount": "database/", "role": "app"}
    assert current["password"] not in repr(status)


async def test_a_missing_static_role_fails_the_set_phase(ops: Ops, admin: Admin) -> None:
    await _static_role(ops, admin)
    await ops.put("db/other", {"password": "p"})
    await ops.configure(
        "secret/db/other",
        rotator="database",
        period="1h",
        field="password",
        params={"role": "nope"},
    )
    with pytest.raises(RotationFailedError, match=r"set failed: rotate-role failed"):
        await ops.rotate("secret/db/other")
    assert (await ops.get("db/other"))["data"] == {"password": "p"}


async def test_the_database_rotator_needs_a_role(ops: Ops) -> None:
    with pytest.raises(InvalidRequestError, match=r"params\.role"):
        await ops.configure(
            "secret/db", rotator="database", period="1h", field="password", params={}
        )
