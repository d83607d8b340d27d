"""The sealed KV read cache: in the Core, behind authorization and audit, above the backend.

`ReadCache` wraps the routes of kv v2 mounts (`_kv`); its values live in a `SealedStore`
(`_store`): sealed under a per-process key, bounded with per-tenant shares, single flight,
stale-if-error. `run_maintenance` is the `cache-maintenance` service that sweeps it.
"""

from __future__ import annotations

from tenantvault.cache._kv import STALE_WARNING, ReadCache, is_cached
from tenantvault.cache._service import run_maintenance
from tenantvault.cache._settings import CacheSettings
from tenantvault.cache._store import STALE_ERRORS, SealedStore

__all__ = [
    "STALE_ERRORS",
    "STALE_WARNING",
    "CacheSettings",
    "ReadCache",
    "SealedStore",
    "is_cached",
    "run_maintenance",
]
