"""Helpers for the supervision tests: a fault a test fires while requests run, a fast
supervisor, a server with it, and a burst of requests that must all succeed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp, create_app
from tenantvault.services import Service, Supervisor, SupervisorSettings
from tests.server.conftest import BASE_URL, Vault


class Fault:
    """Makes a background step raise, once, at the moment the test fires it.

    Until then the step's first call waits, so the crash lands while the test's requests
    are in flight, not at startup before any request exists.
    """

    def __init__(self) -> None:
        self.fire = asyncio.Event()
        self.fired = 0

    def wrap(self, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def step(*args: Any, **kwargs: Any) -> Any:
            if not self.fired:
                await self.fire.wait()
                self.fired += 1
                raise RuntimeError("injected fault")
            return await original(*args, **kwargs)

        return step

    def patch(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        """Replace `owner.name` (a class's method: every instance) with the faulty step."""
        monkeypatch.setattr(owner, name, self.wrap(getattr(owner, name)))


class EveryService:
    """Crashes every service the supervisor registers (today's and any added later), once,
    at the moment the test fires it: the real service runs until then, and after its
    restart."""

    def __init__(self) -> None:
        self.fire = asyncio.Event()
        self.crashed: set[str] = set()

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        add = Supervisor.add

        def add_faulty(supervisor: Supervisor, name: str, service: Service, **options: Any) -> None:
            async def run() -> None:
                if name in self.crashed:
                    await service()
                    return
                real = asyncio.ensure_future(service())
                fired = asyncio.ensure_future(self.fire.wait())
                try:
                    await asyncio.wait({real, fired}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    real.cancel()  # the crash ends the real run, as a crash inside it would
                    fired.cancel()
                    await asyncio.wait({real, fired})
                if not real.cancelled() and (error := real.exception()) is not None:
                    raise error  # it crashed by itself first: not ours to hide
                self.crashed.add(name)
                raise RuntimeError("injected fault")

            add(supervisor, name, run, **options)

        monkeypatch.setattr(Supervisor, "add", add_faulty)


async def no_wait(seconds: float) -> None:
    """The supervisor's restart pause, made instant (the backoff is unit-tested)."""
    await asyncio.sleep(0)


FAST = SupervisorSettings(sleep=no_wait, random=lambda: 1.0)


@contextlib.asynccontextmanager
async def serving(
    settings: ServerSettings, supervision: SupervisorSettings = FAST
) -> AsyncIterator[tuple[TenantVaultApp, Vault]]:
    """The app in-process (as the `client` fixture), with its supervisor's settings."""
    tokens: list[str] = []
    async with create_app(settings, on_root_token=tokens.append, supervision=supervision) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield app, Vault(client, settings.dev_root_token or tokens[0])


async def health(vault: Vault, **params: str) -> httpx.Response:
    return await vault.client.get("/v1/sys/health", params=params)


async def service_report(vault: Vault, name: str) -> dict[str, Any]:
    report: dict[str, Any] = (await health(vault)).json()["services"][name]
    return report


async def until_restarted(vault: Vault, name: str) -> dict[str, Any]:
    """Poll sys/health until `name` has restarted and runs again; its report then."""
    for _ in range(500):
        report = await service_report(vault, name)
        if report["restarts"] >= 1 and report["state"] == "running":
            return report
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} never came back: {report}")


async def burst_while(vault: Vault, tenant: str, fire: Callable[[], None], count: int = 60) -> None:
    """Reads and writes in `tenant`, all in flight when `fire()` runs; every one succeeds."""
    await vault.put(tenant, "app/seed", {"v": "0"})

    async def one(n: int) -> int:
        if n % 3:
            response = await vault.root("GET", "secret/data/app/seed", namespace=tenant)
        else:
            response = await vault.root(
                "POST", f"secret/data/app/k{n}", namespace=tenant, json={"data": {"v": str(n)}}
            )
        return response.status_code

    tasks = [asyncio.ensure_future(one(n)) for n in range(count)]
    await asyncio.sleep(0)  # the requests are under way
    fire()
    statuses = await asyncio.gather(*tasks)
    assert statuses == [200] * count
