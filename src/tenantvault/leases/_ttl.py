"""Vault's `CalculateTTL` for leases: a backend TTL within the mount's and the role's maximum.

One implementation, used by the engines that issue leased secrets (the database engine
needs the TTL to set `VALID UNTIL` before the lease exists) and by the lease manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tenantvault._durations import format_duration
from tenantvault._exceptions import InvalidRequestError

__all__ = ["SYSTEM_LEASE_TTL_SECONDS", "LeaseTTL", "calculate_ttl"]

# Vault's system default and maximum lease TTL (768h), what a mount's 0 means.
SYSTEM_LEASE_TTL_SECONDS: Final = 768 * 3600
_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class LeaseTTL:
    """A computed lease TTL and the warning Vault gives when it was capped."""

    ttl_seconds: int
    max_ttl_seconds: int
    warnings: tuple[str, ...] = ()


def _short(seconds: int) -> str:
    """A duration as OpenBao's TTL warning prints it: Go's form without zero tails (1h, 1m)."""
    text = format_duration(seconds)
    for tail in ("0s", "0m"):
        if text.endswith(tail) and len(text) > len(tail) and not text[-len(tail) - 1].isdigit():
            text = text[: -len(tail)]
    return text


def calculate_ttl(
    mount_config: Mapping[str, Any],
    *,
    increment_seconds: int = 0,
    backend_ttl_seconds: int = 0,
    backend_max_ttl_seconds: int = 0,
    issued_ns: int | None = None,
    now_ns: int = 0,
) -> LeaseTTL:
    """The TTL of a new lease (`issued_ns` None) or of a renewal from `now_ns`.

    The requested TTL is the increment, else the backend's, else the mount default; the
    maximum is the mount's (or the system's), lowered by the backend's. A renewal may not
    go past `issued + max`: "past the max TTL, cannot renew" once it has.
    """
    default = int(mount_config.get("default_lease_ttl") or 0) or SYSTEM_LEASE_TTL_SECONDS
    maximum = int(mount_config.get("max_lease_ttl") or 0) or SYSTEM_LEASE_TTL_SECONDS
    if 0 < backend_max_ttl_seconds < maximum:
        maximum = backend_max_ttl_seconds
    ttl = increment_seconds or backend_ttl_seconds or default
    effective_max = maximum
    if issued_ns is not None:
        # As OpenBao's `CalculateTTL`: both instants truncated to the second first, so a
        # renewal in the second of issue has the whole maximum left, and one a moment past a
        # second boundary one second less, however little time passed.
        remaining = issued_ns // _NS + maximum - now_ns // _NS
        if remaining <= 0:
            raise InvalidRequestError("past the max TTL, cannot renew")
        effective_max = remaining
    if ttl > effective_max:
        warning = (
            f'TTL of "{_short(ttl)}" exceeded the effective max_ttl of '
            f'"{_short(effective_max)}"; TTL value is capped accordingly'
        )
        return LeaseTTL(effective_max, maximum, (warning,))
    return LeaseTTL(ttl, maximum)
