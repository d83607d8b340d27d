"""The KV v2 read cache: the Core hands it every route of a kv v2 mount, after routing and
before authorization; it returns the route with its handler wrapped, so the cache runs only
where the handler runs — after the Core authorized and audited the request.

- `data/<path>` reads (any `version`) answer from the store (`_store.SealedStore`), keyed by
  (tenant, tenant incarnation and mount uuid, path, version); 404s too, for a shorter time.
- Every other operation on a key (write, patch, delete, undelete, destroy, metadata write,
  patch or delete) forgets that key's entries before and after its handler; a write of the
  mount's `config` forgets the mount's. A newer mount table (a mount enabled, disabled,
  moved or tuned) forgets the tenant's; deleting a tenant forgets it.
- A mount is not cached when its options say `cache=off` (`bao secrets tune
  -options=cache=off secret/`; OpenBao keeps options it does not know, and so do we) or it
  was enabled with Vault's `force_no_cache` (`bao secrets enable -force-no-cache`).
- A version with a `deletion_time` (`delete_version_after`) is never served past it.
- Served stale (the backend unavailable), the answer carries `STALE_WARNING`, which the
  audit trail's response entry records with it.
"""

from __future__ import annotations

import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Final

from tenantvault._clock import Clock, parse_time
from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._fields import get_int
from tenantvault._request import Operation, Response
from tenantvault.cache._settings import CacheSettings
from tenantvault.cache._store import CacheEvents, Group, Loaded, SealedStore
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Route

__all__ = ["STALE_WARNING", "ReadCache"]

STALE_WARNING: Final = (
    "served from tenantvault's read cache: the storage backend is unavailable, so this "
    "value may be out of date"
)
# The sections of a kv v2 mount whose non-read operations change the key they name.
_KEY_SECTIONS: Final = frozenset({"data", "metadata", "delete", "undelete", "destroy"})
_OFF: Final = frozenset({"off", "false", "0", "no"})

Handler = Callable[[Call], Awaitable[Response]]


def is_cached(mount: Mount, *, force_no_cache: bool) -> bool:
    """Whether reads of `mount` may be cached: its options and Vault's force_no_cache."""
    return not force_no_cache and mount.options.get("cache", "").lower() not in _OFF


async def _load(handler: Handler, call: Call) -> Loaded:
    """Run the engine's read; a 404 is a result too (negative caching)."""
    try:
        response = await handler(call)
    except NotFoundError as missing:
        return (
            True,
            {"message": missing.message, "body": missing.body, "empty": missing.empty},
            None,
        )
    data = response.data or {}
    metadata = data.get("metadata")
    deletion = metadata.get("deletion_time") if isinstance(metadata, dict) else None
    not_after = parse_time(deletion) if isinstance(deletion, str) and deletion else None
    return False, {"data": response.data, "warnings": response.warnings}, not_after


def _answer(absent: bool, payload: Any, stale: bool) -> Response:
    if absent:
        raise NotFoundError(payload["message"], body=payload["body"], empty=payload["empty"])
    warnings = payload["warnings"]
    if stale:
        warnings = [*(warnings or []), STALE_WARNING]
    return Response(data=payload["data"], warnings=warnings)


class ReadCache:
    """The KV v2 read cache of one Core (one process); see the module docstring."""

    def __init__(
        self,
        settings: CacheSettings | None = None,
        *,
        clock: Clock,
        events: CacheEvents | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.settings = settings if settings is not None else CacheSettings()
        self._store = (
            SealedStore(self.settings, clock=clock, events=events, random=random)
            if self.settings.enabled
            else None
        )
        # The newest mount table seen per tenant, (incarnation, revision): a newer one (or
        # another incarnation) forgets the tenant's entries.
        self._tables: dict[str, tuple[str, int]] = {}

    def __repr__(self) -> str:
        return f"ReadCache({self._store!r})" if self._store is not None else "ReadCache(off)"

    @property
    def store(self) -> SealedStore | None:
        """The sealed store (None when the cache is off): its counters and sizes."""
        return self._store

    def route(
        self,
        route: Route,
        operation: Operation,
        mount: Mount,
        *,
        tenant_uid: str,
        table_revision: int,
        force_no_cache: bool = False,
    ) -> Route:
        """`route` of `mount` with the cache in front of its handler (as is, if nothing to
        do); `table_revision` is the revision of the mount table `mount` was read from."""
        store = self._store
        if store is None or mount.type != "kv" or mount.options.get("version") != "2":
            return route
        if not route.acl_path.startswith(mount.path):
            return route
        section, _, path = route.acl_path[len(mount.path) :].partition("/")
        tenant = mount.storage.tenant
        current = self.table_seen(tenant, tenant_uid, table_revision)
        scope = f"{tenant_uid}/{mount.uuid}"
        if operation is Operation.READ or operation is Operation.LIST:
            cacheable = (
                operation is Operation.READ
                and section == "data"
                and path
                # An older table than one already seen: a request racing a mount change.
                and current
                and is_cached(mount, force_no_cache=force_no_cache)
            )
            if not cacheable:
                return route
            return replace(route, handler=self._reader(store, route.handler, (tenant, scope, path)))
        if section in _KEY_SECTIONS and path:
            return replace(route, handler=_forgetting(store, route.handler, (tenant, scope, path)))
        if section == "config":
            return replace(route, handler=_forgetting_scope(store, route.handler, tenant, scope))
        return route

    def table_seen(self, tenant: str, tenant_uid: str, table_revision: int) -> bool:
        """Note that a request of backend tenant `tenant` was routed with its mount table at
        `table_revision`; whether that is the newest table seen. A newer one (or another
        incarnation's) forgets the tenant's entries first. Cheap: the Core asks it on every
        request to a kv v2 mount, also when it reuses a route it resolved before."""
        store = self._store
        if store is None:
            return True
        seen = self._tables.get(tenant)
        if seen is None or seen[0] != tenant_uid or table_revision > seen[1]:
            if seen is not None:
                store.forget_tenant(tenant)
            seen = self._tables[tenant] = (tenant_uid, table_revision)
        return table_revision >= seen[1]

    @staticmethod
    def _reader(store: SealedStore, handler: Handler, group: Group) -> Handler:
        async def cached(call: Call) -> Response:
            try:
                # Most reads send no parameter at all: no lookup (and no KeyError) for those.
                version = (get_int(call.data, "version", default=0) or 0) if call.data else 0
            except InvalidRequestError:
                return await handler(call)  # the engine refuses it, in its words
            absent, payload, stale = await store.read(
                (*group, version), lambda: _load(handler, call)
            )
            return _answer(absent, payload, stale)

        return cached

    async def tenant_deleted(self, tenant: str) -> None:
        """A tenant-delete step (`TenantRegistry.on_delete`): forget what it had here."""
        self._tables.pop(tenant, None)
        if self._store is not None:
            self._store.forget_tenant(tenant)

    def sweep(self) -> int:
        """Drop expired entries (the `cache-maintenance` service); how many went."""
        return self._store.sweep() if self._store is not None else 0

    def health(self) -> dict[str, Any]:
        """The cache's numbers for `sys/health` (counts only, never a key or a value)."""
        store = self._store
        if store is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "entries": len(store),
            "bytes": store.size_bytes,
            "hits": store.hits,
            "misses": store.misses,
            "evictions": store.evictions,
            "stale_served": store.stale_served,
        }

    def clear(self) -> None:
        """Drop everything (the Core is closing)."""
        self._tables.clear()
        if self._store is not None:
            self._store.clear()


def _forgetting(store: SealedStore, handler: Handler, group: Group) -> Handler:
    """`handler` of a change to one key: its entries go before and after it runs (after,
    whatever the outcome: a failed write may still have changed something)."""

    async def changing(call: Call) -> Response:
        store.forget(group)
        try:
            response: Response = await handler(call)
        finally:
            store.forget(group)
        return response

    return changing


def _forgetting_scope(store: SealedStore, handler: Handler, tenant: str, scope: str) -> Handler:
    """`handler` of a change to a mount's settings: the mount's entries go, as above."""

    async def changing(call: Call) -> Response:
        store.forget_scope(tenant, scope)
        try:
            response: Response = await handler(call)
        finally:
            store.forget_scope(tenant, scope)
        return response

    return changing
