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
from tenantvault.backends._protocol import SYSTEM_TENANT

__all__ = ["Current", "SecretAccess", "Submit"]

Submit = Callable[[Request], Awaitable[Response]]
"""`Core.handle_as_operator`: the choke point, acting for the in-process operator."""


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

    async def metadata(self, mount: str, path: str) -> Mapping[str, Any] | None:
        try:
            response = await self._call(Operation.READ, f"{mount}metadata/{path}")
        except NotFoundError:
            return None
        return response.data or {}

    async def keys(self, mount: str, directory: str = "") -> list[str]:
        """Every secret path under `directory` of a kv v2 mount, depth first."""
        found: list[str] = []
        pending = [directory]
        while pending:
            prefix = pending.pop()
            try:
                response = await self._call(Operation.LIST, f"{mount}metadata/{prefix}")
            except NotFoundError:
                continue
            for key in (response.data or {}).get("keys", []):
                if key.endswith("/"):
                    pending.append(prefix + key)
                else:
                    found.append(prefix + key)
        return sorted(found)

    async def call(
        self, operation: Operation, path: str, data: Mapping[str, Any] | None
    ) -> Response:
        """Any request in this tenant (the database rotator's `rotate-role`, `static-creds`)."""
        return await self._call(operation, path, data)
