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

from typing import Final

__all__ = ["PAUSE_RATIO", "pause_after"]

PAUSE_RATIO: Final = 19.0


def pause_after(elapsed_seconds: float, interval_seconds: float) -> float:
    """The pause before the next pass: the interval, or longer after a long pass."""
    return max(interval_seconds, elapsed_seconds * PAUSE_RATIO)
