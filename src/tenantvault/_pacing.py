"""Pacing of background passes over every tenant: the pause after a pass grows with its length.

A pass that visits every tenant (database static roles, transit keys) costs in proportion to
the tenant count, and it shares the event loop and the GIL with the requests. With a fixed
pause, 10,000 tenants made those passes run nearly back to back: a third of a core with no
request at all, and reads at half the rate of a 10-tenant store. Pausing for at least
`PAUSE_RATIO` times as long as the pass took keeps them to at most 1/(1 + PAUSE_RATIO) of the
time (5 %) whatever the count, so the request rate no longer falls as tenants are added;
with few tenants a pass takes milliseconds and the service's own interval decides, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from tenantvault._exceptions import TenantVaultError

__all__ = ["PAUSE_RATIO", "pause_after", "run_paced"]

PAUSE_RATIO: Final = 19.0


def pause_after(elapsed_seconds: float, interval_seconds: float) -> float:
    """The pause before the next pass: the interval, or longer after a long pass."""
    return max(interval_seconds, elapsed_seconds * PAUSE_RATIO)


async def run_paced(
    step: Callable[[], Awaitable[object]],
    *,
    interval_seconds: float,
    what: str,
    log: logging.Logger,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run `step` (one pass) every `interval_seconds`, paced by `pause_after`, until
    cancelled: a failing pass is logged ("<what> pass failed (<error type>)") and the next
    one tries again; cancellation is never swallowed."""
    while True:
        began = clock()
        try:
            await step()
        except TenantVaultError as error:
            log.error("%s pass failed (%s)", what, type(error).__name__)
        await sleep(pause_after(clock() - began, interval_seconds))
