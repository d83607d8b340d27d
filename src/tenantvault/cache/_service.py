"""The `cache-maintenance` background service: drops expired read-cache entries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenantvault.cache._kv import ReadCache
from tenantvault.cache._store import SWEEP_BATCH

__all__ = ["run_maintenance"]


async def run_maintenance(
    cache: ReadCache, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Sweep `cache` every `sweep_seconds`, until cancelled (a supervised service).

    Expired entries are never served; sweeping only returns their memory early instead of
    waiting for the bounds to push them out.
    """
    while True:
        if cache.sweep() < SWEEP_BATCH:
            await sleep(cache.settings.sweep_seconds)
        else:
            await asyncio.sleep(0)  # a full batch: more may be due, go on after the others
