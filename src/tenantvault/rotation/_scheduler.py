"""The rotation scheduler: find due rotations in every tenant and run them, fairly; retire
previous versions whose grace is over; and the supervised loop the server's lifespan owns.

A pass visits the root namespace and the tenants of a `TenantSet` (each joins before its
first rotation record is written), not every tenant: with thousands of tenants and a few
rotated secrets, a pass costs a few reads, not three per tenant every tick.

A due rotation is run by sending `sys/rotation/rotate/<mount>/<path>` (with `if_due`) through
the Core as the operator, in the secret's own tenant: a background rotation passes the same
choke point as a manual one and lands in that tenant's audit trail, failure and reason
included. Several instances may run the scheduler over one backend: the rotation's lease
and its due check inside the check-and-set (`_runner`) let exactly one of them rotate.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import NotFoundError, TenantVaultError
from tenantvault._request import Operation, Request
from tenantvault._router import Router
from tenantvault._tenant_sets import TenantSet
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._protocol import Mount
from tenantvault.rotation import _record
from tenantvault.rotation._runner import RotationBusyError, is_due
from tenantvault.rotation._secrets import SecretAccess, Submit
from tenantvault.rotation._settings import RotationSettings

__all__ = ["RotationScheduler", "run_scheduler"]

logger = logging.getLogger("tenantvault.rotation")

_NS: Final = 1_000_000_000


@dataclass(slots=True)
class _Pass:
    """The last pass, for `sys/health` (counts only: no tenant, no path)."""

    finished_ns: int = 0
    due: int = 0
    rotated: int = 0
    failed: int = 0
    retired: int = 0


class RotationScheduler:
    """One pass over every kv v2 mount of every tenant: `run_due`."""

    def __init__(
        self,
        *,
        router: Router,
        backend: Backend,
        tenant_uid: Callable[[str], Awaitable[str | None]],
        submit: Submit,
        clock: Clock,
        settings: RotationSettings,
    ) -> None:
        self._router = router
        self._tenant_uid = tenant_uid
        # The tenants holding rotation records (the engine adds one before its first).
        self.holders = TenantSet(backend, "kv-rotation", holds=self._holds_rotations)
        self._submit = submit
        self._clock = clock
        self._settings = settings
        self._last = _Pass()
        self._passes = 0

    def __repr__(self) -> str:
        return f"<RotationScheduler passes={self._passes}>"

    def health(self) -> dict[str, Any]:
        """The scheduler's fields in `sys/health.services` (counts, no names)."""
        last = self._last
        return {
            "passes": self._passes,
            "last_pass": format_time(last.finished_ns) or None,
            "due": last.due,
            "rotated": last.rotated,
            "failed": last.failed,
            "retired": last.retired,
        }

    async def run_due(self) -> _Pass:
        """Rotate what is due now (the tenants taking turns), then retire old versions."""
        now = self._clock()
        found = _Pass()
        per_tenant: dict[str, deque[str]] = {}
        for tenant in [SYSTEM_TENANT, *await self.holders.members()]:
            mounts = await self._kv2_mounts(tenant)
            if mounts is None:
                await self.holders.forget(tenant)
                continue
            for mount in mounts:
                try:
                    due, retired = await self._scan(tenant, mount, now)
                except NotFoundError:
                    break  # the tenant went away meanwhile
                if due:
                    per_tenant.setdefault(tenant, deque()).extend(due)
                found.retired += retired
        # Round robin over tenants: one tenant's thousand due secrets do not starve the rest.
        order: list[tuple[str, str]] = []
        while per_tenant:
            for tenant in list(per_tenant):
                queue = per_tenant[tenant]
                order.append((tenant, queue.popleft()))
                if not queue:
                    del per_tenant[tenant]
        found.due = len(order)
        gate = asyncio.Semaphore(self._settings.max_concurrent)

        async def one(tenant: str, target: str) -> None:
            async with gate:
                if await self._rotate(tenant, target):
                    found.rotated += 1
                else:
                    found.failed += 1

        async with asyncio.TaskGroup() as group:
            for tenant, target in order:
                group.create_task(one(tenant, target))
        found.finished_ns = self._clock()
        self._last = found
        self._passes += 1
        return found

    async def _kv2_mounts(self, tenant: str) -> list[Mount] | None:
        """The tenant's kv v2 mounts; None if there is no such tenant (any more)."""
        uid = "" if tenant == SYSTEM_TENANT else await self._tenant_uid(tenant)
        if uid is None:
            return None
        try:
            table = await self._router.table(tenant, uid)
        except NotFoundError:
            return None
        return [
            mount
            for mount in table.mounts.values()
            if mount.type == "kv" and mount.options.get("version") == "2"
        ]

    async def _holds_rotations(self, tenant: str) -> bool:
        """Whether a kv v2 mount of `tenant` holds a rotation record (the one-time scan of
        a store from before the set)."""
        for mount in await self._kv2_mounts(tenant) or []:
            try:
                if await mount.storage.list(_record.PREFIX):
                    return True
            except NotFoundError:
                return False
        return False

    async def _scan(self, tenant: str, mount: Mount, now: int) -> tuple[list[str], int]:
        """The due targets of one mount, and how many previous versions were retired."""
        due: list[str] = []
        retired = 0
        for path in await _record.walk(mount.storage):
            rotation = await _record.read(mount.storage, path)
            if rotation is None:
                continue
            if rotation.previous_version and rotation.previous_until_ns <= now:
                retired += await self._retire(tenant, mount, path, rotation.previous_version)
            if is_due(rotation, now):
                due.append(mount.path + path)
        return due, retired

    async def _retire(self, tenant: str, mount: Mount, path: str, version: int) -> int:
        """Soft-delete a previous version whose grace is over, then forget it (once)."""
        try:
            await SecretAccess(self._submit, tenant).retire(mount.path, path, version)
        except TenantVaultError as error:
            logger.warning("retiring a previous version failed (%s)", type(error).__name__)
            return 0

        async def attempt() -> None:
            rotation = await _record.read(mount.storage, path)
            if rotation is None or rotation.previous_version != version:
                return  # a newer rotation moved it on meanwhile
            rotation.previous_version = rotation.previous_until_ns = 0
            await _record.write(mount.storage, rotation)

        await retry_on_conflict(attempt, what="the rotation record")
        return 1

    async def _rotate(self, tenant: str, target: str) -> bool:
        """Send the rotate request for one due secret; whether it did not fail."""
        request = Request(
            Operation.UPDATE,
            f"sys/rotation/rotate/{target}",
            data={"if_due": True},
            namespace=None if tenant == SYSTEM_TENANT else tenant,
        )
        try:
            await self._submit(request)
        except RotationBusyError:
            return True  # another instance holds it: rotating, not failing
        except TenantVaultError as error:
            # Audited in the tenant's trail, and in the rotation's status with its reason;
            # the log says only that it happened (a path can be sensitive).
            logger.warning("a scheduled rotation failed (%s)", type(error).__name__)
            return False
        return True


async def run_scheduler(
    scheduler: RotationScheduler,
    *,
    interval_seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run a pass every `interval_seconds` until cancelled (a supervised service). A pass
    that fails is logged and the next tick tries again; a crash is the supervisor's."""
    while True:
        try:
            await scheduler.run_due()
        except TenantVaultError as error:
            logger.error("a rotation pass failed (%s)", type(error).__name__)
        await sleep(interval_seconds)
