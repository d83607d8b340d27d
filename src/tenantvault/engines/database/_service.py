"""The scheduled rotation of static database roles (run by the supervisor)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from tenantvault._pacing import run_paced

if TYPE_CHECKING:
    from tenantvault.engines.database._engine import DatabaseEngine

__all__ = ["run_static_rotation"]

logger = logging.getLogger("tenantvault.database")

# Vault's queue tick for static roles (`defaultQueueTickSeconds`).
_DEFAULT_TICK_SECONDS: Final = 5.0


async def run_static_rotation(
    engine: DatabaseEngine,
    *,
    tick_seconds: float = _DEFAULT_TICK_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Rotate due static roles every `tick_seconds` until cancelled; a failing pass is
    logged and the next tick tries again. A pass visits every tenant's mount table, so after
    a long one the pause is longer (`_pacing`: at most 5 % of the time in passes)."""
    await run_paced(
        engine.rotate_due,
        interval_seconds=tick_seconds,
        what="static role rotation",
        log=logger,
        sleep=sleep,
        clock=clock,
    )
