"""Gateway mode: the upstream Vault/OpenBao client, its authentication and the record backend.

- `UpstreamClient` (`_client`): the one pooled, bounded, timed, retried and circuit-broken
  HTTP client to the upstream; its module docstring is the API for engines.
- `UpstreamAuth` (`_auth`): tenantvault's own upstream token (token or AppRole), renewed
  by a supervised service.
- `UpstreamBackend` (`_backend`): the `Backend` protocol on upstream KV v2 — tenantvault's
  own records, sealed, shared by every instance.
- `open_upstream` (`_open`): all of the above from a `vault+https://` URL and settings; the
  `UpstreamGateway` it attaches to the backend is what upstream-backed engines use.
"""

from __future__ import annotations

from tenantvault.upstream._auth import UpstreamAuth, UpstreamCredentials
from tenantvault.upstream._backend import (
    EPOCH_BLOCK,
    TENANT_CACHE_SECONDS,
    UpstreamBackend,
    UpstreamRecordsLocation,
)
from tenantvault.upstream._client import (
    DEFAULT_BREAKER_RESET_SECONDS,
    DEFAULT_BREAKER_THRESHOLD,
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_MAX_WAITING,
    DEFAULT_POOL_SIZE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    AttemptObserver,
    CircuitBreaker,
    UpstreamClient,
    UpstreamResponse,
    UpstreamSettings,
    map_status,
)
from tenantvault.upstream._open import UpstreamGateway, open_upstream, parse_upstream_url

__all__ = [
    "DEFAULT_BREAKER_RESET_SECONDS",
    "DEFAULT_BREAKER_THRESHOLD",
    "DEFAULT_CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_MAX_WAITING",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_SECONDS",
    "EPOCH_BLOCK",
    "TENANT_CACHE_SECONDS",
    "AttemptObserver",
    "CircuitBreaker",
    "UpstreamAuth",
    "UpstreamBackend",
    "UpstreamClient",
    "UpstreamCredentials",
    "UpstreamGateway",
    "UpstreamRecordsLocation",
    "UpstreamResponse",
    "UpstreamSettings",
    "map_status",
    "open_upstream",
    "parse_upstream_url",
]
