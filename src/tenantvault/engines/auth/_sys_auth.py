"""`sys/auth` (list, read, enable, disable, tune) over the caller's own mount table, with
Vault's shapes, statuses and messages (OpenBao 2.7). Auth mounts are rows `auth/<path>/` of
the same table as secrets engines; `token/` is built in and can be neither added nor removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._fields import get_bool, get_mapping, get_str
from tenantvault._request import Operation, Response
from tenantvault._router import (
    AUTH_PREFIX,
    BUILTIN_MOUNTS,
    SYSTEM_MAX_LEASE_TTL_SECONDS,
    MountEntry,
    MountTable,
    Router,
    normalize_mount_path,
)
from tenantvault._tokens import TokenStore
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._route import Call, Route
from tenantvault.engines.sys_mounts import MountsEngine, enable_config

__all__ = ["AuthMountsEngine"]

Handler = Callable[[Call], Awaitable[Response]]

_MOUNTS_AUTH: Final = "mounts/auth/"
_TOKEN: Final = "token/"  # noqa: S105 -- the token auth mount's path, not a secret
_TOKEN_INFO: Final = BUILTIN_MOUNTS[AUTH_PREFIX + _TOKEN]
# Vault's auth-mount token types (`sys/auth/<path>/tune`, `config.token_type`).
_TOKEN_TYPES: Final = frozenset({"default-service", "default-batch", "service", "batch"})
_NONE: frozenset[str] = frozenset()
_ENABLE: Final = frozenset({"type", "description", "config", "options", "local", "seal_wrap"})
_TUNE: Final = frozenset(
    {
        "default_lease_ttl",
        "max_lease_ttl",
        "description",
        "listing_visibility",
        "options",
        "token_type",
        "audit_non_hmac_request_keys",
        "audit_non_hmac_response_keys",
    }
)


def _token_type(value: object) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or value not in _TOKEN_TYPES:
        raise InvalidRequestError("invalid value for 'token_type'")
    return value


class AuthMountsEngine:
    """The auth-method endpoints of `sys/`, within one tenant or the root namespace."""

    def __init__(self, router: Router, *, tokens: TokenStore) -> None:
        self._router = router
        self._tokens = tokens

    @staticmethod
    def handles(rest: str) -> bool:
        """`sys/auth...`, and `sys/mounts/auth/<path>/tune` (what `bao auth tune` calls)."""
        if rest.startswith(_MOUNTS_AUTH) and rest.endswith("/tune"):
            return True
        return rest == "auth" or rest.startswith("auth/")

    async def route(self, op: Operation, rest: str, *, storage_tenant: str, uid: str) -> Route:
        if rest.startswith(_MOUNTS_AUTH):
            # The same tune, under the ACL path it was asked at (no sudo: `sys/mounts/*`
            # is not one of Vault's root paths).
            raw = rest.removeprefix(_MOUNTS_AUTH)
            return self._tune_route(op, raw, storage_tenant, uid, acl_prefix="sys/mounts/auth")
        if rest in ("auth", "auth/"):
            if op is not Operation.READ:
                raise NotFoundError("unsupported path")
            return Route(
                "sys/auth", "read", self._list(storage_tenant, uid), mount="sys", parameters=_NONE
            )
        raw = rest.removeprefix("auth/")
        # Vault's `auth/*` is a root path: every endpoint below sys/auth/ needs sudo.
        if raw.endswith("/tune"):
            return self._tune_route(op, raw, storage_tenant, uid, acl_prefix="sys/auth")
        target = raw.rstrip("/")
        acl = f"sys/auth/{target}"
        table: dict[Operation, tuple[str, Handler, frozenset[str]]] = {
            Operation.READ: ("read", self._read(target, storage_tenant, uid), _NONE),
            Operation.UPDATE: ("update", self._enable(target, storage_tenant, uid), _ENABLE),
            Operation.CREATE: ("update", self._enable(target, storage_tenant, uid), _ENABLE),
            Operation.DELETE: ("delete", self._disable(target, storage_tenant, uid), _NONE),
        }
        found = table.get(op)
        if found is None:
            raise NotFoundError("unsupported path")
        capability, handler, parameters = found
        return Route(acl, capability, handler, mount="sys", sudo=True, parameters=parameters)

    def _tune_route(
        self, op: Operation, raw: str, storage_tenant: str, uid: str, *, acl_prefix: str
    ) -> Route:
        target = raw.removesuffix("/tune").rstrip("/")
        acl = f"{acl_prefix}/{target}/tune"
        sudo = acl_prefix == "sys/auth"
        if op is Operation.READ:
            handler = self._tune_read(target, storage_tenant, uid)
            return Route(acl, "read", handler, mount="sys", sudo=sudo, parameters=_NONE)
        if op in (Operation.UPDATE, Operation.CREATE):
            handler = self._tune_write(target, storage_tenant, uid)
            return Route(acl, "update", handler, mount="sys", sudo=sudo, parameters=_TUNE)
        raise NotFoundError("unsupported path")

    # -- list and read ---------------------------------------------------------------------

    def _list(self, storage_tenant: str, uid: str) -> Handler:
        async def handler(call: Call) -> Response:
            table = await self._router.table(storage_tenant, uid)
            data: dict[str, Any] = {_TOKEN: dict(_TOKEN_INFO)}
            data.update(
                {
                    path.removeprefix(AUTH_PREFIX): entry.info()
                    for path, entry in sorted(table.entries.items())
                    if entry.is_auth
                }
            )
            return Response(data=data, top_level=data)

        return handler

    async def _entry(self, storage_tenant: str, uid: str, path: str) -> MountEntry | None:
        return (await self._router.table(storage_tenant, uid)).entries.get(AUTH_PREFIX + path)

    def _read(self, target: str, storage_tenant: str, uid: str) -> Handler:
        async def handler(call: Call) -> Response:
            path = normalize_mount_path(target)
            if path == _TOKEN:
                data = dict(_TOKEN_INFO)
            else:
                entry = await self._entry(storage_tenant, uid, path)
                if entry is None:
                    raise InvalidRequestError(f"No auth engine at {path}")
                data = entry.info()
            return Response(data=data, top_level=data)

        return handler

    # -- enable and disable ----------------------------------------------------------------

    def _enable(self, target: str, storage_tenant: str, uid: str) -> Handler:
        async def handler(call: Call) -> Response:
            data = call.data
            path = normalize_mount_path(target)
            full = AUTH_PREFIX + path

            def conflict(table: MountTable) -> None:
                # As Vault: the path is checked before the type (also against token/).
                for existing in (AUTH_PREFIX + _TOKEN, *table.entries):
                    if existing.startswith(AUTH_PREFIX) and (
                        full.startswith(existing) or existing.startswith(full)
                    ):
                        shown = existing.removeprefix(AUTH_PREFIX)
                        raise InvalidRequestError(f"path is already in use at {shown}")

            conflict(await self._router.table(storage_tenant, uid))
            kind, options = self._router.resolve_type(
                data.get("type"), get_mapping(data, "options") or {}
            )
            options = self._router.check_auth_type(kind, options)
            config = get_mapping(data, "config") or {}
            default_ttl, max_ttl = self._router.parse_ttls(config)
            recorded = enable_config(config, auth=True)
            entry = self._router.new_entry(
                full,
                kind,
                description=get_str(data, "description") or "",
                options=options,
                default_lease_ttl=default_ttl,
                max_lease_ttl=max_ttl,
                local=bool(get_bool(data, "local", default=False)),
                seal_wrap=bool(get_bool(data, "seal_wrap", default=False)),
                token_type=_token_type(config.get("token_type")),
            )
            entry = dataclasses.replace(entry, **recorded)

            def add(table: MountTable) -> tuple[dict[str, MountEntry], None]:
                conflict(table)
                return {**table.entries, full: entry}, None

            await self._router.change(storage_tenant, uid, add)
            return Response.no_content()

        return handler

    def _disable(self, target: str, storage_tenant: str, uid: str) -> Handler:
        async def handler(call: Call) -> Response:
            path = normalize_mount_path(target)
            if path == _TOKEN:
                raise InvalidRequestError("token credential backend cannot be disabled")
            full = AUTH_PREFIX + path
            entry = await self._entry(storage_tenant, uid, path)
            if entry is None:
                return Response.no_content()  # as Vault: not telling whether it existed
            tenant = None if storage_tenant == SYSTEM_TENANT else storage_tenant
            # Its tokens go first and again after the entry (a login racing the disable may
            # have minted one in between): no token outlives the mount that issued it.
            await self._tokens.revoke_issued(tenant, uid, entry.uuid)

            def remove(table: MountTable) -> tuple[dict[str, MountEntry], bool]:
                current = table.entries.get(full)
                if current is None or current.uuid != entry.uuid:
                    return dict(table.entries), False
                return {p: e for p, e in table.entries.items() if p != full}, True

            before, removed = await self._router.change(storage_tenant, uid, remove)
            await self._tokens.revoke_issued(tenant, uid, entry.uuid)
            mount = before.mounts.get(full)
            if removed and mount is not None:
                # The key went with the table entry: the records are unreadable already.
                await self._router.engine(entry).destroy(mount)
                await mount.storage.clear()
            return Response.no_content()

        return handler

    # -- tune ------------------------------------------------------------------------------

    def _tune_read(self, target: str, storage_tenant: str, uid: str) -> Handler:
        async def handler(call: Call) -> Response:
            path = normalize_mount_path(target)
            if path == _TOKEN:
                data: dict[str, Any] = {
                    "default_lease_ttl": SYSTEM_MAX_LEASE_TTL_SECONDS,
                    "description": _TOKEN_INFO["description"],
                    "force_no_cache": False,
                    "max_lease_ttl": SYSTEM_MAX_LEASE_TTL_SECONDS,
                    "token_type": _TOKEN_INFO["config"]["token_type"],
                }
            else:
                entry = await self._entry(storage_tenant, uid, path)
                if entry is None:
                    raise InvalidRequestError(
                        f'cannot fetch sysview for path "{AUTH_PREFIX}{path}"'
                    )
                data = entry.tune_info()
            return Response(data=data, top_level=data)

        return handler

    def _tune_write(self, target: str, storage_tenant: str, uid: str) -> Handler:
        async def handler(call: Call) -> Response:
            data: Mapping[str, Any] = call.data
            path = normalize_mount_path(target)
            full = AUTH_PREFIX + path
            if path == _TOKEN:
                # The built-in token method is in no table here: nothing of it is tunable.
                raise InvalidRequestError(f"cannot tune {full}: the token method is built in")
            entry = await self._entry(storage_tenant, uid, path)
            if entry is None:
                raise InvalidRequestError(f'tune of path "{full}" failed: no mount entry found')
            changes = MountsEngine.tune_changes(entry, data)
            if "token_type" in data:
                changes["token_type"] = _token_type(data.get("token_type"))

            def apply(current: MountTable) -> tuple[dict[str, MountEntry], None]:
                now = current.entries.get(full)
                if now is None or now.uuid != entry.uuid:
                    raise InvalidRequestError(f'tune of path "{full}" failed: no mount entry found')
                return {**current.entries, full: self._router.with_changes(now, **changes)}, None

            await self._router.change(storage_tenant, uid, apply)
            return Response.no_content()

        return handler
