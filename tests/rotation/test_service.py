"""The scheduler as a service: a real-time loop that rotates on a short period (the one
real-time test), and a background rotation audited in the tenant's trail like a request."""

from __future__ import annotations

import asyncio
from typing import Any

from tenantvault._audit_hook import Refusal, RequestContext
from tenantvault._core import Core
from tenantvault._exceptions import TenantVaultError
from tenantvault._request import Operation, Request, Response
from tenantvault.backends import MemoryBackend
from tenantvault.rotation import RotationSettings, run_scheduler
from tests.conftest import FakeClock
from tests.rotation._receiver import Receiver
from tests.rotation.conftest import Ops


async def test_the_loop_rotates_on_a_period_of_a_second_in_real_time() -> None:
    core = Core(MemoryBackend(), rotation=RotationSettings(tick_seconds=0.05))
    await core.start()
    ops = Ops(core)
    await ops(Operation.UPDATE, "sys/namespaces/acme", tenant=None)
    await ops.put("live", {"v": "0"})
    await ops.configure("secret/live", rotator="random", period="1s", field="v")
    rotated_twice = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if (await ops.status("secret/live"))["rotations"] >= 2:
            rotated_twice.set()
        await asyncio.sleep(seconds)

    loop = asyncio.create_task(
        run_scheduler(
            core.rotation.scheduler,
            interval_seconds=core.rotation.settings.tick_seconds,
            sleep=sleep,
        )
    )
    try:
        # No timed assertion: wait (under the suite's per-test timeout) for two rotations.
        await rotated_twice.wait()
        metadata = await ops(Operation.READ, "secret/metadata/live")
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await core.aclose()
    versions = sorted(int(v) for v in (metadata.data or {})["versions"])
    assert versions == list(range(1, versions[-1] + 1))
    assert versions[-1] >= 3


class Recorder:
    """An audit hook that keeps what each response entry would say."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def request(self, context: RequestContext) -> None:
        return None

    async def response(
        self, context: RequestContext, response: Response | None, error: TenantVaultError | None
    ) -> None:
        self.entries.append(
            {
                "tenant": context.tenant,
                "path": context.path,
                "operator": context.principal is not None and context.principal.is_root,
                "error": "; ".join(error.errors) if error else "",
            }
        )

    async def refused(self, refusal: Refusal) -> None:
        return None


async def test_a_scheduled_rotation_is_audited_in_the_tenants_trail(
    clock: FakeClock, receiver: Receiver, rotation_settings: RotationSettings
) -> None:
    recorder = Recorder()
    core = Core(MemoryBackend(), clock=clock, audit=recorder, rotation=rotation_settings)
    await core.start()
    ops = Ops(core)
    try:
        await ops(Operation.UPDATE, "sys/namespaces/acme", tenant=None)
        await ops.put("saas/key", {"api_key": "k"})
        await ops.configure(
            "secret/saas/key",
            rotator="webhook",
            period="1m",
            field="api_key",
            params={"url": receiver.url, "secret": receiver.secret},
        )
        receiver.behaviour.fail["test"] = 503
        recorder.entries.clear()
        clock.advance(60)
        assert (await core.rotation.scheduler.run_due()).failed == 1
        rotate = [e for e in recorder.entries if e["path"] == "sys/rotation/rotate/secret/saas/key"]
        assert rotate == [
            {
                "tenant": "acme",
                "path": "sys/rotation/rotate/secret/saas/key",
                "operator": True,
                "error": "test failed: the webhook answered HTTP 503 to test",
            }
        ]
        # Its KV reads went through the Core too, in the same tenant.
        assert {
            "tenant": "acme",
            "path": "secret/data/saas/key",
            "operator": True,
            "error": "",
        } in (recorder.entries)
        response = await core.handle_as_operator(
            Request(Operation.READ, "sys/rotation/config/secret/saas/key", namespace="acme")
        )
        assert (response.data or {})["last_error"] == rotate[0]["error"]
    finally:
        await core.aclose()
