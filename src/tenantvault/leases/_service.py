"""The expiration service: revokes leases as they fall due (run by the supervisor)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from tenantvault._exceptions import TenantVaultError
from tenantvault.leases._manager import LeaseManager

__all__ = ["run_expiration"]

logger = logging.getLogger("tenantvault.leases")

_DEFAULT_TICK_SECONDS: Final = 1.0
# How often the schedule is read again from storage: other instances' leases (vault backend)
# become this one's to expire too, so none is left behind when its creator is gone.
_DEFAULT_RELOAD_TICKS: Final = 300


async def run_expiration(
    manager: LeaseManager,
    *,
    tick_seconds: float = _DEFAULT_TICK_SECONDS,
    reload_ticks: int = _DEFAULT_RELOAD_TICKS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Revoke due leases every `tick_seconds` until cancelled. The first pass runs at once,
    so leases that fell due while the server was down are revoked at start. A pass that
    fails (storage unavailable) is logged and the next tick tries again; a failing engine
    is the manager's to retry with backoff. Two instances that revoke the same lease both
    ask its engine (revocation is idempotent) and only one removes it (check-and-set)."""
    ticks = 0
    while True:
        try:
            if ticks and ticks % reload_ticks == 0:
                await manager.start()
            await manager.revoke_due()
        except TenantVaultError as error:
            logger.error("lease expiration pass failed (%s)", type(error).__name__)
        ticks += 1
        await sleep(tick_seconds)
