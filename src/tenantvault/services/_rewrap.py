"""The re-wrap service: moves tenant keys to the newest key term, then destroys older terms.

After `sys/rotate`, tenant keys created before it are still wrapped under the old term. This
service re-wraps them under the newest term every `interval_seconds`, and once the newest
term is `retention_seconds` old, destroys the older terms (`seal._terms`): from then on a
copy of the data directory taken before the rotation holds tenant keys that no current term
opens. The retention is the window in which such a copy can still be restored with the
current keys — the operator's choice between recoverability and forgetting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from tenantvault.seal._terms import KeyRotation

__all__ = ["DEFAULT_REWRAP_INTERVAL_SECONDS", "run_rewrap"]

logger = logging.getLogger("tenantvault.services.rewrap")

DEFAULT_REWRAP_INTERVAL_SECONDS: Final = 60.0


async def run_rewrap(
    rotation: KeyRotation,
    *,
    retention_seconds: float,
    interval_seconds: float = DEFAULT_REWRAP_INTERVAL_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run until cancelled (a supervised service: an error is a crash, restarted)."""
    while True:
        report = await rotation.rewrap_keys(retention_seconds=retention_seconds)
        if report.rewrapped or report.destroyed_terms:
            # Counts and term numbers only: nothing here is key material.
            logger.info(
                "key terms: %d tenant keys re-wrapped, terms destroyed: %s",
                report.rewrapped,
                list(report.destroyed_terms) or "none",
            )
        await sleep(interval_seconds)
