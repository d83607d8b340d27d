"""The random rotator on the scheduler with a fake clock: repeated rotations, contiguous
versions, the other keys carried over, grace, and the configuration's rules."""

from __future__ import annotations

from typing import Any

import pytest

from tenantvault._core import Core
from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._request import Operation
from tests.conftest import FakeClock, canary
from tests.rotation.conftest import Ops


async def test_a_short_period_rotates_again_and_again_with_contiguous_versions(
    core: Core, ops: Ops, clock: FakeClock
) -> None:
    user = canary("user-")
    await ops.put("app/db", {"username": user, "password": "initial"})
    await ops.configure("secret/app/db", rotator="random", period="5s", field="password")
    scheduler = core.rotation.scheduler
    assert (await scheduler.run_due()).due == 0  # not before its period
    passwords = {"initial"}
    for expected in (2, 3, 4, 5):
        clock.advance(5)
        assert (await scheduler.run_due()).rotated == 1
        assert (await scheduler.run_due()).due == 0  # once per period, not per pass
        current = await ops.get("app/db")
        assert current["metadata"]["version"] == expected
        assert current["data"]["username"] == user  # carried over unchanged
        assert current["data"]["password"] not in passwords
        passwords.add(current["data"]["password"])
    metadata = await ops(Operation.READ, "secret/metadata/app/db")
    assert sorted(int(v) for v in (metadata.data or {})["versions"]) == [1, 2, 3, 4, 5]
    status = await ops.status("secret/app/db")
    assert status["rotations"] == 4
    assert status["state"] == "idle"
    assert status["last_version"] == 5
    assert status["last_error"] is None
    assert status["next_rotation"] > status["last_rotation"]
    # The status never shows a value.
    assert not any(p in repr(status) for p in passwords)


async def test_rotate_now_answers_the_new_version_and_never_the_value(ops: Ops) -> None:
    await ops.put("api", {"key": "old"})
    await ops.configure(
        "secret/api",
        rotator="random",
        period="30d",
        field="key",
        params={"length": 40, "symbols": True, "digits": False},
    )
    response = await ops.rotate("secret/api")
    assert response.data == {"version": 2}
    value = (await ops.get("api"))["data"]["key"]
    assert len(value) == 40
    assert not any(c.isdigit() for c in value)
    assert any(not c.isalnum() for c in value)


async def test_the_previous_version_stays_readable_for_grace_then_is_deleted(
    core: Core, ops: Ops, clock: FakeClock
) -> None:
    await ops.put("token", {"value": "v1"})
    await ops.configure("secret/token", rotator="random", period="1h", grace="10m", field="value")
    await ops.rotate("secret/token")
    assert (await ops.get("token", version=1))["data"] == {"value": "v1"}
    clock.advance(9 * 60)
    await core.rotation.scheduler.run_due()
    assert (await ops.get("token", version=1))["data"] == {"value": "v1"}
    clock.advance(2 * 60)
    assert (await core.rotation.scheduler.run_due()).retired == 1
    with pytest.raises(NotFoundError):
        await ops.get("token", version=1)
    assert (await ops.get("token"))["metadata"]["version"] == 2
    assert (await ops.status("secret/token"))["previous_version"] == 0


async def test_a_cron_schedule_sets_the_next_rotation(ops: Ops) -> None:
    await ops.put("cron", {"value": "x"})
    await ops.configure("secret/cron", rotator="random", schedule="0 3 * * *", field="value")
    status = await ops.status("secret/cron")
    assert status["schedule"] == "0 3 * * *"
    assert status["next_rotation"].endswith("T03:00:00.000000000Z")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rotator": "random", "field": "v"}, "exactly one of period and schedule"),
        (
            {"rotator": "random", "field": "v", "period": "1h", "schedule": "* * * * *"},
            "exactly one of period and schedule",
        ),
        ({"rotator": "random", "field": "v", "schedule": "every day"}, "cron expression"),
        ({"rotator": "nope", "field": "v", "period": "1h"}, "rotator must be one of"),
        ({"rotator": "random", "period": "1h"}, "field must name"),
        ({"rotator": "random", "field": "v", "period": "0s"}, "period must be at least"),
        (
            {"rotator": "random", "field": "v", "period": "1h", "params": {"length": 4}},
            "invalid value for length",
        ),
        (
            {
                "rotator": "random",
                "field": "v",
                "period": "1h",
                "params": {
                    "lowercase": False,
                    "uppercase": False,
                    "digits": False,
                    "symbols": False,
                },
            },
            "at least one character class",
        ),
    ],
)
async def test_bad_configurations_are_refused(
    ops: Ops, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        await ops.configure("secret/x", **fields)
    assert message in str(refused.value)


async def test_only_secrets_of_the_tenants_own_kv_v2_mounts_can_be_configured(
    ops: Ops,
) -> None:
    await ops(Operation.UPDATE, "sys/namespaces/globex", tenant=None)
    await ops(Operation.UPDATE, "sys/mounts/theirs", {"type": "kv-v2"}, tenant="globex")
    await ops(Operation.UPDATE, "sys/mounts/old", {"type": "kv"})
    await ops(Operation.UPDATE, "sys/mounts/theirs", {"type": "kv", "options": {"version": "1"}})
    with pytest.raises(InvalidRequestError, match="invalid path"):
        await ops.configure("secret/dir/", rotator="random", field="v", period="1h")
    for target in ("theirs/x", "old/x", "transit/keys/x", "nomount/x", "secret"):
        with pytest.raises(InvalidRequestError, match="not a secret of a kv v2 mount"):
            await ops.configure(target, rotator="random", field="v", period="1h")
    # globex's own mount is fine for globex, and invisible to acme's listing.
    await ops.configure("theirs/x", rotator="random", field="v", period="1h", tenant="globex")
    with pytest.raises(NotFoundError):
        await ops(Operation.LIST, "sys/rotation/config")


async def test_list_read_and_delete_configurations(ops: Ops) -> None:
    await ops(Operation.UPDATE, "sys/mounts/team/kv", {"type": "kv-v2"})
    await ops.configure("secret/a", rotator="random", field="v", period="1h")
    await ops.configure("secret/b/c", rotator="random", field="v", period="1h")
    await ops.configure("team/kv/d", rotator="random", field="v", period="1h")
    listed = await ops(Operation.LIST, "sys/rotation/config")
    assert (listed.data or {})["keys"] == ["secret/a", "secret/b/c", "team/kv/d"]
    await ops(Operation.DELETE, "sys/rotation/config/secret/b/c")
    with pytest.raises(NotFoundError):
        await ops.status("secret/b/c")
    listed = await ops(Operation.LIST, "sys/rotation/config")
    assert (listed.data or {})["keys"] == ["secret/a", "team/kv/d"]
    # Disabling the mount takes its configurations along.
    await ops(Operation.DELETE, "sys/mounts/team/kv")
    listed = await ops(Operation.LIST, "sys/rotation/config")
    assert (listed.data or {})["keys"] == ["secret/a"]


async def test_rotating_a_secret_without_a_version_fails_and_is_retried_later(
    core: Core, ops: Ops, clock: FakeClock
) -> None:
    await ops.configure("secret/missing", rotator="random", field="v", period="1h")
    with pytest.raises(Exception, match="create failed: the secret has no readable current"):
        await ops.rotate("secret/missing")
    status = await ops.status("secret/missing")
    assert status["state"] == "failed"
    assert status["failures"] == 1
    # Backoff: not retried at once, retried once its time came.
    assert (await core.rotation.scheduler.run_due()).due == 0
    clock.advance(core.rotation.settings.retry_base_seconds)
    await ops.put("missing", {"v": "now"})
    assert (await core.rotation.scheduler.run_due()).rotated == 1
    status = await ops.status("secret/missing")
    assert status["state"] == "idle"
    assert status["failures"] == 0
    assert (await ops.get("missing"))["metadata"]["version"] == 2


async def test_cas_required_mounts_are_rotated_with_cas(ops: Ops) -> None:
    await ops(Operation.UPDATE, "secret/config", {"cas_required": True})
    await ops(Operation.UPDATE, "secret/data/strict", {"data": {"v": "1"}, "options": {"cas": 0}})
    await ops.configure("secret/strict", rotator="random", field="v", period="1h")
    assert (await ops.rotate("secret/strict")).data == {"version": 2}


POLICY = 'length = 16\nrule "charset" {\n  charset = "xyz789"\n  min-chars = 1\n}\n'


async def test_a_password_policy_makes_the_value(ops: Ops) -> None:
    """`params.password_policy` names a password policy of the secret's own tenant; the
    rotation fails (and leaves the value) when the tenant has none of that name."""
    await ops(Operation.UPDATE, "sys/namespaces/other", tenant=None)
    await ops(Operation.UPDATE, "sys/policies/password/api", {"policy": POLICY}, tenant="other")
    await ops.put("svc", {"key": "old"})
    await ops.configure(
        "secret/svc",
        rotator="random",
        period="30d",
        field="key",
        params={"password_policy": "api"},
    )
    with pytest.raises(Exception, match="the password policy could not be used"):
        await ops.rotate("secret/svc")
    assert (await ops.get("svc"))["data"] == {"key": "old"}
    await ops(Operation.UPDATE, "sys/policies/password/api", {"policy": POLICY})
    for expected in (2, 3):
        assert (await ops.rotate("secret/svc")).data == {"version": expected}
        value = (await ops.get("svc"))["data"]["key"]
        assert len(value) == 16
        assert set(value) <= set("xyz789")
    status = await ops.status("secret/svc")
    assert status["params"] == {"password_policy": "api"}


async def test_a_password_policy_goes_alone(ops: Ops) -> None:
    with pytest.raises(InvalidRequestError, match="give it alone"):
        await ops.configure(
            "secret/x",
            rotator="random",
            period="1h",
            field="v",
            params={"password_policy": "api", "length": 20},
        )
