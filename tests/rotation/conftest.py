"""Fixtures for the rotation tests: a Core on the memory backend with a fake clock, a real
webhook receiver, and a helper that sends requests as the operator or as a token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from tenantvault._core import Core
from tenantvault._request import Operation, Request, Response
from tenantvault.backends import MemoryBackend
from tenantvault.rotation import RotationSettings
from tests.conftest import FakeClock
from tests.database.conftest import (  # noqa: F401 -- fixtures, for the database rotator
    admin,
    postgres,
)
from tests.rotation._receiver import Receiver, running_receiver


class Ops:
    """Requests to one Core as the operator, in a tenant (None: the root namespace)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def __call__(
        self,
        operation: Operation,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        tenant: str | None = "acme",
        token: str | None = None,
    ) -> Response:
        request = Request(operation, path, data=data, namespace=tenant, token=token)
        if token is not None:
            return await self.core.handle(request)
        return await self.core.handle_as_operator(request)

    async def put(self, path: str, data: Mapping[str, Any], *, tenant: str = "acme") -> int:
        response = await self(
            Operation.UPDATE, f"secret/data/{path}", {"data": dict(data)}, tenant=tenant
        )
        return int((response.data or {})["version"])

    async def get(self, path: str, *, version: int = 0, tenant: str = "acme") -> dict[str, Any]:
        data = {"version": version} if version else None
        response = await self(Operation.READ, f"secret/data/{path}", data, tenant=tenant)
        return dict(response.data or {})

    async def configure(self, path: str, *, tenant: str = "acme", **fields: Any) -> Response:
        return await self(Operation.UPDATE, f"sys/rotation/config/{path}", fields, tenant=tenant)

    async def status(self, path: str, *, tenant: str = "acme") -> dict[str, Any]:
        response = await self(Operation.READ, f"sys/rotation/config/{path}", tenant=tenant)
        return dict(response.data or {})

    async def rotate(self, path: str, *, tenant: str = "acme") -> Response:
        return await self(Operation.UPDATE, f"sys/rotation/rotate/{path}", {}, tenant=tenant)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as started:
        yield started


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def rotation_settings(receiver: Receiver) -> RotationSettings:
    return RotationSettings(
        webhook_allow=(receiver.prefix,), webhook_timeout_seconds=5, lease_seconds=60
    )


async def open_core(backend: MemoryBackend, clock: FakeClock, settings: RotationSettings) -> Core:
    core = Core(backend, clock=clock, rotation=settings)
    await core.start()
    return core


@pytest.fixture
async def core(
    backend: MemoryBackend, clock: FakeClock, rotation_settings: RotationSettings
) -> AsyncIterator[Core]:
    opened = await open_core(backend, clock, rotation_settings)
    await opened.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def ops(core: Core) -> Ops:
    return Ops(core)
