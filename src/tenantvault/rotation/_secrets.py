"""The KV side of a rotation: read the current version, write the new one, retire the old.

Every call is a `Request` through the Core as the in-process operator, in the rotation's own
tenant: the KV engine of that mount applies its own write logic (contiguous versions,
metadata, check-and-set, `max_versions`, and in gateway mode the upstream), the audit trail
records each step like any request, and nothing here touches a KV record by hand. The
tenant is always the one the rotation record was read from; the paths are tenant-relative,
so there is no way to name another tenant's mount.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantvault._exceptions import NotFoundError
from tenantvault._request import Operation, Request, Response
from tenantvault._router import MountTable, Router
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._route import Call, Parameters

__all__ = ["Current", "MountReader", "SecretAccess", "Submit"]

Submit = Callable[[Request], Awaitable[Response]]
"""`Core.handle_as_operator`: the choke point, acting for the in-process operator."""
# (operation, mount, mount-relative path) → the answer of that mount's engine.
_Send = Callable[[Operation, str, str], Awaitable[Response]]


async def _keys(send: _Send, mount: str, directory: str) -> list[str]:
    """Every secret path under `directory` of a kv v2 mount, depth first."""
    found: list[str] = []
    pending = [directory]
    while pending:
        prefix = pending.pop()
        try:
            response = await send(Operation.LIST, mount, f"metadata/{prefix}")
        except NotFoundError:
            continue
        for key in (response.data or {}).get("keys", []):
            if key.endswith("/"):
                pending.append(prefix + key)
            else:
                found.append(prefix + key)
    return sorted(found)


async def _metadata(send: _Send, mount: str, path: str) -> Mapping[str, Any] | None:
    try:
        response = await send(Operation.READ, mount, f"metadata/{path}")
    except NotFoundError:
        return None
    return response.data or {}


@dataclass(frozen=True, slots=True)
class Current:
    """The secret's current version and its data."""

    version: int
    data: Mapping[str, Any] = field(repr=False)


class SecretAccess:
    """KV v2 operations on the secrets of one tenant, through the Core."""

    __slots__ = ("_namespace", "_submit")

    def __init__(self, submit: Submit, tenant: str) -> None:
        self._submit = submit
        # The root namespace's records live in SYSTEM_TENANT; a request names no namespace.
        self._namespace = None if tenant == SYSTEM_TENANT else tenant

    def __repr__(self) -> str:
        return f"SecretAccess(namespace={self._namespace!r})"

    async def _call(
        self, operation: Operation, path: str, data: Mapping[str, Any] | None = None
    ) -> Response:
        return await self._submit(Request(operation, path, data=data, namespace=self._namespace))

    async def current(self, mount: str, path: str) -> Current | None:
        """The current version (None if the secret has none readable)."""
        try:
            response = await self._call(Operation.READ, f"{mount}data/{path}")
        except NotFoundError:
            return None
        body = response.data or {}
        data = body.get("data")
        metadata = body.get("metadata") or {}
        if not isinstance(data, Mapping):
            return None
        return Current(int(metadata.get("version", 0)), dict(data))

    async def write(self, mount: str, path: str, data: Mapping[str, Any], *, cas: int) -> int:
        """Write `data` as the version after `cas`; the new version number."""
        response = await self._call(
            Operation.UPDATE,
            f"{mount}data/{path}",
            {"data": dict(data), "options": {"cas": cas}},
        )
        return int((response.data or {})["version"])

    async def retire(self, mount: str, path: str, version: int) -> None:
        """Soft-delete `version` (its grace is over): no longer readable, still undeletable."""
        await self._call(Operation.UPDATE, f"{mount}delete/{path}", {"versions": [version]})

    async def _send(self, operation: Operation, mount: str, rest: str) -> Response:
        return await self._call(operation, mount + rest)

    async def metadata(self, mount: str, path: str) -> Mapping[str, Any] | None:
        return await _metadata(self._send, mount, path)

    async def keys(self, mount: str, directory: str = "") -> list[str]:
        """Every secret path under `directory` of a kv v2 mount, depth first."""
        return await _keys(self._send, mount, directory)

    async def call(
        self, operation: Operation, path: str, data: Mapping[str, Any] | None
    ) -> Response:
        """Any request in this tenant (the database rotator's `rotate-role`, `static-creds`)."""
        return await self._call(operation, path, data)


class MountReader:
    """Listings and metadata of the kv v2 mounts of the tenant of one request, read from
    each mount's own engine without a request of their own: `sys/rotation/expiring` reads
    every secret's metadata, and as requests through the Core each read would be two audit
    entries, the listing thousands. The request that asked was authenticated, authorized
    and audited once (its entry records the listing); these reads are part of serving it.

    Isolation is unchanged: the mounts are those of `table`, the table of the call's own
    tenant incarnation (the Core resolved it), each engine reads through its mount's
    storage (sealed under that mount's key in that tenant's space), and the engine's own
    route is the only thing called, with data it declares (none). No path here can name
    another tenant's mount, nor a mount that is not kv v2 (the caller passes those)."""

    __slots__ = ("_call", "_router", "_table")

    def __init__(self, router: Router, table: MountTable, call: Call) -> None:
        if table.owner != (call.tenant, call.tenant_uid):
            raise ValueError("the mount table is not the call's tenant's")
        self._router = router
        self._table = table
        self._call = call

    def __repr__(self) -> str:
        return f"MountReader(tenant={self._call.tenant!r})"

    async def _send(self, operation: Operation, mount: str, rest: str) -> Response:
        entry, found = self._table.entries[mount], self._table.mounts[mount]
        route = self._router.engine(entry).route(operation, rest, found)
        data: Mapping[str, Any] = {}
        if route.parameters is not None:
            data = Parameters(data, route.parameters)
        call = Call(
            tenant=self._call.tenant,
            data=data,
            request_id=self._call.request_id,
            tenant_uid=self._call.tenant_uid,
        )
        return await route.handler(call)

    async def metadata(self, mount: str, path: str) -> Mapping[str, Any] | None:
        return await _metadata(self._send, mount, path)

    async def keys(self, mount: str, directory: str = "") -> list[str]:
        """Every secret path under `directory` of a kv v2 mount, depth first."""
        return await _keys(self._send, mount, directory)
