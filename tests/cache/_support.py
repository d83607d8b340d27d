"""A real backend with a window into its reads: counted per key, held at a gate, or failed
(an outage of one mount's storage), for the read cache tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantvault._core import Core
from tenantvault._exceptions import BackendUnavailableError
from tenantvault._request import Operation, Request, Response
from tenantvault.backends import open_backend
from tenantvault.backends._protocol import Backend, Record
from tenantvault.cache import CacheSettings
from tenantvault.cache._store import SealedStore
from tests.conftest import FakeClock, backend_url


class WatchedBackend:
    """`inner` (memory or sqlite) with every read of a record counted by (mount, key).

    `failing` holds storage mounts whose reads raise `BackendUnavailableError` (the backend
    is down for them); reads of keys in `gated` wait for `gate` to be set.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.reads: Counter[tuple[str, str]] = Counter()
        self.failing: set[str] = set()
        self.gated: set[str] = set()
        self.gate = asyncio.Event()

    @property
    def name(self) -> str:
        return self.inner.name

    async def create_tenant(self, tenant: str) -> None:
        await self.inner.create_tenant(tenant)

    async def delete_tenant(self, tenant: str) -> None:
        await self.inner.delete_tenant(tenant)

    async def list_tenants(self) -> list[str]:
        return await self.inner.list_tenants()

    async def has_tenant(self, tenant: str) -> bool:
        return await self.inner.has_tenant(tenant)

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        self.reads[(mount, key)] += 1
        if key in self.gated:
            await self.gate.wait()
        if mount in self.failing:
            raise BackendUnavailableError("injected outage")
        return await self.inner.read(tenant, mount, key)

    async def write(
        self, tenant: str, mount: str, key: str, value: bytes, *, expected_revision: int | None
    ) -> int:
        return await self.inner.write(
            tenant, mount, key, value, expected_revision=expected_revision
        )

    async def delete(
        self, tenant: str, mount: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        return await self.inner.delete(tenant, mount, key, expected_revision=expected_revision)

    async def list(self, tenant: str, mount: str, prefix: str) -> list[str]:
        return await self.inner.list(tenant, mount, prefix)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Harness:
    """A Core over a watched real backend, with tenant `acme`, a fake clock and helpers."""

    core: Core
    backend: WatchedBackend
    clock: FakeClock
    tenant: str = "acme"
    storage: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def store(self) -> SealedStore:
        store = self.core.read_cache.store
        assert store is not None
        return store

    async def call(
        self,
        operation: Operation,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        tenant: str | None = None,
        token: str | None = None,
    ) -> Response:
        """One request as the operator in the tenant (or as the holder of `token`)."""
        request = Request(operation, path, data=data, namespace=tenant or self.tenant, token=token)
        if token is not None:
            return await self.core.handle(request)
        return await self.core.handle_as_operator(request)

    async def put(self, path: str, data: dict[str, Any], *, tenant: str | None = None) -> int:
        """Write `data` at `secret/data/<path>`; its new version."""
        response = await self.call(
            Operation.UPDATE, f"secret/data/{path}", {"data": data}, tenant=tenant
        )
        assert response.data is not None
        version: int = response.data["version"]
        return version

    async def get(
        self, path: str, *, version: int = 0, tenant: str | None = None
    ) -> dict[str, Any]:
        """The `data` of a KV read of `secret/data/<path>`."""
        response = await self.call(
            Operation.READ,
            f"secret/data/{path}",
            {"version": version} if version else None,
            tenant=tenant,
        )
        assert response.data is not None
        return response.data

    async def mount_storage(self, tenant: str | None = None, path: str = "secret/") -> str:
        """The storage mount name behind a tenant's mount (what the backend sees)."""
        mount = await self.core.mount_of(tenant or self.tenant, path)
        return mount.storage.identity[1]

    async def backend_reads(self, path: str, *, tenant: str | None = None) -> int:
        """How many times the backend read the KV metadata of `secret/<path>`: once per
        KV read that reached it."""
        storage = await self.mount_storage(tenant)
        return self.backend.reads[(storage, f"meta/{path}")]

    async def create_tenant(self, name: str) -> None:
        await self.core.handle_as_operator(Request(Operation.UPDATE, f"sys/namespaces/{name}"))


@asynccontextmanager
async def harness(
    kind: str, tmp_path: Path, clock: FakeClock, settings: CacheSettings | None = None
) -> AsyncIterator[Harness]:
    """A `Harness` on the `kind` backend ("memory" or "sqlite")."""
    backend = WatchedBackend(await open_backend(backend_url(kind, tmp_path)))
    core = Core(backend, clock=clock, read_cache=settings or CacheSettings())
    try:
        await core.start()
        opened = Harness(core, backend, clock)
        await opened.create_tenant("acme")
        yield opened
    finally:
        await core.aclose()
        await backend.aclose()
