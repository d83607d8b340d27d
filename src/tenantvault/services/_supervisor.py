"""The supervisor: starts named services in one task group, restarts crashes with backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

from tenantvault._exceptions import ClosedError, ConfigurationError

__all__ = [
    "DEFAULT_BASE_DELAY_SECONDS",
    "DEFAULT_MAX_DELAY_SECONDS",
    "Service",
    "ServiceState",
    "Supervisor",
]

logger = logging.getLogger("tenantvault.services")

Service = Callable[[], Awaitable[None]]
"""A background service: runs until cancelled; raising means it crashed."""

DEFAULT_BASE_DELAY_SECONDS: Final = 1.0
DEFAULT_MAX_DELAY_SECONDS: Final = 60.0

State = Literal["pending", "running", "restarting", "stopped"]


@dataclass(slots=True)
class ServiceState:
    """What `sys/health` shows of one service. `last_error` is an exception type name only:
    a message could carry a path or a value that does not belong in a health probe."""

    state: State = "pending"
    restarts: int = 0
    last_error: str | None = None

    def report(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


class Supervisor:
    """Runs services in one `asyncio.TaskGroup` that `async with supervisor:` owns.

    A service that raises (anything but `CancelledError`) is restarted after
    `base_delay_seconds * 2**n`, capped at `max_delay_seconds`, times a jitter in [0.5, 1]
    so that instances restarted together do not retry in step; `n` counts the crashes in a
    row and starts again from 0 once a run has lasted `max_delay_seconds`. A service that
    returns, or cancels itself, is stopped and not restarted. Leaving the block cancels every
    service and waits for it: no task outlives the supervisor. `sleep`, `clock` and `random`
    are injected for tests.
    """

    def __init__(
        self,
        *,
        base_delay_seconds: float = DEFAULT_BASE_DELAY_SECONDS,
        max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < base_delay_seconds <= max_delay_seconds:
            raise ConfigurationError("restart delays must satisfy 0 < base <= max")
        self._base = base_delay_seconds
        self._max = max_delay_seconds
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._services: dict[str, Service] = {}
        self._states: dict[str, ServiceState] = {}
        self._details: dict[str, Callable[[], dict[str, Any]]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
        """Each service's state, restart count and last error type, by name (sys/health)."""
        reports = {name: self._states[name].report() for name in sorted(self._states)}
        for name, detail in self._details.items():
            try:
                reports[name]["detail"] = detail()
            except Exception as error:  # noqa: BLE001 -- a health probe must always answer
                reports[name]["detail"] = {"error": type(error).__name__}
        return reports

    def delay(self, failures: int) -> float:
        """The pause before the restart after `failures` crashes in a row (1, 2, ...)."""
        ceiling = min(self._max, self._base * 2.0 ** min(failures - 1, 62))
        return ceiling * (0.5 + self._random() / 2)

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
        for task in list(self._tasks):
            task.cancel()
        # The services were cancelled, not the caller: exit the group as a normal block end.
        await group.__aexit__(None, None, None)

    def _start(self, group: asyncio.TaskGroup, name: str) -> None:
        task = group.create_task(self._supervise(name), name=f"service:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _supervise(self, name: str) -> None:
        service = self._services[name]
        state = self._states[name]
        failures = 0
        while True:
            state.state = "running"
            started = self._clock()
            try:
                await service()
            except asyncio.CancelledError:
                state.state = "stopped"
                raise
            except Exception as error:  # noqa: BLE001 -- a crash of any kind is restarted
                if self._clock() - started >= self._max:
                    failures = 0  # it ran for a good while: this crash starts a new series
                failures += 1
                state.restarts += 1
                state.last_error = type(error).__name__
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
                    await self._sleep(pause)
                except asyncio.CancelledError:
                    state.state = "stopped"
                    raise
            else:
                state.state = "stopped"
                return
