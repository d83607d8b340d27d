"""The read cache's settings: on/off, lifetimes, bounds and the per-tenant share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tenantvault._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_NEGATIVE_TTL_SECONDS",
    "DEFAULT_STALE_IF_ERROR_SECONDS",
    "DEFAULT_TENANT_SHARE",
    "DEFAULT_TTL_SECONDS",
    "CacheSettings",
]

# The documented bound on staleness across instances: a write through another instance (or
# straight into the upstream) is seen here at most this long after it was acknowledged.
DEFAULT_TTL_SECONDS: Final = 2.0
# A 404 is kept shorter: a secret created elsewhere should not stay missing for long.
DEFAULT_NEGATIVE_TTL_SECONDS: Final = 0.5
# How long past its TTL the last good value may answer while the backend is unavailable.
DEFAULT_STALE_IF_ERROR_SECONDS: Final = 30.0
DEFAULT_MAX_ENTRIES: Final = 50_000
DEFAULT_MAX_BYTES: Final = 32 * 1024 * 1024
# The most of either bound one tenant may hold, so one tenant cannot take the whole cache.
DEFAULT_TENANT_SHARE: Final = 0.5
# Lifetimes are shortened by up to this fraction at random, so that keys filled together do
# not all expire (and go to the backend) in the same instant; never lengthened, so the TTL
# stays the staleness bound.
DEFAULT_JITTER: Final = 0.1
DEFAULT_SWEEP_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """How the KV read cache behaves (`serve --no-read-cache`, `--read-cache-*`)."""

    enabled: bool = True
    ttl_seconds: float = DEFAULT_TTL_SECONDS
    negative_ttl_seconds: float = DEFAULT_NEGATIVE_TTL_SECONDS
    stale_if_error_seconds: float = DEFAULT_STALE_IF_ERROR_SECONDS
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_bytes: int = DEFAULT_MAX_BYTES
    tenant_share: float = DEFAULT_TENANT_SHARE
    jitter: float = DEFAULT_JITTER
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS

    def __post_init__(self) -> None:
        if self.ttl_seconds <= 0 or self.negative_ttl_seconds < 0:
            raise ConfigurationError(
                "the read cache TTL must be positive (turn the cache off instead)"
            )
        if self.stale_if_error_seconds < 0:
            raise ConfigurationError("the read cache's stale-if-error window must be 0 or more")
        if self.max_entries < 1 or self.max_bytes < 1:
            raise ConfigurationError("the read cache bounds must be positive")
        if not 0 < self.tenant_share <= 1:
            raise ConfigurationError("the read cache's tenant share must be within (0, 1]")
        if not 0 <= self.jitter < 1:
            raise ConfigurationError("the read cache jitter must be within [0, 1)")
        if self.sweep_seconds <= 0:
            raise ConfigurationError("the read cache sweep interval must be positive")
