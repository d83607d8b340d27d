"""Transit's rotation scheduler: rotate keys whose `auto_rotate_period` has passed, in every
transit mount of every tenant, and the supervised loop the server's lifespan owns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from tenantvault._clock import Clock
from tenantvault._exceptions import InvalidRequestError, NotFoundError, TenantVaultError
from tenantvault._pacing import pause_after
from tenantvault.crypto import Keyring
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines.transit._keys import KEY_PREFIX, KeyStore

if TYPE_CHECKING:
    from tenantvault._core import Core

__all__ = ["MountSource", "RotationScheduler", "run_rotation"]

logger = logging.getLogger("tenantvault.transit")

_DEFAULT_ROTATION_INTERVAL_SECONDS: Final = 60.0
# Every mount of an engine type, with its tenant: `Router.mounts_of_type`.
MountSource = Callable[[str], Awaitable[list[tuple[str, Mount]]]]


class RotationScheduler:
    """One pass over every transit mount: `rotate_due_keys`."""

    def __init__(self, keys: KeyStore, *, clock: Clock, mounts: MountSource | None) -> None:
        self._keys = keys
        self._clock = clock
        self._mounts = mounts

    def attach(self, mounts: MountSource) -> None:
        self._mounts = mounts

    async def rotate_due_keys(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """Rotate every key of every transit mount whose `auto_rotate_period` has passed.

        Returns the (tenant, key) pairs rotated. The due check is repeated inside the
        check-and-set write, so two schedulers (or instances) never rotate one key twice for
        one period. A failure on one key is logged and does not stop the others.
        """
        now = self._clock() if now_ns is None else now_ns
        rotated: list[tuple[str, str]] = []
        if self._mounts is None:
            return rotated
        for tenant, mount in await self._mounts("transit"):
            store = mount.storage
            try:
                names = await store.list(KEY_PREFIX)
            except NotFoundError:
                continue  # the tenant was deleted meanwhile
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
    logged and retried at the next tick; cancellation is never swallowed. Every tenant has a
    transit mount, so after a long pass the pause is longer (`_pacing`: at most 5 % of the
    time in passes).
    """
    while True:
        began = clock()
        try:
            await core.transit.rotate_due_keys(core.clock())
        except TenantVaultError as error:
            logger.error("transit key rotation pass failed (%s)", type(error).__name__)
        await sleep(pause_after(clock() - began, interval_seconds))
