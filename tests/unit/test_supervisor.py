"""The supervisor: crashed services come back with capped, jittered backoff; none outlives it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tenantvault._exceptions import ClosedError, ConfigurationError
from tenantvault.services import Supervisor, SupervisorSettings


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until `condition` holds (the fake sleep never waits)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


class FakeSleep:
    """Records each pause; after `limit` pauses it blocks until cancelled."""

    def __init__(self, limit: int = 1000) -> None:
        self.delays: list[float] = []
        self.limit = limit

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if len(self.delays) >= self.limit:
            await asyncio.Event().wait()


def supervisor(sleep: FakeSleep, *, clock: Callable[[], float] = lambda: 0.0) -> Supervisor:
    return Supervisor(
        SupervisorSettings(
            base_delay_seconds=1.0,
            max_delay_seconds=10.0,
            sleep=sleep,
            clock=clock,
            random=lambda: 1.0,
        )
    )


async def test_a_crashing_service_is_restarted_with_exponential_backoff() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    sleep = FakeSleep()
    services = supervisor(sleep)
    services.add("flaky", flaky)
    async with services:
        await until(lambda: calls == 4)
        assert sleep.delays == [1.0, 2.0, 4.0]
        assert services.report() == {
            "flaky": {
                "state": "running",
                "restarts": 3,
                "last_error": "RuntimeError",
                "crash_looping": False,
            }
        }


async def test_a_service_that_keeps_crashing_backs_off_to_the_cap() -> None:
    async def broken() -> None:
        raise OSError("still down")

    sleep = FakeSleep(limit=8)
    services = supervisor(sleep)
    services.add("broken", broken)
    async with services:
        await until(lambda: len(sleep.delays) == 8)
        assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]
        assert services.report()["broken"] == {
            "state": "restarting",
            "restarts": 8,
            "last_error": "OSError",
            "crash_looping": True,  # 5 crashes within the 300 s window (the clock stands still)
        }


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 5.0), (0.5, 7.5), (0.999, 9.995)])
def test_jitter_stays_between_half_the_delay_and_the_delay(draw: float, expected: float) -> None:
    services = Supervisor(
        SupervisorSettings(base_delay_seconds=1.0, max_delay_seconds=10.0, random=lambda: draw)
    )
    assert services.delay(50) == pytest.approx(expected)
    assert services.delay(1) == pytest.approx(expected / 10)


async def test_a_crash_after_a_long_run_starts_the_backoff_again() -> None:
    now = 0.0
    calls = 0

    async def sometimes() -> None:
        nonlocal calls, now
        calls += 1
        if calls == 3:
            now += 60.0  # this run lasts longer than the cap before it crashes
        if calls == 4:
            await asyncio.Event().wait()
        raise RuntimeError("boom")

    sleep = FakeSleep()
    services = supervisor(sleep, clock=lambda: now)
    services.add("sometimes", sometimes)
    async with services:
        await until(lambda: calls == 4)
    assert sleep.delays == [1.0, 2.0, 1.0]


async def test_cancelled_error_stops_a_service_without_a_restart() -> None:
    calls = 0

    async def quits() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    async def steady() -> None:
        await asyncio.Event().wait()

    sleep = FakeSleep()
    services = supervisor(sleep)
    services.add("quits", quits)
    services.add("steady", steady)
    async with services:
        await until(lambda: services.report()["quits"]["state"] == "stopped")
        for _ in range(10):
            await asyncio.sleep(0)
        assert calls == 1
        assert sleep.delays == []
        assert services.report()["steady"]["state"] == "running"


async def test_a_service_that_returns_is_stopped_not_restarted() -> None:
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1

    async with supervisor(FakeSleep()) as services:
        services.add("once", once)
        await until(lambda: services.report()["once"]["state"] == "stopped")
        await asyncio.sleep(0)
    assert calls == 1
    assert services.report()["once"] == {
        "state": "stopped",
        "restarts": 0,
        "last_error": None,
        "crash_looping": False,
    }


async def test_exiting_the_supervisor_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()

    async def forever() -> None:
        await asyncio.Event().wait()

    async def crashing() -> None:
        raise ValueError("boom")

    real_sleep = SupervisorSettings(
        base_delay_seconds=3600.0, max_delay_seconds=3600.0, crash_loop_window_seconds=4 * 3600.0
    )
    services = Supervisor(real_sleep)
    services.add("forever", forever)
    services.add("crashing", crashing)
    async with services:
        await until(lambda: services.report()["crashing"]["state"] == "restarting")
        assert len(asyncio.all_tasks() - before) == 2
    assert asyncio.all_tasks() == before
    assert {name: state["state"] for name, state in services.report().items()} == {
        "crashing": "stopped",
        "forever": "stopped",
    }


async def test_an_error_in_the_block_still_stops_every_service() -> None:
    before = asyncio.all_tasks()

    async def forever() -> None:
        await asyncio.Event().wait()

    services = supervisor(FakeSleep())
    services.add("forever", forever)

    async def fail_inside() -> None:
        async with services:
            await until(lambda: services.report()["forever"]["state"] == "running")
            raise KeyError("caller's own error")

    with pytest.raises(KeyError):
        await fail_inside()
    assert asyncio.all_tasks() == before


async def test_names_are_unique_and_a_supervisor_runs_once() -> None:
    async def idle() -> None:
        await asyncio.Event().wait()

    services = supervisor(FakeSleep())
    services.add("a", idle)
    with pytest.raises(ConfigurationError):
        services.add("a", idle)
    async with services:
        pass
    with pytest.raises(ClosedError):
        services.add("b", idle)
    with pytest.raises(ClosedError):
        await services.__aenter__()


def test_the_report_is_sorted_by_name_and_json_shaped() -> None:
    async def idle() -> None:
        await asyncio.Event().wait()

    services = supervisor(FakeSleep())
    services.add("zeta", idle)
    services.add("alpha", idle)
    assert services.report() == {
        "alpha": {"state": "pending", "restarts": 0, "last_error": None, "crash_looping": False},
        "zeta": {"state": "pending", "restarts": 0, "last_error": None, "crash_looping": False},
    }
    assert list(services.report()) == ["alpha", "zeta"]


class Clock:
    """A monotonic clock the test moves; each restart pause moves it too."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def looping_supervisor(clock: Clock, sleep: FakeSleep) -> Supervisor:
    async def pause(seconds: float) -> None:
        clock.now += seconds
        await sleep(seconds)

    return Supervisor(
        SupervisorSettings(
            base_delay_seconds=1.0,
            max_delay_seconds=10.0,
            crash_loop_restarts=3,
            crash_loop_window_seconds=100.0,
            crash_loop_recovery_seconds=20.0,
            sleep=pause,
            clock=clock,
            random=lambda: 1.0,
        )
    )


async def test_a_service_crashing_often_is_crash_looping_until_it_runs_a_window_clean() -> None:
    crashes_left = 3

    async def unstable() -> None:
        nonlocal crashes_left
        if crashes_left:
            crashes_left -= 1
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    clock = Clock()
    services = looping_supervisor(clock, FakeSleep())
    services.add("unstable", unstable)
    async with services:
        await until(lambda: crashes_left == 0 and services.report()["unstable"]["restarts"] == 3)
        # Crashes at 0, 1 and 3 s: three within the 100 s window; running again at 7 s.
        assert services.report()["unstable"]["crash_looping"] is True
        assert services.crash_looping() == ["unstable"]
        clock.now = 7.0 + 19.0  # running again, but not yet for the 20 s recovery time
        assert services.crash_looping() == ["unstable"]
        clock.now = 7.0 + 20.0
        assert services.crash_looping() == []
        assert services.report()["unstable"] == {
            "state": "running",
            "restarts": 3,
            "last_error": "RuntimeError",
            "crash_looping": False,
        }


async def test_crashes_spread_wider_than_the_window_are_no_crash_loop() -> None:
    calls = 0
    clock = Clock()

    async def rare() -> None:
        nonlocal calls
        calls += 1
        if calls <= 4:
            clock.now += 60.0  # runs a minute, then crashes: 4 crashes over 4 minutes
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    services = looping_supervisor(clock, FakeSleep())
    services.add("rare", rare)
    async with services:
        await until(lambda: calls == 5)
        assert services.report()["rare"]["restarts"] == 4
        assert services.crash_looping() == []


async def test_services_stop_last_registered_first_each_while_the_earlier_still_run() -> None:
    stopped: list[str] = []
    seen_running: dict[str, list[str]] = {}
    services = supervisor(FakeSleep())

    def service(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                stopped.append(name)
                seen_running[name] = [
                    other
                    for other, report in services.report().items()
                    if report["state"] == "running" and other != name
                ]

        return run

    for name in ("audit", "transit-rotation", "kv-rotation", "cache-maintenance"):
        services.add(name, service(name))
    async with services:
        await until(lambda: all(r["state"] == "running" for r in services.report().values()))
    assert stopped == ["cache-maintenance", "kv-rotation", "transit-rotation", "audit"]
    assert seen_running["kv-rotation"] == ["audit", "transit-rotation"]
    assert seen_running["audit"] == []


@pytest.mark.parametrize(
    "changes",
    [
        {"base_delay_seconds": 0.0},
        {"base_delay_seconds": 5.0, "max_delay_seconds": 1.0},
        {"crash_loop_restarts": 0},
        {"crash_loop_window_seconds": 0.0},
        # 5 crashes at the 60 s cap take 240 s: a 200 s window would never see them all.
        {"crash_loop_window_seconds": 200.0},
        {"crash_loop_recovery_seconds": 0.0},
        {"crash_loop_recovery_seconds": 301.0},
    ],
)
def test_settings_that_could_never_work_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SupervisorSettings(**changes)


async def test_a_stop_that_is_itself_cancelled_still_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()
    stopping = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.Event().wait()  # cleanup that hangs until cancelled again
            raise

    async def steady() -> None:
        await asyncio.Event().wait()

    services = supervisor(FakeSleep())
    services.add("steady", steady)
    services.add("slow", slow_to_stop)  # registered last: stopped first, and hangs

    async def owner() -> None:
        async with services:
            await until(lambda: services.report()["slow"]["state"] == "running")

    task = asyncio.ensure_future(owner())
    await stopping.wait()
    task.cancel()  # e.g. the lifespan's own shutdown timeout
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == before
