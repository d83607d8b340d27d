"""Transit's rotation scheduler: rotate keys whose `auto_rotate_period` has passed, in every
transit mount of the tenants holding such keys, and the supervised loop the server's lifespan
owns.

Every tenant starts with `transit/`, so a pass over every transit mount read every tenant's
mount table and listed every tenant's keys: 2-3 CPU-seconds at 10,000 tenants, and enough
tables to evict the router's cache. A pass visits the root namespace and the members of a
`TenantSet` instead: the key store adds a tenant (`join`) before it stores a key with an
`auto_rotate_period` the key did not have, in any transit mount of the tenant; a store from
before the set is scanned once for such keys. A member whose tenant is gone is forgotten; one
whose keys no longer rotate stays (one mount-table read and one listing per pass): dropping
it would race a writer that found it a member just before, and a set may hold a member too
many, never one too few.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from tenantvault._clock import Clock
from tenantvault._exceptions import (
    IntegrityError,
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._pacing import run_paced
from tenantvault._records import decode_record
from tenantvault._tenant_sets import TenantSet
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.crypto import Keyring
from tenantvault.engines._protocol import Mount, MountSource, MountStorage
from tenantvault.engines.transit._keys import KEY_PREFIX, KeyStore

if TYPE_CHECKING:
    from tenantvault._core import Core

__all__ = ["KIND", "MountSource", "RotationScheduler", "run_rotation"]

logger = logging.getLogger("tenantvault.transit")

_DEFAULT_ROTATION_INTERVAL_SECONDS: Final = 60.0
# The `TenantSet` of the tenants holding keys with an `auto_rotate_period`.
KIND: Final = "transit-auto-rotate"


def _auto_rotates(stored: bytes) -> bool:
    """Whether a stored key record has an `auto_rotate_period`."""
    return bool(Keyring.from_record(decode_record(stored)).auto_rotate_seconds)


class RotationScheduler:
    """One pass over the transit mounts of the tenants with auto-rotating keys:
    `rotate_due_keys`."""

    def __init__(self, keys: KeyStore, *, clock: Clock) -> None:
        self._keys = keys
        self._clock = clock
        # Both None until attached: a pass then rotates nothing.
        self._mounts: MountSource | None = None
        self.holders: TenantSet | None = None

    def __repr__(self) -> str:
        return f"<RotationScheduler attached={self.holders is not None}>"

    def attach(self, backend: Backend, mounts: MountSource) -> None:
        """Find mounts with `mounts`; keep the set of tenants to visit in `backend`."""
        self._mounts = mounts
        self.holders = TenantSet(backend, KIND, holds=self._holds_auto_rotating)

    async def join(self, tenant: str) -> None:
        """Make `tenant` one the passes visit (the root always is); durable on return."""
        if self.holders is not None and tenant != SYSTEM_TENANT:
            await self.holders.add(tenant)

    async def _holds_auto_rotating(self, tenant: str) -> bool:
        """Whether a transit mount of `tenant` holds a key with an `auto_rotate_period` (the
        one-time scan of a store from before the set). Records are read past the keyring
        cache, so that scanning every tenant once does not evict the keys in use."""
        for mount in await self._mounts_in(tenant) or []:
            store = mount.storage
            try:
                for name in await store.list(KEY_PREFIX):
                    try:
                        record = await store.read(KEY_PREFIX + name)
                        if record is not None and _auto_rotates(record.value):
                            return True
                    except IntegrityError:
                        return True  # unreadable here: the pass tries it and logs why
            except NotFoundError:
                return False  # the tenant was deleted meanwhile
        return False

    async def _mounts_in(self, tenant: str) -> list[Mount] | None:
        return None if self._mounts is None else await self._mounts(tenant, "transit")

    async def rotate_due_keys(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """Rotate every key whose `auto_rotate_period` has passed, in the transit mounts of
        the root namespace and of the tenants that hold such keys.

        Returns the (tenant, key) pairs rotated. The due check is repeated inside the
        check-and-set write, so two schedulers (or instances) never rotate one key twice for
        one period. A failure on one key is logged and does not stop the others.
        """
        now = self._clock() if now_ns is None else now_ns
        rotated: list[tuple[str, str]] = []
        if self.holders is None:
            return rotated
        for tenant in [SYSTEM_TENANT, *await self.holders.members()]:
            mounts = await self._mounts_in(tenant)
            if mounts is None:
                await self.holders.forget(tenant)
                continue
            for mount in mounts:
                store = mount.storage
                try:
                    names = await store.list(KEY_PREFIX)
                except NotFoundError:
                    break  # the tenant was deleted meanwhile
                for name in names:
                    try:
                        if await self._rotate_if_due(store, name, now):
                            rotated.append((tenant, name))
                    except NotFoundError:
                        break
                    except TenantVaultError as error:
                        logger.warning(
                            "automatic rotation of a transit key in tenant %s failed (%s)",
                            tenant,
                            type(error).__name__,
                        )
        return rotated

    async def _rotate_if_due(self, store: MountStorage, name: str, now_ns: int) -> bool:
        keyring = await self._keys.load(store, name)
        if keyring is None or not keyring.is_rotation_due(now_ns):
            return False

        def change(fresh: Keyring) -> bool:
            if not fresh.is_rotation_due(now_ns):
                return False
            fresh.rotate(now_ns=now_ns)
            return True

        try:
            _, done = await self._keys.change(store, name, change, missing="key not found")
        except InvalidRequestError:
            return False  # deleted meanwhile
        if done:
            logger.info("rotated a transit key of tenant %s on schedule", store.tenant)
        return done


async def run_rotation(
    core: Core,
    *,
    interval_seconds: float = _DEFAULT_ROTATION_INTERVAL_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Rotate due transit keys every `interval_seconds`, until cancelled.

    Meant to run as one task in the task group the server lifespan owns. A failing pass is
    logged and retried at the next tick; cancellation is never swallowed. A pass visits only
    the tenants with auto-rotating keys, but those may be many: after a long pass the pause
    is longer (`_pacing`: at most 5 % of the time in passes).
    """
    await run_paced(
        lambda: core.transit.rotate_due_keys(core.clock()),
        interval_seconds=interval_seconds,
        what="transit key rotation",
        log=logger,
        sleep=sleep,
        clock=clock,
    )
