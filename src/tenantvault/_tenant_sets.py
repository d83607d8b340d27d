"""Durable sets of the tenants that hold one kind of record (leases, KV rotations, mounts of
a type, auto-rotating transit keys), so that a pass over that kind visits those tenants only,
not every tenant of the store.

A set lives in the root namespace's space (`SYSTEM_TENANT`), storage mount `tenant-sets`:

- `<kind>/member/<tenant>`   one record per member (its value names the tenant again)
- `<kind>/complete`          the mark that the members cover every tenant holding the kind

A writer adds its tenant, durably, *before* it writes the tenant's first record of the kind,
so a crash in between leaves a member without records (one empty listing per pass), never a
record no pass visits. A store written before the set existed has no `complete` mark: the
first `members()` finds the tenants holding the kind with the caller's scan (every tenant,
once), adds them, then writes the mark. Instances that share one store (gateway mode) share
the set; an instance of an older version writes records without adding its tenant, so
upgrade every instance before relying on the set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from tenantvault._exceptions import ConflictError, NotFoundError
from tenantvault._records import encode_record
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend

__all__ = ["MOUNT", "TenantSet"]

MOUNT: Final = "tenant-sets"

# Whether a tenant holds records of the set's kind: the one-time scan of an unmarked store.
Holds = Callable[[str], Awaitable[bool]]


class TenantSet:
    """The tenants holding records of `kind`; `holds(tenant)` answers the one-time scan."""

    def __init__(self, backend: Backend, kind: str, *, holds: Holds) -> None:
        self._backend = backend
        self._kind = kind
        self._holds = holds

    def __repr__(self) -> str:
        return f"TenantSet({self._kind!r})"

    def _member(self, tenant: str) -> str:
        return f"{self._kind}/member/{tenant}"

    async def add(self, tenant: str) -> None:
        """Make `tenant` a member (idempotent); durable when this returns."""
        key = self._member(tenant)
        if await self._backend.read(SYSTEM_TENANT, MOUNT, key) is not None:
            return
        try:
            await self._backend.write(
                SYSTEM_TENANT, MOUNT, key, encode_record({"tenant": tenant}), expected_revision=0
            )
        except ConflictError:
            pass  # another writer added it first

    async def members(self) -> list[str]:
        """Every member, sorted (after the one-time scan of a store without the mark)."""
        complete = f"{self._kind}/complete"
        if await self._backend.read(SYSTEM_TENANT, MOUNT, complete) is None:
            for tenant in await self._backend.list_tenants():
                if await self._holds(tenant):
                    await self.add(tenant)
            try:
                await self._backend.write(
                    SYSTEM_TENANT, MOUNT, complete, encode_record({}), expected_revision=0
                )
            except ConflictError:
                pass  # another instance marked it first
        return await self._backend.list(SYSTEM_TENANT, MOUNT, f"{self._kind}/member/")

    async def forget(self, tenant: str) -> None:
        """Drop a member whose tenant is gone. If the tenant exists again by the time the
        member is deleted (created anew meanwhile, perhaps with records), it is re-added:
        a set may hold a member too many, never one too few."""
        try:
            await self._backend.delete(SYSTEM_TENANT, MOUNT, self._member(tenant))
        except NotFoundError:
            return
        if await self._backend.has_tenant(tenant):
            await self.add(tenant)
