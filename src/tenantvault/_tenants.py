"""The tenant registry: create, read, list and delete tenants, each with a unique incarnation id."""

from __future__ import annotations

import asyncio
import contextlib
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
        # tenant -> (uid, tainted, monotonic time it was read); see UID_CACHE_SECONDS.
        self._uids: dict[str, tuple[str, bool, float]] = {}
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
        self._uids[tenant] = (uid, False, time.monotonic())
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
        """The tenant's incarnation id, or None if it does not exist or is being deleted
        (tainted: nothing reaches it any more); cached for at most `UID_CACHE_SECONDS` per
        process."""
        found = await self._lookup(tenant)
        return None if found is None or found[1] else found[0]

    async def state(self, tenant: str) -> tuple[str, bool] | None:
        """(incarnation id, whether it is being deleted) of `tenant`, or None if it does not
        exist; cached as `uid`."""
        return await self._lookup(tenant)

    async def incarnation(self, tenant: str) -> str | None:
        """The tenant's incarnation id even while it is being deleted (the lease manager's
        revocations must still find its mounts), or None if it does not exist."""
        found = await self._lookup(tenant)
        return None if found is None else found[0]

    async def tainted(self, tenant: str) -> bool:
        """Whether `tenant` is being deleted or already gone, read from the backend now (not
        cached): what a lease stored just now asks, so that no lease outlives its tenant
        (`delete`)."""
        info = await self._info(tenant)
        return info is None or bool(info.get("tainted"))

    async def _lookup(self, tenant: str) -> tuple[str, bool] | None:
        """(uid, tainted) of `tenant`, or None; see UID_CACHE_SECONDS."""
        cached = self._uids.get(tenant)
        if cached is not None and time.monotonic() - cached[2] < UID_CACHE_SECONDS:
            return cached[0], cached[1]
        info = await self._info(tenant)
        if info is None:
            self._uids.pop(tenant, None)
            return None
        uid, tainted = str(info["id"]), bool(info.get("tainted"))
        self._uids[tenant] = (uid, tainted, time.monotonic())
        return uid, tainted

    async def read(self, tenant: str) -> dict[str, Any]:
        validate_tenant_id(tenant)
        info = await self._info(tenant)
        if info is None:
            raise NotFoundError()
        return self._describe(tenant, info)

    async def list(self) -> list[str]:
        return await self._backend.list_tenants()

    async def delete(self, tenant: str) -> None:
        """Delete `tenant` with everything it holds.

        As OpenBao, the tenant is first *tainted* (durably marked as being deleted): from
        then on no request reaches it, in this process at once and in any other sharing the
        store within `UID_CACHE_SECONDS`. Then the delete steps run (its leases revoked:
        database users dropped), then its data goes. A lease stored by a request that was
        already under way is caught too: every new lease asks `tainted` after it is stored,
        and revokes itself if so, while the revocation step lists leases only after the
        taint, so each such lease is revoked by one side or the other. If a step fails
        (a lease that cannot be revoked) the taint is lifted again: the tenant is served as
        before, so that its admin can mend what failed (a database config) and delete it
        again. A process that dies mid-deletion leaves it tainted: deleting it again resumes.
        """
        validate_tenant_id(tenant)
        if await self._backend.has_tenant(tenant):
            await self._mark(tenant, tainted=True)
            try:
                for step in self._deleting:
                    await step(tenant)
            except BaseException:
                with contextlib.suppress(Exception):  # the step's error is what the caller needs
                    await self._mark(tenant, tainted=False)
                raise
        # Forget the uid first: from here on no token of this tenant authenticates here.
        self._uids.pop(tenant, None)
        await self._backend.delete_tenant(tenant)

    async def _mark(self, tenant: str, *, tainted: bool) -> None:
        """Set or lift `tenant`'s taint in its info (check-and-set: a concurrent change of the
        info is read again, never overwritten)."""
        while True:
            try:
                record = await self._backend.read(tenant, MOUNT, _INFO_KEY)
            except NotFoundError:
                break
            if record is None:
                break  # a creation that never wrote its info: nothing can reach it
            info = decode_record(record.value)
            if bool(info.get("tainted")) == tainted:
                break
            if tainted:
                info["tainted"] = True
            else:
                info.pop("tainted", None)
            try:
                await self._backend.write(
                    tenant, MOUNT, _INFO_KEY, encode_record(info), expected_revision=record.revision
                )
            except ConflictError:
                continue
            break
        self._uids.pop(tenant, None)

    @staticmethod
    def _describe(tenant: str, info: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": info["id"],
            "path": f"{tenant}/",
            "custom_metadata": info.get("metadata") or {},
            "created_time": format_time(info["created"]),
            "locked": False,
            "tainted": bool(info.get("tainted")),
            "uuid": info["id"],
        }
