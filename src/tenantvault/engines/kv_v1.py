"""The kv engine type: KV v1 (one unversioned value per path) and the dispatch to KV v2.

A kv mount is version 1 unless its `version` option is "2" (Vault's rule: `kv` without a
version is v1; `kv-v1` / `kv-v2` fix it). KV v1 stores each value as the record `v1/<path>`
of the mount; a `ttl` key in the data gives the read its `lease_duration` (no lease), as
Vault does. `upgrade` is `sys/mounts/<path>/tune` with `options.version=2`
(`bao kv enable-versioning`): every v1 key becomes version 1 of a v2 key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._paths import SecretPath, parse_path
from tenantvault._records import decode_record, encode_record
from tenantvault._request import Operation, Response
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines._route import Call, Route
from tenantvault.engines.kv import KVEngine

__all__ = ["KVType"]

_PREFIX: Final = "v1/"
_SYSTEM_TTL_SECONDS: Final = 768 * 3600


def _key(path: SecretPath) -> str:
    return _PREFIX + path.key


class KVType:
    """The registered `kv` type: v1 handlers here, v2 in `KVEngine`."""

    type: Final = "kv"

    def __init__(self, v2: KVEngine) -> None:
        self.v2 = v2

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        version = options.get("version")
        if version not in (None, "", "1", "2"):
            # OpenBao 2.7's answer, word for word (the factory refuses the version).
            raise InvalidRequestError('nil backend of type "kv" returned from factory')
        return {k: v for k, v in options.items() if v != "" or k == "version"}

    @staticmethod
    def version(mount: Mount) -> int:
        return 2 if mount.options.get("version") == "2" else 1

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        if self.version(mount) == 2:
            return self.v2.route(operation, path, mount)
        return self._route_v1(operation, path, mount)

    async def destroy(self, mount: Mount) -> None:
        return None

    # -- KV v1 -----------------------------------------------------------------------------

    def _route_v1(self, op: Operation, rest: str, mount: Mount) -> Route:
        store = mount.storage
        if op is Operation.LIST:
            directory = parse_path(rest, allow_dir=True, allow_empty=True)
            acl = f"{mount.path}{directory.key}/" if directory.key else mount.path

            async def run_list(call: Call) -> Response:
                return await self._list(store, directory)

            return Route(acl, "list", run_list, mount=mount.name, parameters=frozenset(), pure=True)
        if op in (Operation.UPDATE, Operation.CREATE):
            if not rest:
                raise InvalidRequestError("missing path")
            if rest.endswith("/"):
                raise InvalidRequestError("cannot write to a path ending in '/'")
        if op is Operation.READ and not rest:
            raise NotFoundError()
        if op is Operation.PATCH:
            raise UnsupportedOperationError()
        path = parse_path(rest)
        acl = f"{mount.path}{path.key}"
        if op is Operation.READ:

            async def run_read(call: Call) -> Response:
                return await self._read(store, mount, path)

            return Route(acl, "read", run_read, mount=mount.name, parameters=frozenset(), pure=True)
        if op is Operation.DELETE:

            async def run_delete(call: Call) -> Response:
                await store.delete(_key(path))
                return Response.no_content()

            return Route(acl, "delete", run_delete, mount=mount.name, parameters=frozenset())
        if op in (Operation.UPDATE, Operation.CREATE):

            async def run_write(call: Call) -> Response:
                return await self._write(store, path, call.data)

            async def exists(_tenant: str) -> bool:
                return await store.read(_key(path)) is not None

            return Route(
                acl,
                "create" if op is Operation.CREATE else None,
                run_write,
                exists=exists if op is Operation.UPDATE else None,
                mount=mount.name,
                # Free-form: the keys of a KV v1 write are the secret itself (as in OpenBao,
                # which declares no fields here and so never warns).
                parameters=None,
            )
        raise UnsupportedOperationError()

    @staticmethod
    def _lease_duration(data: Mapping[str, Any], mount: Mount) -> int:
        default = int(mount.config.get("default_lease_ttl") or 0) or _SYSTEM_TTL_SECONDS
        maximum = int(mount.config.get("max_lease_ttl") or 0) or _SYSTEM_TTL_SECONDS
        ttl = default
        raw = data.get("ttl")
        if raw is not None and raw != "":
            try:
                ttl = parse_duration(raw, field="ttl")
            except InvalidRequestError:
                ttl = default  # as OpenBao: a bad ttl is stored, and ignored on read
        return min(ttl, maximum)

    async def _read(self, store: MountStorage, mount: Mount, path: SecretPath) -> Response:
        record = await store.read(_key(path))
        if record is None:
            raise NotFoundError()
        data = decode_record(record.value)
        return Response(data=data, lease_duration=self._lease_duration(data, mount))

    @staticmethod
    async def _write(store: MountStorage, path: SecretPath, data: Mapping[str, Any]) -> Response:
        if not data:
            raise InvalidRequestError("missing data fields")
        await store.write(_key(path), encode_record(dict(data)), expected_revision=None)
        return Response.no_content()

    @staticmethod
    async def _list(store: MountStorage, directory: SecretPath) -> Response:
        prefix = f"{_PREFIX}{directory.key}/" if directory.key else _PREFIX
        keys = await store.list(prefix)
        if not keys:
            raise NotFoundError()
        return Response(data={"keys": keys})

    # -- upgrade to v2 ---------------------------------------------------------------------

    @staticmethod
    async def _v1_keys(store: MountStorage) -> list[str]:
        found: list[str] = []
        pending = [""]
        while pending:
            prefix = pending.pop()
            for child in await store.list(_PREFIX + prefix):
                if child.endswith("/"):
                    pending.append(prefix + child)
                else:
                    found.append(prefix + child)
        return sorted(found)

    async def copy_to_v2(self, store: MountStorage) -> list[str]:
        """Write every v1 key as version 1 of a v2 key; the v1 records stay (see `drop_v1`).

        Run while the mount still says version 1, so a crash leaves invisible v2 records that
        the next attempt replaces, never a half-upgraded mount.
        """
        keys = await self._v1_keys(store)
        for key in keys:
            record = await store.read(_PREFIX + key)
            if record is not None:
                await self.v2.import_version(store, key, decode_record(record.value))
        return keys

    @staticmethod
    async def drop_v1(store: MountStorage, keys: list[str]) -> None:
        for key in keys:
            await store.delete(_PREFIX + key)
