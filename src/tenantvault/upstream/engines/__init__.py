"""Upstream-backed engines: tenants' KV v2 and transit served by a Vault/OpenBao upstream.

- `Gateway` (`_gateway`): each tenant's place upstream, made and removed with the tenant,
  and the one path of tenant requests upstream, with tenant-scoped tokens (`_scoped`).
- `UpstreamKV`, `UpstreamTransit` (`_types`): the engine types registered in gateway mode.
- `UpstreamPKI` (`_pki`): tenants' pki mounts, OpenBao's own pki in their namespaces.
- `PassthroughEngine` (`_passthrough`): every other engine type, the upstream's own, mounted
  in the tenant's upstream namespace (namespace strategy).
- `_forward`: one operation forwarded, and the upstream's answer in our terms.
"""

from __future__ import annotations

from tenantvault.backends._protocol import Backend
from tenantvault.engines._protocol import Engine
from tenantvault.engines.kv_v1 import KVType
from tenantvault.engines.pki import PKIEngine
from tenantvault.engines.transit import TransitEngine
from tenantvault.upstream.engines._gateway import Gateway
from tenantvault.upstream.engines._passthrough import PassthroughEngine
from tenantvault.upstream.engines._pki import UpstreamPKI
from tenantvault.upstream.engines._scoped import DEFAULT_TOKEN_PERIOD_SECONDS, ScopedTokens
from tenantvault.upstream.engines._types import UpstreamKV, UpstreamTransit

__all__ = [
    "DEFAULT_TOKEN_PERIOD_SECONDS",
    "Gateway",
    "PassthroughEngine",
    "ScopedTokens",
    "UpstreamKV",
    "UpstreamPKI",
    "UpstreamTransit",
    "engine_types",
    "gateway_for",
]


def engine_types(
    gateway: Gateway, kv: KVType, transit: TransitEngine, pki: PKIEngine
) -> dict[str, Engine]:
    """The engine types of a Core in gateway mode, by type name."""
    return {
        UpstreamKV.type: UpstreamKV(kv, gateway),
        UpstreamTransit.type: UpstreamTransit(transit, gateway),
        UpstreamPKI.type: UpstreamPKI(pki, gateway),
    }


def gateway_for(backend: Backend) -> Gateway | None:
    """The gateway over a vault backend (`UpstreamBackend.gateway`); None for the embedded
    backends and for `engines=embedded`: `Core(backend, gateway=gateway_for(backend))`
    serves tenants' `secret/` and `transit/` with the upstream's own engines."""
    upstream = getattr(backend, "gateway", None)
    if upstream is None or upstream.engines == "embedded":
        # Embedded engines: their records, sealed by tenantvault, live in the upstream KV.
        return None
    return Gateway.from_upstream(upstream)
