"""Background passes over every tenant pace themselves (issue 16, tenant scale).

The database static-role and transit key passes read every tenant's mount table, so a pass
lasts in proportion to the tenant count. After a long pass the pause grows with it (at most
1/(1 + PAUSE_RATIO) of the time in passes, whatever the count); after a short one the
service's own interval stands, as before. The loops run on a real Core here, with a clock
the test sets: no timing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import tenantvault
from tenantvault._pacing import PAUSE_RATIO, pause_after
from tenantvault.engines.database import run_static_rotation
from tenantvault.engines.transit import run_rotation
from tenantvault.testing import core_of


def test_a_short_pass_keeps_the_interval_and_a_long_one_pauses_in_proportion() -> None:
    assert pause_after(0.01, 5.0) == 5.0
    assert pause_after(0.0, 60.0) == 60.0
    assert pause_after(2.0, 5.0) == 2.0 * PAUSE_RATIO
    # The share of the time spent in passes is bounded, however long a pass takes.
    for elapsed in (0.5, 3.0, 40.0):
        assert elapsed / (elapsed + pause_after(elapsed, 5.0)) <= 1 / (1 + PAUSE_RATIO) + 1e-9


@pytest.fixture
async def tv() -> AsyncIterator[tenantvault.TenantVault]:
    async with tenantvault.open("memory://") as opened:
        for tenant in ("acme", "globex"):
            await opened.create_tenant(tenant)
        yield opened


class Stop(Exception):
    """Ends the loop under test at its first pause."""


Sleep = Callable[[float], Awaitable[None]]
Loop = Callable[[Sleep, Callable[[], float]], Awaitable[None]]


async def _first_pause(loop: Loop, elapsed: float) -> float:
    """The pause `loop` takes after one real pass that its clock says lasted `elapsed`."""
    readings = iter([100.0, 100.0 + elapsed])
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        raise Stop

    with pytest.raises(Stop):
        await loop(sleep, lambda: next(readings))
    return pauses[0]


async def test_static_role_rotation_pauses_longer_after_a_long_pass(
    tv: tenantvault.TenantVault,
) -> None:
    engine = core_of(tv).database

    async def loop(sleep: Sleep, clock: Callable[[], float]) -> None:
        await run_static_rotation(engine, tick_seconds=5.0, sleep=sleep, clock=clock)

    assert await _first_pause(loop, 0.02) == 5.0
    assert await _first_pause(loop, 3.0) == 3.0 * PAUSE_RATIO


async def test_transit_rotation_pauses_longer_after_a_long_pass(
    tv: tenantvault.TenantVault,
) -> None:
    core = core_of(tv)

    async def loop(sleep: Sleep, clock: Callable[[], float]) -> None:
        await run_rotation(core, interval_seconds=60.0, sleep=sleep, clock=clock)

    assert await _first_pause(loop, 0.5) == 60.0
    assert await _first_pause(loop, 10.0) == 10.0 * PAUSE_RATIO
