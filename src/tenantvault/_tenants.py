"""The tenant registry: create, read, list and delete tenants, each with a unique incarnation id."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import ConflictError, NotFoundError
from tenantvault._paths import validate_tenant_id
from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import Backend

__all__ = ["TenantRegistry"]

MOUNT = "sys"
_INFO_KEY = "tenant"
# How long a process trusts its cached name -> uid mapping. Instances that share one store
# (gateway mode) learn of a tenant deleted, or deleted and created again, by another
# instance within this bound; one read per tenant per second is all it costs.
UID_CACHE_SECONDS: Final = 1.0


class TenantRegistry:
    """Tenants on a Backend. The incarnation id (`uid`) is what tokens are bound to, so a tenant
    deleted and created again under the same name never revives the old tokens."""

    def __init__(self, backend: Backend, *, clock: Clock) -> None:
        self._backend = backend
        self._clock = clock
        # tenant -> (uid, monotonic time it was read); see UID_CACHE_SECONDS.
        self._uids: dict[str, tuple[str, float]] = {}
        self._created: Callable[[str, str | None], Awaitable[None]] | None = None
        # The tenant-delete steps, run in the order they were added (see `on_delete`).
        self._deleting: list[Callable[[str], Awaitable[None]]] = []

    def on_create(self, hook: Callable[[str, str | None], Awaitable[None]]) -> None:
        """Call `hook(tenant, None)` before creating a tenant (it may refuse the id) and
        `hook(tenant, uid)` once it exists, while its info is written (the Core writes its
        mount table then)."""
        self._created = hook

    def on_delete(self, step: Callable[[str], Awaitable[None]]) -> None:
        """Add `step(tenant)` to the steps run, in the order added, before an existing tenant
        is deleted (the lease manager revokes its leases, then the gateway removes its
        upstream data); if one fails, the later ones do not run, the tenant stays and can be
        deleted again."""
        self._deleting.append(step)

    async def create(
        self, tenant: str, *, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        validate_tenant_id(tenant)
        if self._created is not None and not await self._backend.has_tenant(tenant):
            await self._created(tenant, None)
        try:
            await self._backend.create_tenant(tenant)
        except ConflictError:
            # Idempotent, as in OpenBao: creating an existing namespace returns it unchanged.
            return await self.read(tenant)
        uid = uuid.uuid4().hex
        info = {"id": uid, "created": self._clock(), "metadata": metadata or {}}
        record = self._backend.write(
            tenant, MOUNT, _INFO_KEY, encode_record(info), expected_revision=0
        )
        if self._created is None:
            await record
        else:
            # The info and the hook's mount table at once: on the embedded store both join
            # one group commit, so a creation waits for one fsync fewer. Neither order is
            # needed: until the info is durable the tenant has no uid (nothing reaches it),
            # and an info without a table reads as the default mounts (`Router.table`).
            # Both run to the end (no orphan write); the first error is raised as it is.
            outcomes = await asyncio.gather(
                record, self._created(tenant, uid), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        self._uids[tenant] = (uid, time.monotonic())
        return self._describe(tenant, info)

    async def _info(self, tenant: str) -> dict[str, Any] | None:
        try:
            record = await self._backend.read(tenant, MOUNT, _INFO_KEY)
        except NotFoundError:
            return None
        if record is None:
            return None
        info: dict[str, Any] = decode_record(record.value)
        return info

    async def uid(self, tenant: str) -> str | None:
        """The tenant's incarnation id, or None if it does not exist (cached for at most
        `UID_CACHE_SECONDS` per process)."""
        cached = self._uids.get(tenant)
        if cached is not None and time.monotonic() - cached[1] < UID_CACHE_SECONDS:
            return cached[0]
        info = await self._info(tenant)
        if info is None:
            self._uids.pop(tenant, None)
            return None
        uid = str(info["id"])
        self._uids[tenant] = (uid, time.monotonic())
        return uid

    async def read(self, tenant: str) -> dict[str, Any]:
        validate_tenant_id(tenant)
        info = await self._info(tenant)
        if info is None:
            raise NotFoundError()
        return self._describe(tenant, info)

    async def list(self) -> list[str]:
        return await self._backend.list_tenants()

    async def delete(self, tenant: str) -> None:
        validate_tenant_id(tenant)
        if self._deleting and await self._backend.has_tenant(tenant):
            for step in self._deleting:
                await step(tenant)
        # Forget the uid first: from here on no token of this tenant authenticates here.
        self._uids.pop(tenant, None)
        await self._backend.delete_tenant(tenant)

    @staticmethod
    def _describe(tenant: str, info: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": info["id"],
            "path": f"{tenant}/",
            "custom_metadata": info.get("metadata") or {},
            "created_time": format_time(info["created"]),
            "locked": False,
            "tainted": False,
            "uuid": info["id"],
        }
