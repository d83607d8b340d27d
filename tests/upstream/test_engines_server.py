"""The KV and transit server suites, unchanged, with tenants' data in a real OpenBao: the
answers a client sees are the embedded store's in both tenancy strategies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp
from tests._openbao import OpenBaoDev
from tests.server import test_kv as kv_suite
from tests.server.conftest import Vault, client, root_token, settings, vault
from tests.server.test_kv import *  # noqa: F403 — the same tests, here on the upstream
from tests.server.test_transit import *  # noqa: F403 — the same tests, here on the upstream
from tests.upstream._gateway_app import STRATEGIES, gateway_app, tenancy_for

__all__ = [
    "app",
    "client",
    "root_token",
    "settings",
    "test_cas_required_by_mount_config_upstream",
    "vault",
]


@pytest.fixture(params=STRATEGIES)
async def app(
    request: pytest.FixtureRequest, settings: ServerSettings, openbao_dev: OpenBaoDev
) -> AsyncIterator[TenantVaultApp]:
    """The server suites' app, its tenants' `secret/` and `transit/` upstream."""
    async with gateway_app(settings, openbao_dev, tenancy_for(str(request.param))) as (
        started,
        _,
    ):
        yield started


# Replaced below for the prefix strategy's documented difference.
del test_cas_required_by_mount_config  # noqa: F821 — star-imported from the server suite


async def test_cas_required_by_mount_config_upstream(
    vault: Vault, acme: str, request: pytest.FixtureRequest
) -> None:
    """The server suite's test; in the prefix strategy a mount-wide max_versions (which the
    shared upstream mount would have to hold for every tenant) is refused with the reason,
    a documented difference (README, prefix tenancy)."""
    if request.node.callspec.params["app"] == "namespace":
        await kv_suite.test_cas_required_by_mount_config(vault, acme)
        return
    refused = await vault.request(
        "POST",
        "secret/config",
        token=acme,
        namespace="acme",
        json={"cas_required": True, "max_versions": 3},
    )
    assert refused.status_code == 400
    assert "shared mount (prefix tenancy)" in refused.json()["errors"][0]
