"""`sys/metrics` over HTTP: the Prometheus text parses, counters move by exactly the requests
made, a tenant's admin reads only its own tenant's series, the server view needs sudo, and
the operator's switches (unauthenticated access, observability off) do what they say."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp, create_app
from tests.server.conftest import ADMIN_POLICY, BASE_URL, Vault

OBSERVER_POLICY = (
    ADMIN_POLICY
    + """
path "sys/metrics" { capabilities = ["read"] }
path "sys/alerts" { capabilities = ["read"] }
path "sys/dashboard" { capabilities = ["read"] }
"""
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, sorted labels); parsed by prometheus_client."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(vault: Vault, token: str, namespace: str | None = None) -> Samples:
    response = await vault.request(
        "GET", "sys/metrics", token=token, namespace=namespace, params={"format": "prometheus"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def tenant_observer(vault: Vault, tenant: str) -> str:
    await vault.create_tenant(tenant)
    await vault.write_policy(tenant, "observer", OBSERVER_POLICY)
    return str((await vault.create_token(tenant, ["observer"]))["client_token"])


async def test_counters_rise_by_exactly_the_requests_made(vault: Vault) -> None:
    """After N reads, N denials and N misses, each matching counter rose by exactly N."""
    token = await tenant_observer(vault, "acme")
    await vault.put("acme", "app/db", {"password": "x"}, token=token)
    reader = await vault.create_token("acme", ["default"])
    before = await scrape(vault, vault.root_token)
    n = 7
    for _ in range(n):
        assert (await vault.request("GET", "secret/data/app/db", token=token)).status_code == 200
        denied = await vault.request("GET", "secret/data/app/db", token=reader["client_token"])
        assert denied.status_code == 403
        assert (await vault.request("GET", "secret/data/nope", token=token)).status_code == 404
    after = await scrape(vault, vault.root_token)
    labels = {"operation": "read", "mount": "secret", "tenant": "acme"}
    for outcome in ("success", "denied", "invalid"):
        rose = value(after, "tenantvault_requests_total", outcome=outcome, **labels) - value(
            before, "tenantvault_requests_total", outcome=outcome, **labels
        )
        assert rose == n, outcome
    denials = value(after, "tenantvault_authorization_denials_total", tenant="acme") - value(
        before, "tenantvault_authorization_denials_total", tenant="acme"
    )
    assert denials == n
    count = "tenantvault_request_duration_seconds_count"
    latency = value(after, count, operation="read", mount="secret", tenant="acme") - value(
        before, count, operation="read", mount="secret", tenant="acme"
    )
    assert latency == 3 * n
    # Process metrics come from prometheus_client's collectors on the Core's own registry.
    assert any(name == "process_cpu_seconds_total" for name, _ in after)


async def test_json_is_the_default_and_an_unknown_format_is_refused(vault: Vault) -> None:
    """Without `format`, Vault's JSON dump; `format=xml` is a 400 naming the format."""
    await vault.root("GET", "sys/mounts")
    response = await vault.root("GET", "sys/metrics")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"Timestamp", "Gauges", "Counters", "Samples", "Points"}
    assert any(c["Name"] == "tenantvault_requests_total" for c in body["Counters"])
    refused = await vault.root("GET", "sys/metrics", params={"format": "xml"})
    assert refused.status_code == 400
    assert refused.json() == {"errors": ['metric response format "xml" unknown']}


async def test_a_tenant_admin_reads_only_its_own_series(vault: Vault) -> None:
    """acme's admin sees acme's numbers and nothing of beta; beta without the policy: 403."""
    acme = await tenant_observer(vault, "acme")
    await vault.create_tenant("beta-secretive")
    beta = await vault.tenant_admin("beta-secretive")
    await vault.put("beta-secretive", "app/x", {"v": "1"}, token=beta)
    await vault.put("acme", "app/y", {"v": "1"}, token=acme)
    for _ in range(3):
        await vault.request("GET", "secret/data/app/y", token=acme)
    response = await vault.request(
        "GET", "sys/metrics", token=acme, params={"format": "prometheus"}
    )
    assert response.status_code == 200
    assert "beta-secretive" not in response.text
    samples = parse(response.text)
    tenants = {dict(labels).get("tenant") for _, labels in samples} - {None}
    assert tenants == {"acme"}
    assert (
        value(
            samples,
            "tenantvault_requests_total",
            operation="read",
            mount="secret",
            outcome="success",
            tenant="acme",
        )
        == 3
    )
    # Neither the server view's families nor process metrics are a tenant's to read.
    assert not any(name.startswith(("process_", "tenantvault_audit")) for name, _ in samples)
    json_view = await vault.request("GET", "sys/metrics", token=acme)
    assert "beta-secretive" not in json_view.text
    # Another tenant's admin without a grant on sys/metrics is refused.
    assert (await vault.request("GET", "sys/metrics", token=beta)).status_code == 403
    # And a tenant token cannot name the other tenant to read its series.
    crossed = await vault.request("GET", "sys/metrics", token=acme, namespace="beta-secretive")
    assert crossed.status_code == 403


async def test_the_server_view_needs_sudo(vault: Vault) -> None:
    """A root-namespace token with `read` but no `sudo` on sys/metrics is refused."""
    await vault.write_policy(None, "reader", 'path "sys/metrics" { capabilities = ["read"] }')
    await vault.write_policy(
        None, "scraper", 'path "sys/metrics" { capabilities = ["read", "sudo"] }'
    )
    reader = (await vault.create_token(None, ["reader"]))["client_token"]
    scraper = (await vault.create_token(None, ["scraper"]))["client_token"]
    assert (await vault.request("GET", "sys/metrics", token=reader)).status_code == 403
    assert (await vault.request("GET", "sys/metrics", token=scraper)).status_code == 200
    # No token: refused unless the operator allows it.
    assert (await vault.request("GET", "sys/metrics")).status_code == 403


@pytest.fixture
async def open_metrics(root_token: str) -> AsyncIterator[tuple[TenantVaultApp, httpx.AsyncClient]]:
    settings = ServerSettings(dev=True, dev_root_token=root_token, metrics_unauthenticated=True)
    async with create_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield app, client


async def test_unauthenticated_metrics_when_the_operator_enables_it(
    open_metrics: tuple[TenantVaultApp, httpx.AsyncClient], root_token: str
) -> None:
    """`--metrics-unauthenticated`: GET without a token answers (text or JSON), other
    methods 405; a request with a token still goes through the Core (and its checks)."""
    _, client = open_metrics
    text = await client.get("/v1/sys/metrics", params={"format": "prometheus"})
    assert text.status_code == 200
    assert "tenantvault_requests_total" in text.text
    parse(text.text)
    as_json = await client.get("/v1/sys/metrics")
    assert as_json.status_code == 200
    assert "Counters" in as_json.json()
    assert (await client.post("/v1/sys/metrics", content=b"{}")).status_code == 405
    bad = await client.get("/v1/sys/metrics", headers={"X-Vault-Token": "not-a-token"})
    assert bad.status_code == 403


async def test_observability_off_counts_nothing(root_token: str) -> None:
    """`--no-observability` (the bench's off switch): requests are not counted."""
    settings = ServerSettings(dev=True, dev_root_token=root_token, observability=False)
    async with create_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            for _ in range(3):
                await vault.root("GET", "sys/mounts")
            samples = await scrape(vault, root_token)
    assert not [key for key in samples if key[0] == "tenantvault_requests_total"]


async def test_cross_tenant_attempts_count_for_the_tokens_own_tenant(vault: Vault) -> None:
    """acme's token naming beta's namespace: refused, and counted as acme's cross-tenant
    attempt, in the server view and in acme's own (which never names beta)."""
    acme = await tenant_observer(vault, "acme")
    await vault.create_tenant("beta-target")
    before = await scrape(vault, vault.root_token)
    for _ in range(4):
        crossed = await vault.request("GET", "secret/data/x", token=acme, namespace="beta-target")
        assert crossed.status_code == 403
    after = await scrape(vault, vault.root_token)
    name = "tenantvault_cross_tenant_attempts_total"
    assert value(after, name, tenant="acme") - value(before, name, tenant="acme") == 4
    own = await vault.request("GET", "sys/metrics", token=acme, params={"format": "prometheus"})
    assert value(parse(own.text), name, tenant="acme") == 4
    assert "beta-target" not in own.text
