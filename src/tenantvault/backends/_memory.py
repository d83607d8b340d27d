"""The in-memory mock backend: the Backend contract in dicts, plus fault injection for tests."""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field

from tenantvault._exceptions import (
    BackendTimeoutError,
    BackendUnavailableError,
    ClosedError,
    ConflictError,
    NotFoundError,
)
from tenantvault.backends._protocol import SYSTEM_TENANT, Record

__all__ = ["Faults", "MemoryBackend"]


@dataclass
class Faults:
    """What the mock should do wrong; change the fields at any time during a test.

    `latency_seconds` delays every call; `unavailable` makes every call raise
    `BackendUnavailableError` (an outage or a sealed upstream); `fail_next` makes the next N
    calls fail; `timeout_next` makes the next N writes apply and then raise
    `BackendTimeoutError` — the "request delivered, response lost" case.
    """

    latency_seconds: float = 0.0
    unavailable: bool = False
    fail_next: int = 0
    timeout_next: int = 0
    calls: int = field(default=0, init=False)


class _Space:
    """One tenant's records per mount, with keys kept sorted for prefix listing."""

    __slots__ = ("keys", "records")

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Record] = {}
        self.keys: dict[str, list[str]] = {}


class MemoryBackend:
    """Records in process memory; nothing is persisted. Safe for one event loop."""

    def __init__(self, *, faults: Faults | None = None) -> None:
        self.faults = faults if faults is not None else Faults()
        self._spaces: dict[str, _Space] = {SYSTEM_TENANT: _Space()}
        self._closed = False
        self._revision = 0

    @property
    def name(self) -> str:
        return "memory"

    def __repr__(self) -> str:
        return f"MemoryBackend(tenants={len(self._spaces) - 1})"

    async def _enter(self) -> None:
        if self._closed:
            raise ClosedError("backend is closed")
        faults = self.faults
        faults.calls += 1
        # Always yield to the loop, like real I/O: concurrent callers interleave here exactly
        # as they would on a network backend, so races show up in tests against the mock too.
        await asyncio.sleep(faults.latency_seconds)
        if faults.unavailable:
            raise BackendUnavailableError("memory backend: injected outage")
        if faults.fail_next > 0:
            faults.fail_next -= 1
            raise BackendUnavailableError("memory backend: injected failure")

    def _space(self, tenant: str) -> _Space:
        try:
            return self._spaces[tenant]
        except KeyError:
            raise NotFoundError("tenant not found") from None

    async def create_tenant(self, tenant: str) -> None:
        await self._enter()
        if tenant in self._spaces:
            raise ConflictError("tenant already exists")
        self._spaces[tenant] = _Space()

    async def delete_tenant(self, tenant: str) -> None:
        await self._enter()
        if tenant == SYSTEM_TENANT or tenant not in self._spaces:
            raise NotFoundError("tenant not found")
        del self._spaces[tenant]

    async def list_tenants(self) -> list[str]:
        await self._enter()
        return sorted(t for t in self._spaces if t != SYSTEM_TENANT)

    async def has_tenant(self, tenant: str) -> bool:
        await self._enter()
        return tenant in self._spaces

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        await self._enter()
        return self._space(tenant).records.get((mount, key))

    async def write(
        self, tenant: str, mount: str, key: str, value: bytes, *, expected_revision: int | None
    ) -> int:
        await self._enter()
        space = self._space(tenant)
        current = space.records.get((mount, key))
        current_revision = current.revision if current is not None else 0
        if expected_revision is not None and expected_revision != current_revision:
            raise ConflictError("record changed since it was read")
        # One counter for the whole store: a key deleted and written again never repeats a
        # revision, so a writer holding a stale revision cannot pass the check (no ABA).
        self._revision += 1
        revision = self._revision
        space.records[(mount, key)] = Record(bytes(value), revision)
        if current is None:
            bisect.insort(space.keys.setdefault(mount, []), key)
        if self.faults.timeout_next > 0:
            self.faults.timeout_next -= 1
            raise BackendTimeoutError("memory backend: injected timeout after the write applied")
        return revision

    async def delete(
        self, tenant: str, mount: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        await self._enter()
        space = self._space(tenant)
        current = space.records.get((mount, key))
        if expected_revision is not None:
            if (current.revision if current is not None else 0) != expected_revision:
                raise ConflictError("record changed since it was read")
        if current is None:
            return False
        del space.records[(mount, key)]
        keys = space.keys[mount]
        del keys[bisect.bisect_left(keys, key)]
        return True

    async def list(self, tenant: str, mount: str, prefix: str) -> list[str]:
        await self._enter()
        keys = self._space(tenant).keys.get(mount, [])
        children: list[str] = []
        index = bisect.bisect_left(keys, prefix)
        while index < len(keys) and keys[index].startswith(prefix):
            rest = keys[index][len(prefix) :]
            slash = rest.find("/")
            child = rest if slash < 0 else rest[: slash + 1]
            if not children or children[-1] != child:
                children.append(child)
            if slash < 0:
                index += 1
            else:
                # Skip the whole folder: every key below it sorts before prefix+child+'\uffff'.
                index = bisect.bisect_left(keys, prefix + child[:-1] + "0", index)
        return sorted(set(children))

    async def aclose(self) -> None:
        self._closed = True
