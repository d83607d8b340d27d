"""The audit store as one request may see it: bound to a tenant incarnation, or unbound (root).

The Core builds one `AuditView` per request. A tenant's view answers queries and reports for
that tenant's current incarnation only — the tenant and incarnation of every query it runs
are its own, whatever the request asked for — so an engine bug cannot widen a tenant's
audit trail to another tenant's entries. The root namespace's view is unbound: the operator
picks a tenant and an incarnation (also a deleted one's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._fields import get_str
from tenantvault._paths import validate_tenant_id
from tenantvault._tokens import TenantIdLookup, TokenRecord, TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._query import (
    ANY_INCARNATION,
    EventQuery,
    parse_incarnation,
    run_query,
    secret_activity,
)
from tenantvault.audit._sinks import StoreSink
from tenantvault.backends._protocol import Backend

if TYPE_CHECKING:
    from tenantvault.engines._protocol import MountStorage

__all__ = ["AuditView"]


class AuditView:
    """Audit queries and report inputs, bound to `tenant`'s incarnation (None: unbound)."""

    __slots__ = (
        "_backend",
        "_broker",
        "_kv_mount",
        "_lookup_uid",
        "_tenant",
        "_tenant_uid",
        "_tokens",
    )

    def __init__(
        self,
        broker: AuditBroker,
        *,
        tokens: TokenStore,
        backend: Backend,
        tenant_uid_lookup: TenantIdLookup,
        tenant: str | None,
        tenant_uid: str,
        kv_mount: Callable[[str], Awaitable[MountStorage | None]] | None = None,
    ) -> None:
        # The storage of the tenant's `secret/` mount (kv v2), for the report's key list.
        self._kv_mount = kv_mount
        self._broker = broker
        self._tokens = tokens
        self._backend = backend
        self._lookup_uid = tenant_uid_lookup
        self._tenant = tenant
        self._tenant_uid = tenant_uid

    def __repr__(self) -> str:
        return f"AuditView(tenant={self._tenant!r})"

    async def scope(self, data: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The tenant and incarnation whose entries the caller may see (None: any).

        Bound: its own, whatever the request asks for. Unbound (root namespace): everything,
        or `tenant` (its current incarnation) and/or `tenant_uid` (one incarnation, also of a
        deleted tenant; `*` every incarnation of `tenant`, and entries from before
        incarnation ids).
        """
        if self._tenant is not None:
            return self._tenant, self._tenant_uid
        tenant = get_str(data, "tenant") or None
        if tenant is not None:
            validate_tenant_id(tenant)
        requested = parse_incarnation(data.get("tenant_uid"))
        if requested == ANY_INCARNATION:
            if tenant is None:
                raise InvalidRequestError("tenant_uid=* needs a tenant")
            return tenant, None
        if requested is not None or tenant is None:
            return tenant, requested
        uid = await self._lookup_uid(tenant)
        if uid is None:
            raise NotFoundError(
                f"no tenant {tenant!r} exists now; pass tenant_uid to audit a deleted one"
            )
        return tenant, uid

    def _bind(self, tenant: str | None, tenant_uid: str | None) -> tuple[str | None, str | None]:
        if self._tenant is not None:
            return self._tenant, self._tenant_uid
        return tenant, tenant_uid

    def store(self) -> StoreSink:
        store = self._broker.store()
        if store is None:
            raise NotFoundError("no queryable audit store is enabled")
        return store

    def hash_accessor(self, accessor: str) -> str:
        return self.store().redactor.hash(accessor)

    async def events(self, query: EventQuery) -> tuple[list[dict[str, Any]], int | None]:
        tenant, tenant_uid = self._bind(query.tenant, query.tenant_uid)
        query = dataclasses.replace(query, tenant=tenant, tenant_uid=tenant_uid)
        return await run_query(self.store(), query)

    async def activity(self, tenant: str, tenant_uid: str, since_ns: int | None) -> dict[str, Any]:
        tenant, tenant_uid = self._checked(tenant, tenant_uid)
        return await secret_activity(self.store(), tenant, tenant_uid, since_ns)

    def _checked(self, tenant: str, tenant_uid: str) -> tuple[str, str]:
        bound_tenant, bound_uid = self._bind(tenant, tenant_uid)
        if bound_tenant is None or bound_uid is None:
            raise InvalidRequestError("a report covers one incarnation of one tenant")
        return bound_tenant, bound_uid

    async def is_current(self, tenant: str, tenant_uid: str) -> bool:
        """Whether `tenant_uid` is `tenant`'s current incarnation (its secrets still exist)."""
        tenant, tenant_uid = self._checked(tenant, tenant_uid)
        return tenant_uid == await self._lookup_uid(tenant)

    async def secret_keys(self, tenant: str, tenant_uid: str) -> list[str]:
        """Every KV secret key of the tenant (its current incarnation's)."""
        tenant, _ = self._checked(tenant, tenant_uid)
        return await self._kv_keys(tenant, "meta/")

    async def _kv_keys(self, tenant: str, prefix: str) -> list[str]:
        store = await self._kv_mount(tenant) if self._kv_mount is not None else None
        return [] if store is None else await self._kv_keys_in(store, prefix)

    async def _kv_keys_in(self, store: MountStorage, prefix: str) -> list[str]:
        keys: list[str] = []
        for child in await store.list(prefix):
            if child.endswith("/"):
                keys.extend(await self._kv_keys_in(store, prefix + child))
            else:
                keys.append((prefix + child).removeprefix("meta/"))
        return keys

    async def tokens(self, tenant: str, tenant_uid: str) -> list[TokenRecord]:
        """The live tokens of this incarnation of the tenant."""
        tenant, tenant_uid = self._checked(tenant, tenant_uid)
        return await self._tokens.tenant_tokens(tenant, tenant_uid)
