"""Mount tables: one per tenant (and one for the root namespace), longest-prefix routing.

A tenant's mount table is one record, `sys/mounts` of the tenant (the root namespace's lives
in `SYSTEM_TENANT`), changed only with check-and-set. Each entry is a mount: path, type,
accessor, uuid, description, options, config, and the mount's own 256-bit key, which seals
the mount's records (`MountStorage`). The record is itself sealed under the tenant's data key
on the embedded store, so removing an entry leaves nothing that could open its records.

A tenant created before mount tables existed has no record: it reads as the fixed layout of
that time — `secret/` (kv v2) over the records of storage mount `secret` and `transit/` over
`transit`, without a mount key — until its table is first changed, which persists it.

Tables are cached per process with the record's revision: each request re-reads the record
(one read) and reuses the parsed table while the revision is unchanged, so every instance
sees a disable at once. The Core keeps the kv v2 routes it resolved against a table revision
the same way (`RouteMemo`): a newer revision resolves them again.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

from tenantvault import _b64
from tenantvault._cas import retry_on_conflict
from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    ConflictError,
    IntegrityError,
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
)
from tenantvault._paths import parse_path
from tenantvault._records import decode_record, encode_record
from tenantvault._request import Operation
from tenantvault._tenant_sets import TenantSet
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend, revision_peek
from tenantvault.crypto import AeadKey, random_key
from tenantvault.engines._protocol import Engine, Mount, MountStorage
from tenantvault.engines._route import Route

__all__ = [
    "AUTH_PREFIX",
    "BUILTIN_MOUNTS",
    "DEFAULT_AUTH_TOKEN_TYPE",
    "PROTECTED_PREFIXES",
    "SYSTEM_MAX_LEASE_TTL_SECONDS",
    "MountEntry",
    "MountTable",
    "RouteMemo",
    "Router",
]

_TABLE_MOUNT: Final = "sys"
# Auth mounts are rows of the same table, at `auth/<path>/` (as Vault's router keys them).
AUTH_PREFIX: Final = "auth/"
DEFAULT_AUTH_TOKEN_TYPE: Final = "default-service"  # noqa: S105 -- a token type, not a secret
_TABLE_KEY: Final = "mounts"
# Vault's protected prefixes: never mountable, unmountable or (mostly) tunable. sys/ and
# auth/ are served by the Core itself; the other three are reserved as in Vault.
PROTECTED_PREFIXES: Final = ("sys/", "auth/", "audit/", "cubbyhole/", "identity/")
_SINGLETON_TYPES: Final = frozenset({"cubbyhole", "system", "token", "identity"})
# Vault's type aliases: the stored type stays as given (OpenBao shows 'generic'), the
# engine is kv, and kv-v1 / kv-v2 fix the version option.
_ALIASES: Final = {"kv-v1": ("kv", "1"), "kv-v2": ("kv", "2")}
_ENGINE_OF: Final = {"generic": "kv"}
# Vault's system default and maximum lease TTL (768h), what "0 = system" means.
SYSTEM_MAX_LEASE_TTL_SECONDS: Final = 768 * 3600
_ATTEMPTS: Final = 64
_LEGACY_NAMESPACE: Final = uuid.UUID("6f1c2a4e-8f0b-4c55-9a57-7e6a1d0c3b21")
# The mounts a namespace starts with, which are also the fixed layout of a store written
# before mount tables: (path, type, description, options). The one list of them.
_DEFAULT_MOUNTS: Final[tuple[tuple[str, str, str, Mapping[str, str]], ...]] = (
    ("secret/", "kv", "key/value secret storage", {"version": "2"}),
    ("transit/", "transit", "", {}),
)
# Engine types every tenant starts with: a pass over one of them visits every tenant. Every
# other type is a `TenantSet` of the tenants that mounted it (`mounts_of_type`).
_DEFAULT_TYPES: Final = frozenset(row[1] for row in _DEFAULT_MOUNTS)


def _accessor(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(4)}"


def _mount_key(stored: str | None) -> bytes | None:
    """The mount key a table record holds; `IntegrityError` unless `_b64.encode` wrote it."""
    if not stored:
        return None
    try:
        return _b64.decode(stored)
    except ValueError:
        # A lenient decoder would drop junk and hand back a different key: a table that was
        # edited behind our back must fail closed, like any other record that is not ours.
        raise IntegrityError("stored mount table is not valid") from None


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One row of a mount table."""

    path: str
    type: str
    uuid: str
    accessor: str
    storage: str
    key: bytes | None = field(repr=False)
    description: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    default_lease_ttl: int = 0
    max_lease_ttl: int = 0
    force_no_cache: bool = False
    local: bool = False
    seal_wrap: bool = False
    # "" (default), "hidden" or "unauth" (listed in sys/internal/ui/mounts without a token).
    listing_visibility: str = ""
    # Auth mounts only (`auth/<path>/`): the mount's token type as `sys/auth` tunes it.
    token_type: str = ""

    @property
    def engine_type(self) -> str:
        return _ENGINE_OF.get(self.type, self.type)

    @property
    def is_auth(self) -> bool:
        """An auth method's mount (`auth/<path>/`, `sys/auth`), not a secrets engine's."""
        return self.path.startswith(AUTH_PREFIX)

    def to_record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "uuid": self.uuid,
            "accessor": self.accessor,
            "storage": self.storage,
            "key": _b64.encode(self.key) if self.key is not None else None,
            "description": self.description,
            "options": dict(self.options),
            "default_lease_ttl": self.default_lease_ttl,
            "max_lease_ttl": self.max_lease_ttl,
            "force_no_cache": self.force_no_cache,
            "local": self.local,
            "seal_wrap": self.seal_wrap,
            "listing_visibility": self.listing_visibility,
            "token_type": self.token_type,
        }

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> MountEntry:
        key = raw.get("key")
        return cls(
            path=raw["path"],
            type=raw["type"],
            uuid=raw["uuid"],
            accessor=raw["accessor"],
            storage=raw["storage"],
            key=_mount_key(key),
            description=raw.get("description", ""),
            options=dict(raw.get("options") or {}),
            default_lease_ttl=int(raw.get("default_lease_ttl", 0)),
            max_lease_ttl=int(raw.get("max_lease_ttl", 0)),
            force_no_cache=bool(raw.get("force_no_cache", False)),
            local=bool(raw.get("local", False)),
            seal_wrap=bool(raw.get("seal_wrap", False)),
            listing_visibility=str(raw.get("listing_visibility", "")),
            token_type=str(raw.get("token_type", "")),
        )

    def info(self) -> dict[str, Any]:
        """Vault's mountInfo (`sys/mounts`, `sys/internal/ui/mounts/<path>`)."""
        config: dict[str, Any] = {
            "default_lease_ttl": self.default_lease_ttl,
            "force_no_cache": self.force_no_cache,
            "max_lease_ttl": self.max_lease_ttl,
        }
        if self.listing_visibility:
            config["listing_visibility"] = self.listing_visibility
        if self.is_auth:
            config["token_type"] = self.token_type or DEFAULT_AUTH_TOKEN_TYPE
        return {
            "accessor": self.accessor,
            "config": config,
            "deprecation_status": "supported",
            "description": self.description,
            "external_entropy_access": False,
            "local": self.local,
            "options": dict(self.options),
            "plugin_version": "",
            "running_plugin_version": "v0.0.0+builtin",
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.type,
            "uuid": self.uuid,
        }

    def tune_info(self) -> dict[str, Any]:
        """`GET sys/mounts/<path>/tune`: effective TTLs, `options` only when set."""
        data: dict[str, Any] = {
            "default_lease_ttl": self.default_lease_ttl or SYSTEM_MAX_LEASE_TTL_SECONDS,
            "description": self.description,
            "force_no_cache": self.force_no_cache,
            "max_lease_ttl": self.max_lease_ttl or SYSTEM_MAX_LEASE_TTL_SECONDS,
        }
        if self.options:
            data["options"] = dict(self.options)
        if self.listing_visibility:
            data["listing_visibility"] = self.listing_visibility
        if self.is_auth:
            data["token_type"] = self.token_type or DEFAULT_AUTH_TOKEN_TYPE
        return data


def _builtin_info(
    type_: str, *, accessor: str, description: str, seal_wrap: bool, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Vault's mountInfo of a built-in mount: fixed, in no mount table, never tuned here."""
    return {
        "accessor": accessor,
        "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0, **config},
        "description": description,
        "external_entropy_access": False,
        "local": False,
        "options": None,
        "plugin_version": "",
        "running_plugin_version": "v0.0.0+builtin",
        "running_sha256": "",
        "seal_wrap": seal_wrap,
        "type": type_,
        "uuid": "",
    }


# The mounts every namespace has outside its mount table, by path: the one list of them.
BUILTIN_MOUNTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "sys/": _builtin_info(
        "system",
        accessor="system_00000000",
        description="system endpoints used for control, policy and debugging",
        seal_wrap=True,
        config={"passthrough_request_headers": ["Accept"]},
    ),
    "auth/token/": _builtin_info(
        "token",
        accessor="auth_token_00000000",
        description="token based credentials",
        seal_wrap=False,
        config={"token_type": "default-service"},
    ),
}


@dataclass(frozen=True, slots=True)
class MountTable:
    """A tenant's mounts at one revision of its record (0: no record yet)."""

    entries: Mapping[str, MountEntry]
    revision: int
    mounts: Mapping[str, Mount] = field(default_factory=dict, repr=False)
    # (storage tenant, incarnation) the table belongs to.
    owner: tuple[str, str] = ("", "")
    # The first segments of its mount paths ('secret', 'auth'): asked on every request that
    # may name a namespace in its path (`_namespaces`), so computed once per table.
    heads: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        heads = frozenset(path.partition("/")[0] for path in self.entries)
        object.__setattr__(self, "heads", heads)  # frozen: set once, here

    def match(self, path: str) -> tuple[MountEntry, str] | None:
        """The mount serving `path` by longest whole-segment prefix, and the rest of the path.

        As Vault: a path without a trailing '/' that names a mount (`secret`) reaches it.
        """
        probe = path if path.endswith("/") else path + "/"
        best: MountEntry | None = None
        for mount_path, entry in self.entries.items():
            if probe.startswith(mount_path) and (best is None or len(mount_path) > len(best.path)):
                best = entry
        if best is None:
            return None
        return best, path[len(best.path) :] if len(path) >= len(best.path) else ""

    def has_first_segment(self, segment: str) -> bool:
        return segment in self.heads


_MEMO_SIZE: Final = 4096


class RouteMemo:
    """Routes resolved against one revision of a mount table, reused while it is current.

    Resolving a kv v2 route (parsing and validating its path, building its handler, the read
    cache's wrapper) is the same work for every request to the same path of the same table
    revision; this keeps the result, per tenant incarnation for its newest table revision
    only. A table record's revision is never reused (the Backend contract), so a changed
    table (a mount disabled, moved or tuned) misses at once and drops the older routes (and
    the mount keys they hold); a new incarnation of a tenant never finds an old one's. Only
    routes that are a function of (table, operation, path) alone belong here (the Core
    decides which); authorization still runs on every request. Bounded: emptied when full.
    """

    __slots__ = ("_count", "_size", "_tables")

    def __init__(self, size: int = _MEMO_SIZE) -> None:
        # (storage tenant, incarnation) -> (table revision, routes by (operation, path)).
        self._tables: dict[tuple[str, str], tuple[int, dict[tuple[Operation, str], Route]]] = {}
        self._count = 0
        self._size = size

    def __len__(self) -> int:
        return self._count

    def get(self, table: MountTable, operation: Operation, path: str) -> Route | None:
        """The route kept for `path` of `table`, if any."""
        held = self._tables.get(table.owner)
        if held is None:
            return None
        if held[0] != table.revision:
            if held[0] < table.revision:
                self._drop(table.owner)  # resolved against a table that is gone
            return None
        return held[1].get((operation, path))

    def put(self, table: MountTable, operation: Operation, path: str, route: Route) -> None:
        """Keep `route` for `path` of `table` (unless a newer table of it is known)."""
        held = self._tables.get(table.owner)
        if held is not None and held[0] > table.revision:
            return  # a request that raced a mount change: the newer table's routes stay
        if self._count >= self._size:
            self._tables.clear()
            self._count = 0
            held = None
        if held is None or held[0] < table.revision:
            if held is not None:
                self._drop(table.owner)
            held = self._tables[table.owner] = (table.revision, {})
        routes = held[1]
        if (operation, path) not in routes:
            self._count += 1
        routes[(operation, path)] = route

    def _drop(self, owner: tuple[str, str]) -> None:
        held = self._tables.pop(owner, None)
        if held is not None:
            self._count -= len(held[1])

    def forget_tenant(self, tenant: str) -> None:
        """Drop every route of `tenant` (and the mount keys its routes hold)."""
        for owner in [owner for owner in self._tables if owner[0] == tenant]:
            self._drop(owner)

    async def tenant_deleted(self, tenant: str) -> None:
        """A tenant-delete step (`TenantRegistry.on_delete`): nothing of it stays here."""
        self.forget_tenant(tenant)


def normalize_mount_path(raw: str) -> str:
    """'team/kv' or 'team/kv/' → 'team/kv/'; refuses anything outside the path grammar."""
    body = raw[:-1] if raw.endswith("/") else raw
    if not body:
        raise InvalidRequestError("missing mount path")
    try:
        parse_path(body)
    except InvalidPathError:
        raise InvalidRequestError("invalid mount path") from None
    return body + "/"


class FallbackEngine(Engine, Protocol):
    """The engine of the types no registered engine has (gateway mode: the upstream's)."""

    def accepts(self, kind: str) -> None:
        """Raise `InvalidRequestError` (with the reason) unless `kind` can be mounted."""
        ...


class Router:
    """Mount tables over a Backend, and the engines registered by type."""

    def __init__(
        self,
        backend: Backend,
        engines: Mapping[str, Engine],
        *,
        tenant_uid: Callable[[str], Awaitable[str | None]],
        auth_engines: Mapping[str, Engine] | None = None,
        fallback: FallbackEngine | None = None,
    ) -> None:
        """`fallback` (gateway mode) serves every secrets engine type not in `engines`."""
        self._backend = backend
        self._engines = dict(engines)
        self._fallback = fallback
        # Auth method types have their own catalog: `sys/mounts` cannot mount approle, nor
        # `sys/auth` a kv engine (as Vault's separate credential and logical registries).
        self._auth_engines = dict(auth_engines or {})
        self._tenant_uid = tenant_uid
        self._cache: dict[tuple[str, str], MountTable] = {}
        # The store tells a cached table's revision without decrypting it (`RevisionPeek`):
        # every request resolves its mount, and an unchanged table needs no read (`table`).
        self._committed_revision = revision_peek(backend)
        # Per engine type (not a default one): the tenants that mounted it.
        self._mounted: dict[str, TenantSet] = {}

    def engine(self, entry: MountEntry) -> Engine:
        catalog = self._auth_engines if entry.is_auth else self._engines
        engine = catalog.get(entry.engine_type)
        if engine is None and self._fallback is not None and not entry.is_auth:
            return self._fallback
        if engine is None:
            raise KeyError(entry.engine_type)
        return engine

    # -- reading ---------------------------------------------------------------------------

    async def table(self, storage_tenant: str, uid: str) -> MountTable:
        """The current mount table of a tenant (`SYSTEM_TENANT`: the root namespace)."""
        cache_key = (storage_tenant, uid)
        cached = self._cache.get(cache_key)
        if cached is not None and cached.revision == self._committed_revision(
            storage_tenant, _TABLE_MOUNT, _TABLE_KEY
        ):
            return cached
        record = await self._backend.read(storage_tenant, _TABLE_MOUNT, _TABLE_KEY)
        revision = record.revision if record is not None else 0
        if cached is not None and cached.revision == revision:
            return cached
        if record is None:
            entries = {} if storage_tenant == SYSTEM_TENANT else self._legacy(uid)
        else:
            raw = decode_record(record.value)
            entries = {path: MountEntry.from_record(item) for path, item in raw["mounts"].items()}
        table = MountTable(
            entries, revision, self._mounts(storage_tenant, uid, entries), (storage_tenant, uid)
        )
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[cache_key] = table
        return table

    def _mounts(
        self, storage_tenant: str, uid: str, entries: Mapping[str, MountEntry]
    ) -> dict[str, Mount]:
        return {
            path: Mount(
                path=path,
                type=entry.engine_type,
                uuid=entry.uuid,
                options=entry.options,
                config={
                    "default_lease_ttl": entry.default_lease_ttl,
                    "max_lease_ttl": entry.max_lease_ttl,
                },
                storage=MountStorage(
                    self._backend,
                    tenant=storage_tenant,
                    storage_mount=entry.storage,
                    key=AeadKey(entry.key) if entry.key is not None else None,
                    binding=(uid or "root", entry.uuid),
                ),
            )
            for path, entry in entries.items()
        }

    def _holders(self, kind: str) -> TenantSet | None:
        """The tenants that mounted `kind` (None for a default type: every tenant)."""
        if kind in _DEFAULT_TYPES:
            return None
        holders = self._mounted.get(kind)
        if holders is None:

            async def holds(tenant: str) -> bool:
                return bool(await self.mounts_in(tenant, kind))

            holders = self._mounted[kind] = TenantSet(
                self._backend, f"mount-type/{kind}", holds=holds
            )
        return holders

    async def mounts_in(self, tenant: str, kind: str) -> list[Mount] | None:
        """The mounts of engine type `kind` of one tenant (`SYSTEM_TENANT`: the root), or
        None if there is no such tenant (any more): for a pass over a `TenantSet`'s members."""
        uid = "" if tenant == SYSTEM_TENANT else await self._tenant_uid(tenant)
        if uid is None:
            return None
        try:
            table = await self.table(tenant, uid)
        except NotFoundError:
            return None  # deleted meanwhile
        return [mount for mount in table.mounts.values() if mount.type == kind]

    async def mounts_of_type(self, kind: str) -> list[tuple[str, Mount]]:
        """Every mount of engine type `kind`, with its tenant (`SYSTEM_TENANT`: the root);
        for a type tenants do not start with, only the tenants that mounted it are read."""
        found: list[tuple[str, Mount]] = []
        holders = self._holders(kind)
        tenants = await (holders.members() if holders else self._backend.list_tenants())
        for tenant in [SYSTEM_TENANT, *tenants]:
            found += [(tenant, mount) for mount in await self.mounts_in(tenant, kind) or []]
        return found

    @staticmethod
    def _legacy(uid: str) -> dict[str, MountEntry]:
        """The fixed layout of a store written before mount tables (see the module doc)."""

        def fixed(path: str, kind: str, description: str, options: Mapping[str, str]) -> MountEntry:
            ident = uuid.uuid5(_LEGACY_NAMESPACE, f"{uid}/{path}")
            return MountEntry(
                path=path,
                type=kind,
                uuid=str(ident),
                accessor=f"{kind}_{ident.hex[:8]}",
                storage=path.rstrip("/"),
                key=None,
                description=description,
                options=dict(options),
            )

        return {row[0]: fixed(*row) for row in _DEFAULT_MOUNTS}

    @staticmethod
    def new_entry(
        path: str,
        kind: str,
        *,
        description: str = "",
        options: Mapping[str, str] | None = None,
        default_lease_ttl: int = 0,
        max_lease_ttl: int = 0,
        local: bool = False,
        seal_wrap: bool = False,
        token_type: str = "",
    ) -> MountEntry:
        ident = str(uuid.uuid4())
        auth = path.startswith(AUTH_PREFIX)
        return MountEntry(
            path=path,
            type=kind,
            uuid=ident,
            # Vault's auth accessors read `auth_<type>_<hex>`.
            accessor=_accessor(("auth_" if auth else "") + _ENGINE_OF.get(kind, kind)),
            token_type=token_type,
            storage=f"mount/{ident}",
            key=random_key(),
            description=description,
            options=dict(options or {}),
            default_lease_ttl=default_lease_ttl,
            max_lease_ttl=max_lease_ttl,
            local=local,
            seal_wrap=seal_wrap,
        )

    def defaults(self) -> dict[str, MountEntry]:
        """The mounts a new tenant starts with: `secret/` (kv v2) and `transit/`."""
        return {
            path: self.new_entry(path, kind, description=description, options=options)
            for path, kind, description, options in _DEFAULT_MOUNTS
        }

    # -- changing --------------------------------------------------------------------------

    async def _store(self, storage_tenant: str, table: MountTable, entries: dict[str, Any]) -> None:
        if storage_tenant != SYSTEM_TENANT:
            # Before the table: a pass over a type must find every tenant that mounted it.
            before = {entry.engine_type for entry in table.entries.values()}
            for kind in {entry.engine_type for entry in entries.values()} - before:
                holders = self._holders(kind)
                if holders is not None:
                    await holders.add(storage_tenant)
        value = encode_record(
            {"mounts": {path: entry.to_record() for path, entry in entries.items()}}
        )
        await self._backend.write(
            storage_tenant, _TABLE_MOUNT, _TABLE_KEY, value, expected_revision=table.revision
        )

    async def initialize(self, storage_tenant: str, entries: dict[str, MountEntry]) -> bool:
        """Write the first table of a tenant; False if it already has one."""
        try:
            await self._store(storage_tenant, MountTable({}, 0), entries)
        except ConflictError:
            return False
        return True

    async def change(
        self,
        storage_tenant: str,
        uid: str,
        edit: Any,
    ) -> tuple[MountTable, Any]:
        """Apply `edit(table) -> (new entries, result)` with check-and-set, retried on a race.

        Returns the table as it was before the change that was stored, and `edit`'s result.
        """

        async def attempt() -> tuple[MountTable, Any]:
            table = await self.table(storage_tenant, uid)
            entries, result = edit(table)
            await self._store(storage_tenant, table, entries)
            return table, result

        return await retry_on_conflict(attempt, what="the mount table", attempts=_ATTEMPTS)

    # -- enable / tune helpers (Vault's rules and texts) -----------------------------------

    @staticmethod
    def resolve_type(kind: object, options: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        if not isinstance(kind, str) or not kind:
            raise InvalidRequestError("backend type must be specified as a string")
        merged = {str(k): str(v) for k, v in options.items()}
        alias = _ALIASES.get(kind)
        if alias is not None:
            kind, merged["version"] = alias
        return kind, merged

    def check_auth_type(self, kind: str, options: dict[str, str]) -> dict[str, str]:
        """`sys/auth` enable: the auth method type is registered; its options, normalized."""
        if kind == "token":
            raise InvalidRequestError("token credential backend cannot be instantiated")
        engine = self._auth_engines.get(kind)
        if engine is None and self._fallback is not None:
            # Gateway mode: an upstream auth method's login would yield an upstream token;
            # every token a client holds is tenantvault's (`engines/_passthrough`).
            raise InvalidRequestError(
                f'auth method "{kind}" is not available: in gateway mode logins are '
                f"tenantvault's own auth methods ({', '.join(sorted(self._auth_engines))}), "
                "never the upstream's"
            )
        if engine is None:
            raise InvalidRequestError(f"plugin not found in the catalog: {kind}")
        return engine.check_options(options)

    def check_type(self, kind: str, options: dict[str, str]) -> dict[str, str]:
        if kind in _SINGLETON_TYPES:
            raise InvalidRequestError(f'mount type of "{kind}" is not mountable')
        engine = self._engines.get(_ENGINE_OF.get(kind, kind))
        if engine is None and self._fallback is not None:
            self._fallback.accepts(kind)
            return self._fallback.check_options(options)
        if engine is None:
            raise InvalidRequestError(f"plugin not found in the catalog: {kind}")
        return engine.check_options(options)

    def serves_upstream(self, entry: MountEntry) -> bool:
        """Whether the fallback (the upstream, gateway mode) serves `entry`."""
        return self._fallback is not None and self.engine(entry) is self._fallback

    @staticmethod
    def parse_ttls(config: Mapping[str, Any]) -> tuple[int, int]:
        def ttl(name: str) -> int:
            value = config.get(name)
            if value in (None, "", "system"):
                return 0
            return parse_duration(value, field=name)

        default, maximum = ttl("default_lease_ttl"), ttl("max_lease_ttl")
        if default and maximum and default > maximum:
            raise InvalidRequestError("given default lease TTL greater than given max lease TTL")
        if default > (maximum or SYSTEM_MAX_LEASE_TTL_SECONDS):
            if maximum:
                raise InvalidRequestError(
                    "given default lease TTL greater than given max lease TTL"
                )
            raise InvalidRequestError(
                "given default lease TTL greater than system max lease TTL of "
                f"{SYSTEM_MAX_LEASE_TTL_SECONDS}"
            )
        return default, maximum

    @staticmethod
    def with_changes(entry: MountEntry, **changes: Any) -> MountEntry:
        return replace(entry, **changes)
