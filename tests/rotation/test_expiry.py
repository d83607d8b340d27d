"""Secrets not rotated for N days, on a fake clock: a rotation makes a secret fresh again."""

from __future__ import annotations

from tenantvault._clock import format_time
from tenantvault._core import Core
from tenantvault._request import Operation
from tenantvault.backends import MemoryBackend
from tenantvault.rotation import RotationSettings
from tests.conftest import FakeClock
from tests.rotation.conftest import Ops
from tests.rotation.test_service import Recorder

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


async def test_the_listing_is_audited_once_and_stays_in_its_tenant(
    clock: FakeClock, rotation_settings: RotationSettings
) -> None:
    """However many secrets it reads, `sys/rotation/expiring` is one audited request (a
    request and a response entry), and it lists only its own tenant's secrets."""
    recorder = Recorder()
    core = Core(MemoryBackend(), clock=clock, audit=recorder, rotation=rotation_settings)
    await core.start()
    ops = Ops(core)
    try:
        for tenant in ("acme", "other"):
            await ops(Operation.UPDATE, "sys/namespaces/" + tenant, tenant=None)
        await ops(Operation.UPDATE, "sys/mounts/kv2", {"type": "kv-v2"})
        soon = format_time(clock() + 2 * DAY * 10**9)
        for index in range(5):
            await ops.put(f"dir/sub/key{index}", {"v": "1"})
        await ops(Operation.UPDATE, "kv2/data/api", {"data": {"k": "v"}})
        await ops(Operation.UPDATE, "kv2/metadata/api", {"custom_metadata": {"expires_at": soon}})
        await ops(Operation.UPDATE, "secret/data/theirs", {"data": {"k": "v"}}, tenant="other")
        await ops(
            Operation.UPDATE,
            "secret/metadata/theirs",
            {"custom_metadata": {"expires_at": soon}},
            tenant="other",
        )
        clock.advance(10 * DAY)
        recorder.entries.clear()
        answer = await ops(Operation.READ, "sys/rotation/expiring", {"stale_days": 7})
        assert recorder.entries == [
            {"tenant": "acme", "path": "sys/rotation/expiring", "operator": True, "error": ""}
        ]
        data = answer.data or {}
        assert [item["path"] for item in data["expiring"]] == ["kv2/api"]
        assert sorted(item["path"] for item in data["stale"]) == [
            "kv2/api",
            *(f"secret/dir/sub/key{index}" for index in range(5)),
        ]
    finally:
        await core.aclose()
