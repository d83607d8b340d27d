"""A tenantvault app whose tenants' `secret/` and `transit/` live in a real OpenBao, for the
server suites re-run on the upstream (`test_engines_server.py`) and the engine tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault.backends._memory import MemoryBackend
from tenantvault.server import TenantVaultApp, create_app
from tenantvault.upstream import UpstreamClient, UpstreamSettings
from tenantvault.upstream._tenancy import NamespaceTenancy, PrefixTenancy, Tenancy
from tenantvault.upstream.engines import Gateway
from tests._openbao import OpenBaoDev, unique_root

STRATEGIES = ["namespace", "prefix"]


def tenancy_for(strategy: str, root: str | None = None) -> Tenancy:
    """A tenancy of `strategy` under a root no other test uses."""
    root = root or unique_root("g")
    if strategy == "namespace":
        return NamespaceTenancy(root)
    return PrefixTenancy(root)


@asynccontextmanager
async def gateway_app(
    settings: ServerSettings,
    server: OpenBaoDev,
    tenancy: Tenancy,
    *,
    client_settings: UpstreamSettings | None = None,
    service_token: str | None = None,
    **gateway: Any,
) -> AsyncIterator[tuple[TenantVaultApp, Gateway]]:
    """The ASGI app over a memory record store, tenants' data upstream in `server` (or at
    `client_settings.address`, e.g. a fault proxy in front of it).

    tenantvault's own upstream token is `service_token`, else the dev server's root token;
    the tenants' requests go upstream with tenant-scoped tokens only.
    """
    async with UpstreamClient(client_settings or UpstreamSettings(server.addr)) as client:
        own = service_token or server.root_token
        upstream = Gateway(client, tenancy, lambda: own, **gateway)

        async def factory() -> Core:
            core = Core(MemoryBackend(), gateway=upstream)
            await core.start()
            return core

        async with create_app(settings, core_factory=factory) as started:
            yield started, upstream
