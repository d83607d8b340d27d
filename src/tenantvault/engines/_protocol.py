"""The `Engine` Protocol, the mount an engine serves and the storage view it gets for it.

An engine type (kv, transit, …) registers once (`tenantvault._router.ENGINES`); a mount is a
row of a tenant's mount table. For each request the Core finds the mount by longest prefix and
calls `engine.route(operation, rest, mount)` with the mount-relative path. The engine reaches
storage only through `mount.storage`, a `MountStorage` bound to one (tenant, mount): it has no
tenant or mount argument, so a handler cannot address another mount's or tenant's records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenantvault._request import Operation
from tenantvault.backends._protocol import Backend, Record
from tenantvault.crypto import AeadKey, encode_aad
from tenantvault.engines._route import Route

__all__ = ["Engine", "Mount", "MountStorage"]

_RECORD_LABEL = "tenantvault:mount-record"


class MountStorage:
    """The records of one mount: the Backend's verbs with tenant and mount fixed.

    With a mount key (every mount created since mount tables exist) each value is sealed with
    AES-256-GCM under that key, the associated data binding the tenant incarnation, the mount
    uuid and the record key; the key lives only in the mount table, so deleting the table
    entry makes the records unreadable, also in a backup. Mounts migrated from the fixed
    layout (`secret`, `transit` of an older store) have no key and store values as before.
    """

    __slots__ = ("_aad_prefix", "_backend", "_key", "_storage_mount", "tenant")

    def __init__(
        self,
        backend: Backend,
        *,
        tenant: str,
        storage_mount: str,
        key: AeadKey | None,
        binding: tuple[str, str],
    ) -> None:
        self._backend = backend
        self.tenant = tenant
        self._storage_mount = storage_mount
        self._key = key
        self._aad_prefix = binding

    @property
    def identity(self) -> tuple[str, str]:
        """(tenant, storage mount): unique per mount incarnation, for engines' caches."""
        return (self.tenant, self._storage_mount)

    def _aad(self, key: str) -> bytes:
        incarnation, mount_uuid = self._aad_prefix
        return encode_aad(_RECORD_LABEL, incarnation, mount_uuid, key)

    async def read(self, key: str) -> Record | None:
        record = await self._backend.read(self.tenant, self._storage_mount, key)
        return None if record is None else self._open(key, record)

    async def read_sealed(self, key: str) -> Record | None:
        """The record as the backend holds it, still sealed under the mount key: for a cache
        of parsed records that opens (`open_sealed`) only bytes it has not seen before."""
        return await self._backend.read(self.tenant, self._storage_mount, key)

    def open_sealed(self, key: str, record: Record) -> Record:
        """The plaintext of a `read_sealed` record of `key` (`IntegrityError` if it fails)."""
        return self._open(key, record)

    def _open(self, key: str, record: Record) -> Record:
        if self._key is None:
            return record
        return Record(self._key.open(record.value, self._aad(key)), record.revision)

    def _seal(self, key: str, value: bytes) -> bytes:
        return value if self._key is None else self._key.seal(value, self._aad(key))

    async def write(self, key: str, value: bytes, *, expected_revision: int | None) -> int:
        return await self._backend.write(
            self.tenant,
            self._storage_mount,
            key,
            self._seal(key, value),
            expected_revision=expected_revision,
        )

    @property
    def writes_all_or_none(self) -> bool:
        """Whether `write_all` writes all or none: the backend has `write_all` (the embedded
        store: one transaction)."""
        return getattr(self._backend, "write_all", None) is not None

    async def write_all(self, writes: list[tuple[str, bytes, int | None]]) -> list[int]:
        """Each (key, value, expected_revision) of `writes`, in order; the new revisions.

        All or none if `writes_all_or_none`; elsewhere one `write` after another, stopping
        at the first failure (the writes before it stay).
        """
        sealed = [(key, self._seal(key, value), expected) for key, value, expected in writes]
        write_all = getattr(self._backend, "write_all", None)
        if write_all is not None:
            revisions: list[int] = await write_all(self.tenant, self._storage_mount, sealed)
            return revisions
        return [
            await self._backend.write(
                self.tenant, self._storage_mount, key, value, expected_revision=expected
            )
            for key, value, expected in sealed
        ]

    async def delete(self, key: str, *, expected_revision: int | None = None) -> bool:
        return await self._backend.delete(
            self.tenant, self._storage_mount, key, expected_revision=expected_revision
        )

    async def list(self, prefix: str) -> list[str]:
        return await self._backend.list(self.tenant, self._storage_mount, prefix)

    async def clear(self) -> None:
        """Delete every record of the mount (disable; its key is already gone)."""
        pending = [""]
        while pending:
            prefix = pending.pop()
            for child in await self.list(prefix):
                if child.endswith("/"):
                    pending.append(prefix + child)
                # A folder can also be a record of its own name without the '/'.
                await self.delete(prefix + child.rstrip("/"))

    def __repr__(self) -> str:
        return f"MountStorage(tenant={self.tenant!r}, mount={self._storage_mount!r})"


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount as its engine sees it: where it is, its settings and its storage."""

    path: str  # with the trailing '/', e.g. 'secret/' or 'team/kv/'
    type: str
    uuid: str
    options: Mapping[str, str]
    config: Mapping[str, Any]
    storage: MountStorage = field(repr=False)

    @property
    def name(self) -> str:
        """The mount path without its trailing '/', as audit entries name it."""
        return self.path.rstrip("/")


# The mounts of an engine type in one tenant, None if there is no such tenant (any more):
# `Router.mounts_in`, for background passes over a `TenantSet`'s members.
MountSource = Callable[[str, str], Awaitable[list[Mount] | None]]


class Engine(Protocol):
    """An engine type: registered once, serving every mount of its type."""

    @property
    def type(self) -> str:
        """The `type` of `sys/mounts` ('kv', 'transit')."""
        ...

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        """The mount options this type accepts, normalized; `InvalidRequestError` otherwise."""
        ...

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        """Resolve the mount-relative `path` ('' for the mount root) for `operation`."""
        ...

    async def destroy(self, mount: Mount) -> None:
        """Forget whatever the engine holds for `mount` beyond its records (caches)."""
        ...
