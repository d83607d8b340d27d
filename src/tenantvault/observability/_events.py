"""The Core's producers (token store, lease manager, rotation, read cache, audit broker) into
the metrics counters: callbacks that hold the counters and nothing else.

Producers get these bound methods at construction. They reach only `MetricsHooks`, never the
Core, so no view a handler holds (a tenant's token or audit view) can lead back to the Core
through a producer's callback (`tests/unit/test_views.py` walks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from tenantvault.observability._metrics import MAX_PENDING_EVENTS, MetricsHooks, PendingKey

if TYPE_CHECKING:
    from tenantvault._tokens import TokenRecord

__all__ = ["EventCounters"]


# The key of an audit entry written, counted twice per request.
_AUDIT_WRITTEN: Final[PendingKey] = ("audit", "written", None, False)


class EventCounters:
    """Counting callbacks for the Core's event producers."""

    __slots__ = ("_hooks", "_pending")

    def __init__(self, hooks: MetricsHooks) -> None:
        self._hooks = hooks
        # The read cache and the audit broker call back on every request (three times per
        # cached, audited read): those callbacks add to the hooks' pending counts directly,
        # one call each instead of two (`MetricsHooks.count` with its keyword arguments).
        self._pending = hooks.pending

    def lease(self, event: str, tenant: str | None, failed: bool) -> None:
        """A lease manager event."""
        self._hooks.count("lease", event, tenant=tenant, failed=failed)

    def rotation(self, event: str, tenant: str | None, failed: bool) -> None:
        """A rotation runner event."""
        self._hooks.count("rotation", event, tenant=tenant, failed=failed)

    def cache(self, event: str, tenant: str | None) -> None:
        """A read cache event: hit, miss, eviction or stale (served past its TTL)."""
        pending = self._pending
        key: PendingKey = ("cache", event, tenant, False)
        pending[key] = pending.get(key, 0) + 1
        if len(pending) > MAX_PENDING_EVENTS:
            self._hooks.fold_if_full()

    def audit(self, written: int, failed: int) -> None:
        """The audit broker's sink writes of one entry."""
        if written:
            pending = self._pending
            pending[_AUDIT_WRITTEN] = pending.get(_AUDIT_WRITTEN, 0) + written
            # One constant key: it adds at most one to the bound `count` keeps.
        if failed:
            self._hooks.count("audit", "written", failed=True, n=failed)

    def token_created(self, record: TokenRecord) -> None:
        """A token stored."""
        self._hooks.count("token", "created", tenant=record.tenant)

    async def token_revoked(self, record: TokenRecord) -> None:
        """A token revoked."""
        self._hooks.count("token", "revoked", tenant=record.tenant)

    def __repr__(self) -> str:
        return "EventCounters()"
