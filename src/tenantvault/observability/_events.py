"""The Core's producers (token store, lease manager, rotation, read cache, audit broker) into
the metrics counters: callbacks that hold the counters and nothing else.

Producers get these bound methods at construction. They reach only `MetricsHooks`, never the
Core, so no view a handler holds (a tenant's token or audit view) can lead back to the Core
through a producer's callback (`tests/unit/test_views.py` walks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantvault.observability._metrics import MetricsHooks

if TYPE_CHECKING:
    from tenantvault._tokens import TokenRecord

__all__ = ["EventCounters"]


class EventCounters:
    """Counting callbacks for the Core's event producers."""

    __slots__ = ("_hooks",)

    def __init__(self, hooks: MetricsHooks) -> None:
        self._hooks = hooks

    def lease(self, event: str, tenant: str | None, failed: bool) -> None:
        """A lease manager event."""
        self._hooks.count("lease", event, tenant=tenant, failed=failed)

    def rotation(self, event: str, tenant: str | None, failed: bool) -> None:
        """A rotation runner event."""
        self._hooks.count("rotation", event, tenant=tenant, failed=failed)

    def cache(self, event: str, tenant: str | None) -> None:
        """A read cache event: hit, miss, eviction or stale (served past its TTL)."""
        self._hooks.count("cache", event, tenant=tenant)

    def audit(self, written: int, failed: int) -> None:
        """The audit broker's sink writes of one entry."""
        if written:
            self._hooks.count("audit", "written", n=written)
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
