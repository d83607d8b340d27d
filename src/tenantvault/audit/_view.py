"""The audit store as one request may see it: one tenant incarnation's partition, or root's.

The Core opens one view for each request to `sys/audit/events` or `sys/audit/report`
(`open_view`). A tenant's view holds its own incarnation's partition, opened on a connection
that SQLite confines to it, and nothing from which another partition can be named: no store,
no broker, no catalog, no tenant argument on anything it does. An engine bug can make it
read its own trail wrongly, never another tenant's. The root namespace's view is the
operator's: it picks partitions by tenant and incarnation (also a deleted tenant's).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._fields import get_str
from tenantvault._paths import validate_tenant_id
from tenantvault._tokens import TenantIdLookup, TokenRecord, TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._partitions import Partition
from tenantvault.audit._query import ANY_INCARNATION, parse_incarnation
from tenantvault.audit._sinks import StoreSink

if TYPE_CHECKING:
    from tenantvault.engines._protocol import MountStorage

__all__ = ["AuditView", "ReportSubject", "RootAuditView", "TenantAuditView", "open_view"]

# The storage of a tenant's `secret/` mount (kv v2), for a report's key list.
KvMount = Callable[[str], Awaitable["MountStorage | None"]]


def _no_store() -> NotFoundError:
    return NotFoundError("no queryable audit store is enabled")


@dataclass(frozen=True, slots=True)
class ReportSubject:
    """The one tenant incarnation a compliance report covers, and the partitions it reads."""

    tenant: str
    tenant_uid: str
    partitions: tuple[Partition, ...] = field(repr=False)
    # Whether it is the tenant's current incarnation (a deleted one's secrets are destroyed).
    current: bool


class AuditView(abc.ABC):
    """What `sys/audit/events` and `sys/audit/report` read; closed by the Core afterwards."""

    __slots__ = ()

    @abc.abstractmethod
    async def partitions(self, data: Mapping[str, Any]) -> list[Partition]:
        """The partitions an events query runs over."""

    @abc.abstractmethod
    async def subject(self, data: Mapping[str, Any]) -> ReportSubject:
        """The incarnation a report covers."""

    @abc.abstractmethod
    def hash_accessor(self, accessor: str) -> str:
        """An accessor as the store's entries hold it (its salted HMAC)."""

    @abc.abstractmethod
    async def secret_keys(self, subject: ReportSubject) -> list[str]:
        """Every KV secret key of the subject's (current) incarnation."""

    @abc.abstractmethod
    async def tokens(self, subject: ReportSubject) -> list[TokenRecord]:
        """The live tokens of the subject's (current) incarnation."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the view opened (idempotent)."""


async def _kv_keys_in(store: MountStorage, prefix: str) -> list[str]:
    keys: list[str] = []
    for child in await store.list(prefix):
        if child.endswith("/"):
            keys.extend(await _kv_keys_in(store, prefix + child))
        else:
            keys.append((prefix + child).removeprefix("meta/"))
    return keys


@final
class TenantAuditView(AuditView):
    """One tenant incarnation's view: its own partition, its own KV mount, its own tokens."""

    __slots__ = ("_kv", "_partition", "_tenant", "_tenant_uid", "_tokens")

    def __init__(
        self,
        partition: Partition | None,
        *,
        tenant: str,
        tenant_uid: str,
        kv: MountStorage | None,
        tokens: TokenStore,
    ) -> None:
        # None: no queryable store is enabled.
        self._partition = partition
        self._tenant = tenant
        self._tenant_uid = tenant_uid
        self._kv = kv
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"TenantAuditView(tenant={self._tenant!r})"

    def _own(self) -> Partition:
        if self._partition is None:
            raise _no_store()
        return self._partition

    async def partitions(self, data: Mapping[str, Any]) -> list[Partition]:
        # Whatever the request names (`tenant`, `tenant_uid`): a tenant has one partition.
        return [self._own()]

    async def subject(self, data: Mapping[str, Any]) -> ReportSubject:
        # The Core resolved the incarnation for this request: it is the current one.
        return ReportSubject(self._tenant, self._tenant_uid, (self._own(),), current=True)

    def hash_accessor(self, accessor: str) -> str:
        return self._own().redactor.hash(accessor)

    async def secret_keys(self, subject: ReportSubject) -> list[str]:
        return [] if self._kv is None else await _kv_keys_in(self._kv, "meta/")

    async def tokens(self, subject: ReportSubject) -> list[TokenRecord]:
        return await self._tokens.tenant_tokens(self._tenant, self._tenant_uid)

    def close(self) -> None:
        if self._partition is not None:
            self._partition.close()


@final
class RootAuditView(AuditView):
    """The operator's view (root namespace): any partition, by tenant and incarnation."""

    __slots__ = ("_broker", "_kv_mount", "_lookup_uid", "_tokens")

    def __init__(
        self,
        broker: AuditBroker,
        *,
        tokens: TokenStore,
        tenant_uid_lookup: TenantIdLookup,
        kv_mount: KvMount | None = None,
    ) -> None:
        self._broker = broker
        self._tokens = tokens
        self._lookup_uid = tenant_uid_lookup
        self._kv_mount = kv_mount

    def __repr__(self) -> str:
        return "RootAuditView()"

    def _store(self) -> StoreSink:
        store = self._broker.store()
        if store is None:
            raise _no_store()
        return store

    async def _scope(self, data: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The tenant and incarnation the request names (None: any).

        `tenant` alone is its current incarnation; `tenant_uid` one incarnation, also of a
        deleted tenant; `*` every incarnation of `tenant`, and entries from before
        incarnation ids. Neither: every partition.
        """
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

    async def partitions(self, data: Mapping[str, Any]) -> list[Partition]:
        tenant, tenant_uid = await self._scope(data)
        return await self._store().select(tenant, tenant_uid)

    async def subject(self, data: Mapping[str, Any]) -> ReportSubject:
        tenant, tenant_uid = await self._scope(data)
        if tenant is None:
            raise InvalidRequestError("tenant is required in the root namespace")
        if tenant_uid is None:
            raise InvalidRequestError("a report covers one incarnation: tenant_uid cannot be *")
        partitions = await self._store().select(tenant, tenant_uid)
        current = tenant_uid == await self._lookup_uid(tenant)
        return ReportSubject(tenant, tenant_uid, tuple(partitions), current=current)

    def hash_accessor(self, accessor: str) -> str:
        return self._store().redactor.hash(accessor)

    async def secret_keys(self, subject: ReportSubject) -> list[str]:
        store = await self._kv_mount(subject.tenant) if self._kv_mount is not None else None
        return [] if store is None else await _kv_keys_in(store, "meta/")

    async def tokens(self, subject: ReportSubject) -> list[TokenRecord]:
        return await self._tokens.tenant_tokens(subject.tenant, subject.tenant_uid)

    def close(self) -> None:
        """Nothing to release: root's partitions are read on the store's own connection."""


async def open_view(
    broker: AuditBroker,
    *,
    tenant: str | None,
    tenant_uid: str,
    tokens: TokenStore,
    tenant_uid_lookup: TenantIdLookup,
    kv_mount: KvMount,
) -> AuditView:
    """The view of one request: `tenant`'s own partition (None: the root namespace's view).

    For a tenant, the partition and the KV mount are resolved here, by the Core's call, so
    that the view holds them and not the means to resolve another's.
    """
    if tenant is None:
        return RootAuditView(
            broker, tokens=tokens, tenant_uid_lookup=tenant_uid_lookup, kv_mount=kv_mount
        )
    store = broker.store()
    partition = None if store is None else await store.open_partition(tenant, tenant_uid)
    try:
        kv = await kv_mount(tenant)
    except BaseException:
        if partition is not None:
            partition.close()
        raise
    return TenantAuditView(partition, tenant=tenant, tenant_uid=tenant_uid, kv=kv, tokens=tokens)
