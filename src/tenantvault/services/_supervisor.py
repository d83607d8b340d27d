"""The supervisor: starts named services in one task group, restarts crashes with backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal

from tenantvault._exceptions import ClosedError, ConfigurationError

__all__ = [
    "DEFAULT_BASE_DELAY_SECONDS",
    "DEFAULT_CRASH_LOOP_RECOVERY_SECONDS",
    "DEFAULT_CRASH_LOOP_RESTARTS",
    "DEFAULT_CRASH_LOOP_WINDOW_SECONDS",
    "DEFAULT_MAX_DELAY_SECONDS",
    "Service",
    "ServiceState",
    "Supervisor",
    "SupervisorSettings",
]

logger = logging.getLogger("tenantvault.services")

Service = Callable[[], Awaitable[None]]
"""A background service: runs until cancelled; raising means it crashed."""

DEFAULT_BASE_DELAY_SECONDS: Final = 1.0
DEFAULT_MAX_DELAY_SECONDS: Final = 60.0
# A service that crashed this many times within the window is crash-looping: sys/health
# fails until its current run has lasted the recovery time. Recovery is shorter than the
# window on purpose: a service that failed because a dependency was down (the upstream, in
# gateway mode) must not keep the instance out of its load balancer for minutes after the
# dependency is back.
DEFAULT_CRASH_LOOP_RESTARTS: Final = 5
DEFAULT_CRASH_LOOP_WINDOW_SECONDS: Final = 300.0
DEFAULT_CRASH_LOOP_RECOVERY_SECONDS: Final = 30.0

State = Literal["pending", "running", "restarting", "stopped"]


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    """How the supervisor restarts services and when it calls one crash-looping.

    A crashed service restarts after `base_delay_seconds * 2**n` (capped at
    `max_delay_seconds`, times a jitter in [0.5, 1]), `n` the crashes in a row. A service
    that crashed `crash_loop_restarts` times within `crash_loop_window_seconds` is
    crash-looping until its current run has lasted `crash_loop_recovery_seconds` (at most
    the window). The window
    must hold that many crashes at the capped delay, or a service that never starts could
    escape detection. `sleep`, `clock` (monotonic seconds) and `random` are for tests.
    """

    base_delay_seconds: float = DEFAULT_BASE_DELAY_SECONDS
    max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS
    crash_loop_restarts: int = DEFAULT_CRASH_LOOP_RESTARTS
    crash_loop_window_seconds: float = DEFAULT_CRASH_LOOP_WINDOW_SECONDS
    crash_loop_recovery_seconds: float = DEFAULT_CRASH_LOOP_RECOVERY_SECONDS
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.base_delay_seconds <= self.max_delay_seconds:
            raise ConfigurationError("restart delays must satisfy 0 < base <= max")
        if self.crash_loop_restarts < 1:
            raise ConfigurationError("crash_loop_restarts must be 1 or more")
        spread = (self.crash_loop_restarts - 1) * self.max_delay_seconds
        if self.crash_loop_window_seconds <= 0 or self.crash_loop_window_seconds < spread:
            raise ConfigurationError(
                "crash_loop_window_seconds must be positive and at least "
                "(crash_loop_restarts - 1) * max_delay_seconds"
            )
        if not 0 < self.crash_loop_recovery_seconds <= self.crash_loop_window_seconds:
            raise ConfigurationError(
                "crash_loop_recovery_seconds must be positive and at most crash_loop_window_seconds"
            )


@dataclass(slots=True)
class ServiceState:
    """What `sys/health` shows of one service. `last_error` is an exception type name only:
    a message could carry a path or a value that does not belong in a health probe."""

    state: State = "pending"
    restarts: int = 0
    last_error: str | None = None
    # Monotonic times of the latest crashes (as many as make a crash loop), and whether
    # they made one: cleared once the last crash is a whole window old.
    crashes: deque[float] = field(default_factory=deque)
    looping: bool = False
    started: float = 0.0  # monotonic time the current run began

    def report(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "crash_looping": self.looping,
        }


class Supervisor:
    """Runs services in one `asyncio.TaskGroup` that `async with supervisor:` owns.

    A service that raises (anything but `CancelledError`) is restarted with capped,
    jittered exponential backoff (`SupervisorSettings`), so that instances restarted
    together do not retry in step; the backoff starts again from the base once a run has
    lasted `max_delay_seconds`. A service that returns, or cancels itself, is stopped and not
    restarted. Leaving the block stops the services one at a time in the reverse order of
    their registration (the audit service, registered first, stops last) and waits for each:
    no task outlives the supervisor.
    """

    def __init__(self, settings: SupervisorSettings | None = None) -> None:
        self.settings = settings if settings is not None else SupervisorSettings()
        self._services: dict[str, Service] = {}
        self._states: dict[str, ServiceState] = {}
        self._details: dict[str, Callable[[], dict[str, Any]]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<Supervisor services={sorted(self._services)}>"

    def add(
        self,
        name: str,
        service: Service,
        *,
        detail: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Register `service` under `name`; started now if the supervisor is running.

        `detail` returns the service's own health fields, shown under `detail` in its
        report (e.g. the upstream auth state); it must hold no secret.
        """
        if self._closed:
            raise ClosedError("the supervisor has stopped")
        if name in self._services:
            raise ConfigurationError(f"a service named {name!r} is already registered")
        self._services[name] = service
        self._states[name] = ServiceState()
        if detail is not None:
            self._details[name] = detail
        if self._group is not None:
            self._start(self._group, name)

    def report(self) -> dict[str, dict[str, Any]]:
        """Each service's state, restart count, last error type and whether it is
        crash-looping, by name (sys/health)."""
        now = self.settings.clock()
        for state in self._states.values():
            self._settle_loop(state, now)
        reports = {name: self._states[name].report() for name in sorted(self._states)}
        for name, detail in self._details.items():
            try:
                reports[name]["detail"] = detail()
            except Exception as error:  # noqa: BLE001 -- a health probe must always answer
                reports[name]["detail"] = {"error": type(error).__name__}
        return reports

    def crash_looping(self) -> list[str]:
        """The names of the services crash-looping now, sorted."""
        return [name for name, report in self.report().items() if report["crash_looping"]]

    def delay(self, failures: int) -> float:
        """The pause before the restart after `failures` crashes in a row (1, 2, ...)."""
        settings = self.settings
        ceiling = min(
            settings.max_delay_seconds, settings.base_delay_seconds * 2.0 ** min(failures - 1, 62)
        )
        return ceiling * (0.5 + settings.random() / 2)

    async def __aenter__(self) -> Supervisor:
        if self._closed or self._group is not None:
            raise ClosedError("a supervisor runs once")
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        for name in self._services:
            self._start(group, name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        group, self._group = self._group, None
        self._closed = True
        if group is None:
            return
        try:
            # Last registered, first stopped: a service stops while those it may rely on
            # (the audit writers, registered first) still run.
            for name in reversed(list(self._tasks)):
                task = self._tasks[name]
                task.cancel()
                await asyncio.wait({task})
        finally:
            for task in self._tasks.values():
                task.cancel()  # if this stop was itself cancelled: the rest, at once
            # The services were cancelled, not the caller: exit the group as a normal block end.
            await group.__aexit__(None, None, None)

    def _start(self, group: asyncio.TaskGroup, name: str) -> None:
        self._tasks[name] = group.create_task(self._supervise(name), name=f"service:{name}")

    def _settle_loop(self, state: ServiceState, now: float) -> None:
        """Clear a crash loop once the service's current run has lasted the recovery time."""
        recovery = self.settings.crash_loop_recovery_seconds
        if state.looping and state.state == "running" and now - state.started >= recovery:
            state.looping = False

    def _crashed(self, name: str, state: ServiceState, error: Exception) -> None:
        settings = self.settings
        now = settings.clock()
        state.restarts += 1
        state.last_error = type(error).__name__
        state.crashes.append(now)
        while len(state.crashes) > settings.crash_loop_restarts:
            state.crashes.popleft()
        window = settings.crash_loop_window_seconds
        if (
            len(state.crashes) == settings.crash_loop_restarts
            and now - state.crashes[0] <= window
            and not state.looping
        ):
            state.looping = True
            logger.error(
                "service %s is crash-looping: %d crashes within %.0fs; sys/health fails "
                "until it runs %.0fs without one",
                name,
                settings.crash_loop_restarts,
                window,
                settings.crash_loop_recovery_seconds,
            )

    async def _supervise(self, name: str) -> None:
        service = self._services[name]
        state = self._states[name]
        settings = self.settings
        failures = 0
        while True:
            state.state = "running"
            started = state.started = settings.clock()
            try:
                await service()
            except asyncio.CancelledError:
                state.state = "stopped"
                raise
            except Exception as error:  # noqa: BLE001 -- a crash of any kind is restarted
                if settings.clock() - started >= settings.max_delay_seconds:
                    failures = 0  # it ran for a good while: this crash starts a new series
                failures += 1
                self._crashed(name, state, error)
                state.state = "restarting"
                pause = self.delay(failures)
                logger.error(
                    "service %s crashed (%s); restart %d in %.1fs",
                    name,
                    state.last_error,
                    state.restarts,
                    pause,
                )
                try:
                    await settings.sleep(pause)
                except asyncio.CancelledError:
                    state.state = "stopped"
                    raise
            else:
                state.state = "stopped"
                return
