"""`sys/mounts` (list, read, enable, disable, tune) and `sys/internal/ui/mounts`, over the
caller's own mount table, with Vault's shapes, statuses and messages (OpenBao 2.7)."""

from __future__ import annotations

import dataclasses
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    InternalError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from tenantvault._fields import get_bool, get_mapping, get_str
from tenantvault._request import Operation, Response
from tenantvault._router import (
    AUTH_PREFIX,
    BUILTIN_MOUNTS,
    PROTECTED_PREFIXES,
    SYSTEM_MAX_LEASE_TTL_SECONDS,
    MountEntry,
    MountTable,
    Router,
    normalize_mount_path,
)
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Route
from tenantvault.engines.kv_v1 import KVType

__all__ = ["MountsEngine"]

_UPGRADE_WARNING: Final = (
    "Upgrading mount from version 1 to version 2. This mount will be unavailable for a "
    "brief period and will resume service shortly."
)
# The token auth method, as the ACL sees it (every namespace has exactly this one).
_TOKEN_AUTH_MOUNT: Final = "auth/token/"  # noqa: S105 -- a mount path, not a secret
# Vault's listing_visibility values ("" resets to the default).
_LISTING_VISIBILITY: Final = frozenset({"", "hidden", "unauth"})
# Fields tune accepts on sys/ (Vault: only the audit HMAC lists).
_SYS_TUNABLE: Final = frozenset({"audit_non_hmac_request_keys", "audit_non_hmac_response_keys"})


# The parameters of each sys/mounts endpoint (`Route.parameters`). OpenBao's others
# (plugin_name, external_entropy_access, token_type, passthrough_request_headers, ...)
# are not supported here: they are ignored with Vault's warning.
_NONE: frozenset[str] = frozenset()
_ENABLE = frozenset({"type", "description", "config", "options", "local", "seal_wrap"})
_REMOUNT = frozenset({"from", "to"})
# Finished moves whose status `sys/remount/status/<id>` still answers (OpenBao keeps them in
# memory too); the oldest are forgotten first.
_REMOUNT_HISTORY: Final = 1024
_TUNE = _SYS_TUNABLE | {
    "default_lease_ttl",
    "max_lease_ttl",
    "description",
    "listing_visibility",
    "options",
}


def listing_visibility(value: object) -> str:
    """A `listing_visibility` value as Vault accepts it ("" is the default), or a 400."""
    if not isinstance(value, str) or value not in _LISTING_VISIBILITY:
        raise InvalidRequestError(f"invalid listing_visibility {value}")
    return value


def enable_config(config: Mapping[str, Any], *, auth: bool = False) -> dict[str, Any]:
    """The mount config fields an enable records besides the TTLs, as MountEntry fields.

    OpenBao decodes `config` strictly: `force_no_cache` must be a JSON boolean, or the whole
    request is refused with its words. An auth method never records it (OpenBao's stays false).
    """
    recorded: dict[str, Any] = {}
    if "force_no_cache" in config:
        value = config["force_no_cache"]
        if not isinstance(value, bool):
            kind = "auth" if auth else "mount"
            raise InvalidRequestError(f"unable to convert given {kind} config information")
        if not auth:
            recorded["force_no_cache"] = value
    if "listing_visibility" in config:
        recorded["listing_visibility"] = listing_visibility(config["listing_visibility"])
    return recorded


def _protected(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIXES)


@runtime_checkable
class PinnedMounts(Protocol):
    """An engine type some of whose mounts cannot move (the Vault gateway's tenant `secret/`
    and `transit/`, which the upstream serves at those paths)."""

    def refuse_remount(self, mount: Mount, target: str) -> str | None:
        """Why `mount` cannot move to `target` (a mount path ending in '/'), or None."""
        ...


@runtime_checkable
class ProvisionedMounts(Protocol):
    """An engine type whose mounts exist somewhere else too (the Vault gateway's upstream
    engines, `upstream/engines/_passthrough`): enabled, tuned and disabled there with the
    mount table entry."""

    async def provision(self, storage_tenant: str, path: str, body: Mapping[str, Any]) -> None:
        """Create the mount at `path` (`body`: Vault's enable body), before it is recorded."""
        ...

    async def unprovision(self, storage_tenant: str, path: str) -> None:
        """Undo `provision`: the table did not take the entry."""
        ...

    async def tune(self, mount: Mount, data: Mapping[str, Any]) -> None:
        """Apply a tune request there, before it is recorded."""
        ...


def _summary(entry: MountEntry) -> dict[str, Any]:
    """What Vault shows of an unauthenticated-listed mount to a caller without a token."""
    return {"type": entry.type, "description": entry.description, "options": dict(entry.options)}


def _mount_path(raw: str) -> str:
    """The mount path a request names, with its trailing '/'."""
    return normalize_mount_path(raw)


class MountsEngine:
    """The mount endpoints of `sys/`, within one tenant or the root namespace."""

    def __init__(self, router: Router, *, backend: Backend, kv: KVType) -> None:
        self._router = router
        self._backend = backend
        self._kv = kv
        # (storage tenant, incarnation, migration id) -> migration_info, newest last.
        self._moves: OrderedDict[tuple[str, str, str], dict[str, str]] = OrderedDict()

    @staticmethod
    def is_listing(path: str) -> bool:
        """`sys/internal/ui/mounts`, the one path Vault serves without a token that still
        reads a token when one is sent."""
        return path in ("sys/internal/ui/mounts", "sys/internal/ui/mounts/")

    @staticmethod
    def handles(rest: str) -> bool:
        return rest in ("mounts", "remount") or rest.startswith(
            ("mounts/", "internal/ui/mounts", "remount/status/")
        )

    async def route(
        self, op: Operation, rest: str, *, storage_tenant: str, uid: str, tenant: str | None
    ) -> Route:
        if rest == "mounts":
            if op is not Operation.READ:
                raise NotFoundError("unsupported path")
            return Route(
                "sys/mounts", "read", self._list(storage_tenant, uid), mount="sys", parameters=_NONE
            )
        if rest == "remount":
            if op not in (Operation.UPDATE, Operation.CREATE):
                raise NotFoundError("unsupported path")
            # A root-protected path in Vault: it needs sudo as well as update.
            handler = self._remount(storage_tenant, uid, tenant)
            return Route(
                "sys/remount", "update", handler, mount="sys", sudo=True, parameters=_REMOUNT
            )
        if rest.startswith("remount/status/"):
            if op is not Operation.READ:
                raise NotFoundError("unsupported path")
            migration = rest.removeprefix("remount/status/")
            return Route(
                f"sys/{rest}",
                "read",
                self._remount_status(storage_tenant, uid, migration),
                mount="sys",
                parameters=_NONE,
            )
        if rest in ("internal/ui/mounts", "internal/ui/mounts/"):
            if op is not Operation.READ:
                raise NotFoundError("unsupported path")
            return await self._ui_list(storage_tenant, uid)
        if rest.startswith("internal/ui/mounts/"):
            if op is not Operation.READ:
                raise NotFoundError("unsupported path")
            return await self._ui_mount(
                rest.removeprefix("internal/ui/mounts/"), storage_tenant, uid
            )
        raw = rest.removeprefix("mounts/")
        if raw.endswith("/tune"):  # as Vault's `mounts/(?P<path>.+?)/tune$`
            target = raw.removesuffix("/tune").rstrip("/")
            acl = f"sys/mounts/{target}/tune"
            if op is Operation.READ:
                return Route(
                    acl,
                    "read",
                    self._tune_read(target, storage_tenant, uid),
                    mount="sys",
                    parameters=_NONE,
                )
            if op in (Operation.UPDATE, Operation.CREATE):
                handler = self._tune_write(target, storage_tenant, uid)
                return Route(acl, "update", handler, mount="sys", parameters=_TUNE)
            raise NotFoundError("unsupported path")
        target = raw.rstrip("/")
        acl = f"sys/mounts/{target}"
        if op is Operation.READ:
            return Route(
                acl, "read", self._read(target, storage_tenant, uid), mount="sys", parameters=_NONE
            )
        if op in (Operation.UPDATE, Operation.CREATE):
            handler = self._enable(target, storage_tenant, uid, tenant)
            return Route(acl, "update", handler, mount="sys", parameters=_ENABLE)
        if op is Operation.DELETE:
            return Route(
                acl,
                "delete",
                self._disable(target, storage_tenant, uid),
                mount="sys",
                parameters=_NONE,
            )
        raise NotFoundError("unsupported path")

    # -- list and read ---------------------------------------------------------------------

    def _list(self, storage_tenant: str, uid: str) -> Any:
        async def handler(call: Call) -> Response:
            table = await self._router.table(storage_tenant, uid)
            data: dict[str, Any] = {"sys/": dict(BUILTIN_MOUNTS["sys/"])}
            data.update(
                {
                    path: entry.info()
                    for path, entry in sorted(table.entries.items())
                    if not entry.is_auth  # auth methods are listed by sys/auth
                }
            )
            return Response(data=data, top_level=data)

        return handler

    async def _entry(self, storage_tenant: str, uid: str, path: str, *, missing: str) -> MountEntry:
        """The table entry at `path`, or 400 with Vault's text for that endpoint (`missing`)."""
        entry = (await self._router.table(storage_tenant, uid)).entries.get(path)
        if entry is None:
            raise InvalidRequestError(missing)
        return entry

    def _read(self, target: str, storage_tenant: str, uid: str) -> Any:
        async def handler(call: Call) -> Response:
            path = target + "/"
            if path == "sys/":
                data = dict(BUILTIN_MOUNTS["sys/"])
            else:
                entry = await self._entry(
                    storage_tenant, uid, path, missing=f"No secret engine mount at {path}"
                )
                data = entry.info()
            return Response(data=data, top_level=data)

        return handler

    # -- enable and disable ----------------------------------------------------------------

    def _enable(self, target: str, storage_tenant: str, uid: str, tenant: str | None) -> Any:
        async def handler(call: Call) -> Response:
            data = call.data
            path = _mount_path(target)
            if _protected(path):
                raise InvalidRequestError(f'cannot mount "{path}"')
            kind, options = self._router.resolve_type(
                data.get("type"), get_mapping(data, "options") or {}
            )
            options = self._router.check_type(kind, options)
            config_in = get_mapping(data, "config") or {}
            default_ttl, max_ttl = self._router.parse_ttls(config_in)
            recorded = enable_config(config_in)
            entry = self._router.new_entry(
                path,
                kind,
                description=get_str(data, "description") or "",
                options=options,
                default_lease_ttl=default_ttl,
                max_lease_ttl=max_ttl,
                local=bool(get_bool(data, "local", default=False)),
                seal_wrap=bool(get_bool(data, "seal_wrap", default=False)),
            )
            entry = dataclasses.replace(entry, **recorded)
            await self._check_namespace_conflict(path, storage_tenant, tenant)

            def add(table: MountTable) -> tuple[dict[str, MountEntry], None]:
                for existing in table.entries:
                    if path.startswith(existing) or existing.startswith(path):
                        raise InvalidRequestError(f"path is already in use at {existing}")
                return {**table.entries, path: entry}, None

            engine = self._router.engine(entry)
            if not isinstance(engine, ProvisionedMounts):
                await self._router.change(storage_tenant, uid, add)
                return Response.no_content()
            # Refused here first (no upstream change for a path we would refuse anyway).
            add(await self._router.table(storage_tenant, uid))
            config = {
                name: f"{seconds}s"
                for name, seconds in (
                    ("default_lease_ttl", default_ttl),
                    ("max_lease_ttl", max_ttl),
                )
                if seconds
            }
            body = {"type": kind, "description": entry.description, "options": options}
            await engine.provision(storage_tenant, path, {**body, "config": config})
            try:
                await self._router.change(storage_tenant, uid, add)
            except BaseException:
                await engine.unprovision(storage_tenant, path)
                raise
            return Response.no_content()

        return handler

    async def _check_namespace_conflict(
        self, path: str, storage_tenant: str, tenant: str | None
    ) -> None:
        """A mount's first segment is never a tenant id: in the root namespace it would hide
        the tenant's path-prefix form (`/v1/acme/...`), in a tenant it would repeat it."""
        head = path.partition("/")[0]
        if storage_tenant == SYSTEM_TENANT:
            clash = await self._backend.has_tenant(head)
        else:
            clash = head == tenant
        if clash:
            raise InvalidRequestError(f"existing mount at {head}/")

    def _disable(self, target: str, storage_tenant: str, uid: str) -> Any:
        async def handler(call: Call) -> Response:
            path = _mount_path(target)
            if _protected(path):
                raise InvalidRequestError(f'cannot unmount "{path}"')

            def remove(table: MountTable) -> tuple[dict[str, MountEntry], bool]:
                if path not in table.entries:
                    return dict(table.entries), False
                return {p: e for p, e in table.entries.items() if p != path}, True

            table = await self._router.table(storage_tenant, uid)
            if path not in table.entries:
                return Response.no_content()  # as Vault: not telling whether it existed
            before, removed = await self._router.change(storage_tenant, uid, remove)
            mount = before.mounts.get(path)
            if removed and mount is not None:
                # The key went with the table entry: the records are unreadable already.
                await self._router.engine(before.entries[path]).destroy(mount)
                await mount.storage.clear()
            return Response.no_content()

        return handler

    # -- remount ---------------------------------------------------------------------------

    def _remount(self, storage_tenant: str, uid: str, tenant: str | None) -> Any:
        """`sys/remount`: move a mount to another path of the same table, its data with it.

        A mount's records are keyed and sealed by its uuid, not its path, so a move is one
        check-and-set change of the table; it is done when the answer comes (OpenBao queues
        it), and `sys/remount/status/<id>` reports it as "success". Policies naming the old
        path are not rewritten, as in Vault.
        """

        async def handler(call: Call) -> Response:
            source, target = call.data.get("from"), call.data.get("to")
            if not isinstance(source, str) or not isinstance(target, str):
                raise InvalidRequestError("both 'from' and 'to' path must be specified as a string")
            source, target = _mount_path(source), _mount_path(target)
            if source in ("/", "sys/", _TOKEN_AUTH_MOUNT) or source.startswith(
                ("cubbyhole/", "identity/")
            ):
                raise InvalidRequestError(f'cannot remount "{source}"')
            moving_auth = source.startswith(AUTH_PREFIX)
            if moving_auth and not target.startswith(AUTH_PREFIX):
                raise InvalidRequestError(f'cannot remount auth mount to non-auth mount "{target}"')
            # An auth mount moves within auth/ (never onto token/); anything else never into
            # a protected area.
            allowed = target.startswith(AUTH_PREFIX) and target != _TOKEN_AUTH_MOUNT
            if target == "/" or (_protected(target) and not (moving_auth and allowed)):
                raise InvalidRequestError(f"cannot remount to destination {target}")
            table = await self._router.table(storage_tenant, uid)
            entry = table.entries.get(source)
            if entry is None:
                raise InvalidRequestError(f'no matching mount at "{source}"')
            engine = self._router.engine(entry)
            mount = table.mounts.get(source)
            if isinstance(engine, PinnedMounts) and mount is not None:
                reason = engine.refuse_remount(mount, target)
                if reason is not None:
                    raise InvalidRequestError(reason)
            if not moving_auth:
                await self._check_namespace_conflict(target, storage_tenant, tenant)

            def move(current: MountTable) -> tuple[dict[str, MountEntry], None]:
                moved = current.entries.get(source)
                if moved is None or moved.uuid != entry.uuid:
                    raise InvalidRequestError(f'no matching mount at "{source}"')
                for existing in current.entries:
                    if existing == source:
                        continue
                    if target.startswith(existing) or existing.startswith(target):
                        raise InvalidRequestError(f'path already in use at "{existing}"')
                if target.startswith(source):
                    raise InvalidRequestError(f'path already in use at "{source}"')
                entries = {p: e for p, e in current.entries.items() if p != source}
                entries[target] = self._router.with_changes(moved, path=target)
                return entries, None

            await self._router.change(storage_tenant, uid, move)
            migration = str(uuid.uuid4())
            self._moves[(storage_tenant, uid, migration)] = {
                "source_mount": source,
                "target_mount": target,
                "status": "success",
            }
            while len(self._moves) > _REMOUNT_HISTORY:
                self._moves.popitem(last=False)
            data = {"migration_id": migration}
            return Response(data=data, top_level=dict(data))

        return handler

    def _remount_status(self, storage_tenant: str, uid: str, migration: str) -> Any:
        async def handler(call: Call) -> Response:
            info = self._moves.get((storage_tenant, uid, migration))
            if info is None:
                raise NotFoundError()
            return Response(data={"migration_id": migration, "migration_info": dict(info)})

        return handler

    # -- tune ------------------------------------------------------------------------------

    def _tune_read(self, target: str, storage_tenant: str, uid: str) -> Any:
        async def handler(call: Call) -> Response:
            path = target + "/"
            if path == "sys/":
                data: dict[str, Any] = {
                    "default_lease_ttl": SYSTEM_MAX_LEASE_TTL_SECONDS,
                    "description": BUILTIN_MOUNTS["sys/"]["description"],
                    "force_no_cache": False,
                    "max_lease_ttl": SYSTEM_MAX_LEASE_TTL_SECONDS,
                }
            else:
                entry = await self._entry(
                    storage_tenant, uid, path, missing=f'cannot fetch sysview for path "{path}"'
                )
                data = entry.tune_info()
            return Response(data=data, top_level=data)

        return handler

    def _tune_write(self, target: str, storage_tenant: str, uid: str) -> Any:
        async def handler(call: Call) -> Response:
            data = call.data
            path = target + "/"
            if _protected(path):
                for name in data:
                    if name not in _SYS_TUNABLE:
                        raise InvalidRequestError(f"cannot tune parameter {name} of {path}")
                return Response.no_content()
            table = await self._router.table(storage_tenant, uid)
            entry = table.entries.get(path)
            if entry is None:
                raise InvalidRequestError(f'tune of path "{path}" failed: no mount entry found')
            options = get_mapping(data, "options")
            upgrade = False
            if options is not None and "version" in options:
                upgrade = self._version_change(entry, str(options["version"]))
            changes = self.tune_changes(entry, data)
            engine = self._router.engine(entry)
            if isinstance(engine, ProvisionedMounts):
                await engine.tune(table.mounts[path], data)
            if upgrade:
                mount = table.mounts[path]
                keys = await self._kv.copy_to_v2(mount.storage)
                changes["options"] = {**changes.get("options", entry.options), "version": "2"}

            def apply(current: MountTable) -> tuple[dict[str, MountEntry], None]:
                now = current.entries.get(path)
                if now is None or now.uuid != entry.uuid:
                    raise InvalidRequestError(f'tune of path "{path}" failed: no mount entry found')
                return {**current.entries, path: self._router.with_changes(now, **changes)}, None

            await self._router.change(storage_tenant, uid, apply)
            if upgrade:
                await self._kv.drop_v1(table.mounts[path].storage, keys)
                return Response(warnings=[_UPGRADE_WARNING])
            return Response.no_content()

        return handler

    def _version_change(self, entry: MountEntry, version: str) -> bool:
        """Whether tuning `version` upgrades a kv mount from 1 to 2 (Vault's rules)."""
        if entry.engine_type != "kv":
            raise InvalidRequestError(
                f'secrets engine "{entry.type}" does not allow setting a version'
            )
        current = entry.options.get("version") or "1"
        if version in ("", current):
            return False
        if version not in ("1", "2"):
            raise InvalidRequestError(f"invalid version provided: {version}")
        if current == "2":
            raise InvalidRequestError("cannot downgrade mount from version 2")
        return True

    @staticmethod
    def tune_changes(entry: MountEntry, data: Mapping[str, Any]) -> dict[str, Any]:
        """The entry fields a tune request changes, with Vault's rules (sys/mounts and
        sys/auth tune alike)."""
        changes: dict[str, Any] = {}

        def ttl(name: str, current: int) -> int:
            value = data.get(name)
            if value is None or value == "":
                return current
            if value == "system":
                return 0
            return parse_duration(value, field=name)

        default = ttl("default_lease_ttl", entry.default_lease_ttl)
        maximum = ttl("max_lease_ttl", entry.max_lease_ttl)
        # As OpenBao: only two explicit values are compared ("system" is never too long).
        if default and maximum and maximum < default:
            raise InvalidRequestError(
                f"backend max lease TTL of {maximum} would be less than backend default "
                f"lease TTL of {default}"
            )
        changes["default_lease_ttl"] = default
        changes["max_lease_ttl"] = maximum
        description = get_str(data, "description")
        if description is not None:
            changes["description"] = description
        visibility = data.get("listing_visibility")
        if visibility is not None:
            changes["listing_visibility"] = listing_visibility(visibility)
        options = get_mapping(data, "options")
        if options is not None:
            merged = dict(entry.options)
            for name, value in options.items():
                if name == "version":
                    continue
                if value in ("", None):
                    merged.pop(str(name), None)
                else:
                    merged[str(name)] = str(value)
            changes["options"] = merged
        return changes

    # -- sys/internal/ui/mounts ------------------------------------------------------------

    async def _ui_list(self, storage_tenant: str, uid: str) -> Route:
        # A tenant with no incarnation id here is one that does not exist, named by a caller
        # without a token: it answers like a tenant that lists nothing unauthenticated, so no
        # stranger can tell which tenant names exist (`Namespaces.resolve`).
        entries = (
            {}
            if storage_tenant != SYSTEM_TENANT and not uid
            else (await self._router.table(storage_tenant, uid)).entries
        )
        # Declared, not checked here: the Core decides which of these the caller may see.
        listed = {path: entry.listing_visibility == "unauth" for path, entry in entries.items()}
        listed[_TOKEN_AUTH_MOUNT] = False

        async def handler(call: Call) -> Response:
            view = call.visible_mounts
            if view is None:
                raise InternalError()  # the Core hands a view to every route that lists mounts
            shown = {
                path: entry.info() if view.detailed else _summary(entry)
                for path, entry in sorted(entries.items())
                if path in view.paths
            }
            secret = {path: info for path, info in shown.items() if not entries[path].is_auth}
            auth = (
                {"token/": dict(BUILTIN_MOUNTS[_TOKEN_AUTH_MOUNT])}
                if _TOKEN_AUTH_MOUNT in view.paths
                else {}
            )
            # Auth mounts as Vault keys them there: without the `auth/` prefix.
            auth.update(
                {
                    path.removeprefix(AUTH_PREFIX): info
                    for path, info in shown.items()
                    if entries[path].is_auth
                }
            )
            return Response(data={"auth": auth, "secret": secret})

        return Route(
            "sys/internal/ui/mounts",
            None,
            handler,
            mount="sys",
            lists_mounts=listed,
            parameters=_NONE,
        )

    async def _ui_mount(self, raw: str, storage_tenant: str, uid: str) -> Route:
        table = await self._router.table(storage_tenant, uid)
        probe = raw if raw.endswith("/") else raw + "/"
        refusal = (
            "preflight capability check returned 403, please ensure client's policies "
            f'grant access to path "{probe}"'
        )
        found = table.match(raw)
        if found is None:
            raise PermissionDeniedError(refusal)
        entry, _ = found

        async def handler(call: Call) -> Response:
            return Response(data={**entry.info(), "path": entry.path})

        # Like Vault: answered only if the token may do something at or under the mount
        # (hasMountAccess, checked by the Core); otherwise the same 403 as a missing mount.
        return Route(
            f"sys/internal/ui/mounts/{raw}",
            None,
            handler,
            mount="sys",
            mount_access=entry.path,
            refusal=refusal,
            parameters=_NONE,
        )
