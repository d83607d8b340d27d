"""Leases: every dynamic secret's lifetime, owned by the Core (`LeaseManager`).

`_ttl` computes lease TTLs (Vault's CalculateTTL), `_store` keeps lease records per tenant,
`_manager` registers, renews, revokes and expires them, `_routes` serves `sys/leases/*`, and
`_service` is the supervised expiration service.
"""

from __future__ import annotations

from tenantvault.leases._manager import (
    LeaseManager,
    LeaseQuotaError,
    LeasesRemainError,
    LeasingEngine,
)
from tenantvault.leases._routes import LeasesEngine
from tenantvault.leases._service import run_expiration
from tenantvault.leases._ttl import SYSTEM_LEASE_TTL_SECONDS, LeaseTTL, calculate_ttl

__all__ = [
    "SYSTEM_LEASE_TTL_SECONDS",
    "LeaseManager",
    "LeaseQuotaError",
    "LeaseTTL",
    "LeasesEngine",
    "LeasesRemainError",
    "LeasingEngine",
    "calculate_ttl",
    "run_expiration",
]
