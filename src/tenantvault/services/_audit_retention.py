"""The audit retention service: deletes the audit store's entries older than the retention.

Off unless the operator sets one (`--audit-store-retention 90d`): by default the store keeps
every entry. On disk the store cannot be rotated like a log file, and a store that grows
until the disk is full makes every request fail closed (no sink can record it): a
retention turns that slow outage into a bounded file (SQLite reuses the freed pages, so the
file stops growing once it holds one retention's worth).

Each pass prunes in chunks off the event loop (`AuditDatabase.prune`) and records what it
deleted in the store's own chain (a `retention` checkpoint); passes run every tenth of the
retention, between one second and one hour apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tenantvault._clock import Clock, format_time, system_clock

if TYPE_CHECKING:
    from tenantvault.audit._broker import AuditBroker

__all__ = ["AuditRetention", "retention_interval_seconds"]

logger = logging.getLogger("tenantvault.services.audit_retention")

_MIN_INTERVAL_SECONDS = 1.0
_MAX_INTERVAL_SECONDS = 3600.0


def retention_interval_seconds(retention_seconds: float) -> float:
    """How long between two passes: a tenth of the retention, within [1 s, 1 h]."""
    return min(max(retention_seconds / 10, _MIN_INTERVAL_SECONDS), _MAX_INTERVAL_SECONDS)


@dataclass(slots=True)
class AuditRetention:
    """Prune the broker's queryable stores every so often (a supervised service: `run`)."""

    broker: AuditBroker
    retention_seconds: int
    clock: Clock = system_clock
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # What `sys/health` shows under this service's `detail`.
    deleted_total: int = 0
    last_pass_ns: int = 0

    def __post_init__(self) -> None:
        if self.retention_seconds < 1:
            raise ValueError("the audit retention must be at least one second")

    async def run(self) -> None:
        """Run until cancelled; an error is a crash (the supervisor restarts the service)."""
        interval = retention_interval_seconds(self.retention_seconds)
        while True:
            await self.prune_once()
            await self.sleep(interval)

    async def prune_once(self) -> int:
        """One pass: delete what is older than the retention; how many entries went."""
        now = self.clock()
        before = now - self.retention_seconds * 1_000_000_000
        deleted = 0
        for store in self.broker.stores():
            deleted += await store.prune(before, now_ns=now)
        self.last_pass_ns = now
        if deleted:
            self.deleted_total += deleted
            # A count only: nothing of the entries themselves.
            logger.info(
                "audit store: deleted %d %s older than the retention",
                deleted,
                "entry" if deleted == 1 else "entries",
            )
        return deleted

    def health(self) -> dict[str, Any]:
        """The retention, the last pass and what the passes deleted, for `sys/health`."""
        return {
            "retention_seconds": self.retention_seconds,
            "last_pass": format_time(self.last_pass_ns),
            "deleted": self.deleted_total,
        }
