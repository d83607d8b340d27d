"""Secrets not rotated for N days, on a fake clock: a rotation makes a secret fresh again."""

from __future__ import annotations

from tenantvault._request import Operation
from tests.conftest import FakeClock
from tests.rotation.conftest import Ops

DAY = 86400


async def test_stale_secrets_are_listed_until_they_are_rotated(ops: Ops, clock: FakeClock) -> None:
    await ops.put("old/key", {"v": "1"})
    await ops.put("old/other", {"v": "1"})
    clock.advance(10 * DAY)
    await ops.put("new/key", {"v": "1"})
    answer = await ops(Operation.READ, "sys/rotation/expiring", {"stale_days": 7})
    stale = (answer.data or {})["stale"]
    assert [(item["path"], item["age_days"]) for item in stale] == [
        ("secret/old/key", 10),
        ("secret/old/other", 10),
    ]
    await ops.configure("secret/old/key", rotator="random", period="30d", field="v")
    await ops.rotate("secret/old/key")
    answer = await ops(Operation.READ, "sys/rotation/expiring", {"stale_days": "7"})
    assert [item["path"] for item in (answer.data or {})["stale"]] == ["secret/old/other"]
    assert (answer.data or {})["expiring"] == []
