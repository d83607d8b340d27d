"""Upstream-backed KV and transit on a real OpenBao, in both tenancy strategies: tenant data
is real upstream data, each tenant's upstream token reaches only that tenant, and a wrong
mapping is refused by the upstream itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault.backends import open_backend
from tenantvault.crypto import random_key
from tenantvault.server import create_app
from tenantvault.upstream._tenancy import NamespaceTenancy, PrefixTenancy, Tenancy
from tenantvault.upstream.engines import Gateway, gateway_for
from tests._openbao import OpenBaoDev, unique_root
from tests.conftest import canary
from tests.integration._support import BaoCLI, bao_executable
from tests.server.conftest import BASE_URL, Vault
from tests.upstream._gateway_app import STRATEGIES, gateway_app, tenancy_for


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Upstream:
    """tenantvault in front of OpenBao: the test client, the gateway, the raw upstream."""

    vault: Vault
    gateway: Gateway
    server: OpenBaoDev
    clock: _Clock

    @property
    def tenancy(self) -> Tenancy:
        return self.gateway.tenancy

    def direct(self, token: str | None = None) -> httpx.AsyncClient:
        """A client straight to the upstream (an operator's view, or a tenant token's)."""
        return httpx.AsyncClient(
            base_url=self.server.addr,
            headers={"X-Vault-Token": token or self.server.root_token},
        )


@pytest.fixture(params=STRATEGIES)
async def upstream(
    request: pytest.FixtureRequest, openbao_dev: OpenBaoDev, root_token: str
) -> AsyncIterator[Upstream]:
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    clock = _Clock()
    tenancy = tenancy_for(str(request.param))
    async with gateway_app(settings, openbao_dev, tenancy, clock=clock) as (app, gateway):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Upstream(Vault(client, root_token), gateway, openbao_dev, clock)


@pytest.fixture
def root_token() -> str:
    return canary("root-")


def _bao(server: OpenBaoDev, home: Path) -> BaoCLI:
    return BaoCLI(bao_executable(), server.addr, home)


async def test_a_secret_written_through_tenantvault_is_readable_upstream_with_bao(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Acceptance 2: the operator reads a tenant's secret with OpenBao's own CLI."""
    secret = canary("kv-")
    await upstream.vault.create_tenant("acme")
    await upstream.vault.put("acme", "app/db", {"password": secret})
    bao = _bao(upstream.server, tmp_path)
    tenancy = upstream.tenancy
    if isinstance(tenancy, NamespaceTenancy):
        args = ["kv", "get", "-format=json", "secret/app/db"]
        namespace: str | None = tenancy.namespace("acme")
    else:
        args = ["kv", "get", "-format=json", "-mount=secret", f"{tenancy.root}/acme/app/db"]
        namespace = None
    result = bao.run(*args, token=upstream.server.root_token, namespace=namespace)
    assert result.code == 0, result.text
    assert json.loads(result.out)["data"]["data"] == {"password": secret}


async def test_a_ciphertext_from_tenantvault_decrypts_upstream(upstream: Upstream) -> None:
    await upstream.vault.create_tenant("acme")
    encrypted = await upstream.vault.root(
        "POST", "transit/encrypt/pii", namespace="acme", json={"plaintext": "aGVsbG8="}
    )
    assert encrypted.status_code == 200, encrypted.text
    ciphertext = encrypted.json()["data"]["ciphertext"]
    assert ciphertext.startswith("vault:v1:")
    placement = upstream.tenancy.transit("acme", "decrypt/pii")
    async with upstream.direct() as direct:
        opened = await direct.post(
            f"/v1/{placement.path}",
            json={"ciphertext": ciphertext},
            headers={"X-Vault-Namespace": placement.namespace} if placement.namespace else {},
        )
    assert opened.status_code == 200, opened.text
    assert opened.json()["data"]["plaintext"] == "aGVsbG8="


async def test_a_tenant_token_reaches_nothing_of_another_tenant_upstream(
    upstream: Upstream,
) -> None:
    """Defense in depth: acme's upstream token is refused at globex's place by OpenBao."""
    await upstream.vault.create_tenant("acme")
    await upstream.vault.create_tenant("globex")
    await upstream.vault.put("globex", "db", {"password": canary("kv-")})
    acme_token = await upstream.gateway.tokens.get("acme")
    theirs = upstream.tenancy.kv("globex", "data/db")
    mine = upstream.tenancy.kv("acme", "data/db")
    async with upstream.direct(acme_token) as direct:
        headers = {"X-Vault-Namespace": theirs.namespace} if theirs.namespace else {}
        stolen = await direct.get(f"/v1/{theirs.path}", headers=headers)
        assert stolen.status_code == 403, stolen.text
        # The namespace as a path prefix instead of the header: refused the same.
        prefixed = "/".join(filter(None, (theirs.namespace, theirs.path)))
        assert (await direct.get(f"/v1/{prefixed}")).status_code == 403
        # Its own place it does reach (a 404: nothing written there yet).
        headers = {"X-Vault-Namespace": mine.namespace} if mine.namespace else {}
        own = await direct.get(f"/v1/{mine.path}", headers=headers)
        assert own.status_code == 404, own.text


async def test_a_wrong_mapping_is_refused_by_the_upstream_itself(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that maps acme's requests to globex's place reads and writes nothing there:
    the upstream refuses acme's token (403), and globex's secret is unchanged."""
    await upstream.vault.create_tenant("acme")
    await upstream.vault.create_tenant("globex")
    secret = canary("kv-")
    await upstream.vault.put("globex", "db", {"password": secret})
    tenancy = upstream.tenancy
    # The test-only hook: the one function every request mapping goes through.
    right = tenancy._placed

    def wrong(tenant: str) -> str:
        return right("globex" if tenant == "acme" else tenant)

    monkeypatch.setattr(tenancy, "_placed", wrong)
    read = await upstream.vault.root("GET", "secret/data/db", namespace="acme")
    assert read.status_code == 403, read.text
    assert secret not in read.text
    written = await upstream.vault.root(
        "POST", "secret/data/db", namespace="acme", json={"data": {"password": "overwritten"}}
    )
    assert written.status_code == 403, written.text
    monkeypatch.undo()
    kept = await upstream.vault.root("GET", "secret/data/db", namespace="globex")
    assert kept.json()["data"]["data"] == {"password": secret}
    assert kept.json()["data"]["metadata"]["version"] == 1


async def test_deleting_a_tenant_removes_its_data_upstream(upstream: Upstream) -> None:
    await upstream.vault.create_tenant("acme")
    await upstream.vault.put("acme", "app/db", {"password": canary("kv-")})
    key = await upstream.vault.root("POST", "transit/keys/pii", namespace="acme", json={})
    assert key.status_code in (200, 204), key.text
    deleted = await upstream.vault.root("DELETE", "sys/namespaces/acme")
    assert deleted.status_code in (200, 204), deleted.text
    kv = upstream.tenancy.kv("acme", "data/app/db")
    async with upstream.direct() as direct:
        headers = {"X-Vault-Namespace": kv.namespace} if kv.namespace else {}
        gone = await direct.get(f"/v1/{kv.path}", headers=headers)
        # The namespace strategy: the namespace itself is gone (so is its mount).
        assert gone.status_code == 404, gone.text
        if isinstance(upstream.tenancy, PrefixTenancy):
            names = await direct.request("LIST", "/v1/transit/keys")
            listed = names.json()["data"]["keys"] if names.status_code == 200 else []
            assert not [n for n in listed if n.startswith(upstream.tenancy.key_prefix("acme"))]
    # The same id again starts empty.
    await upstream.vault.create_tenant("acme")
    again = await upstream.vault.root("GET", "secret/data/app/db", namespace="acme")
    assert again.status_code == 404
    missing = await upstream.vault.root("GET", "transit/keys/pii", namespace="acme")
    assert missing.status_code == 404


async def test_a_revoked_tenant_token_is_replaced_without_an_error(upstream: Upstream) -> None:
    """An operator revoking a tenant's upstream token costs the tenant nothing."""
    await upstream.vault.create_tenant("acme")
    await upstream.vault.put("acme", "k", {"v": "1"})
    token = await upstream.gateway.tokens.get("acme")
    async with upstream.direct() as direct:
        revoked = await direct.post("/v1/auth/token/revoke", json={"token": token})
        assert revoked.status_code == 204, revoked.text
    read = await upstream.vault.root("GET", "secret/data/k", namespace="acme")
    assert read.status_code == 200, read.text
    assert await upstream.gateway.tokens.get("acme") != token


async def test_a_tenant_token_is_renewed_at_two_thirds_of_its_period(
    upstream: Upstream,
) -> None:
    await upstream.vault.create_tenant("acme")
    token = await upstream.gateway.tokens.get("acme")
    namespace = upstream.tenancy.token_namespace("acme")
    headers = {"X-Vault-Namespace": namespace} if namespace else {}

    async def expiry() -> str:
        async with upstream.direct() as direct:
            looked = await direct.post(
                "/v1/auth/token/lookup", json={"token": token}, headers=headers
            )
            assert looked.status_code == 200, looked.text
            return str(looked.json()["data"]["expire_time"])

    before = await expiry()
    upstream.clock.now += 3600 * 2 / 3 - 1
    await upstream.vault.put("acme", "k", {"v": "1"})
    assert await expiry() == before  # not due yet: no renewal
    upstream.clock.now += 2
    await upstream.vault.put("acme", "k", {"v": "2"})
    assert await upstream.gateway.tokens.get("acme") == token  # renewed, not replaced
    assert await expiry() > before


async def test_prefix_strategy_refuses_mount_settings_it_cannot_keep_per_tenant(
    openbao_dev: OpenBaoDev, root_token: str
) -> None:
    """max_versions and delete_version_after on the shared mount: 400 with the reason;
    cas_required is kept by tenantvault and enforced."""
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with gateway_app(settings, openbao_dev, tenancy_for("prefix")) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            await vault.create_tenant("acme")
            for name, value in (("max_versions", 3), ("delete_version_after", "1h")):
                refused = await vault.root(
                    "POST", "secret/config", namespace="acme", json={name: value}
                )
                assert refused.status_code == 400
                assert "shared mount (prefix tenancy)" in refused.json()["errors"][0]
            kept = await vault.root(
                "POST", "secret/config", namespace="acme", json={"cas_required": True}
            )
            assert kept.status_code == 204
            config = await vault.root("GET", "secret/config", namespace="acme")
            assert config.json()["data"]["cas_required"] is True
            blind = await vault.root(
                "POST", "secret/data/x", namespace="acme", json={"data": {"a": "b"}}
            )
            assert blind.status_code == 400
            assert blind.json()["errors"] == ["check-and-set parameter required for this call"]


async def test_concurrent_first_requests_of_a_tenant_share_one_new_token(
    upstream: Upstream,
) -> None:
    """Single flight: a burst of requests for a tenant without a cached token mints one
    upstream token, not one per request."""
    await upstream.vault.create_tenant("acme")
    upstream.gateway.tokens.forget("acme")
    tokens = await asyncio.gather(*(upstream.gateway.tokens.get("acme") for _ in range(20)))
    assert len(set(tokens)) == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_documented_service_policy_is_all_tenantvault_needs(
    strategy: str, openbao_dev: OpenBaoDev, root_token: str
) -> None:
    """tenantvault's own upstream token holding only `service_policy()` (the README's HCL)
    creates a tenant, serves its KV and transit, and deletes it again."""
    tenancy = tenancy_for(strategy)
    name = f"tenantvault-{tenancy.root}"
    async with httpx.AsyncClient(
        base_url=openbao_dev.addr, headers={"X-Vault-Token": openbao_dev.root_token}
    ) as operator:
        written = await operator.put(
            f"/v1/sys/policies/acl/{name}", json={"policy": tenancy.service_policy()}
        )
        assert written.status_code == 204, written.text
        if isinstance(tenancy, PrefixTenancy):
            # The operator's share of the prefix strategy: the shared mounts exist.
            await operator.post("/v1/sys/mounts/transit", json={"type": "transit"})
        minted = await operator.post(
            "/v1/auth/token/create", json={"policies": [name], "no_default_policy": True}
        )
        service_token = minted.json()["auth"]["client_token"]
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with gateway_app(settings, openbao_dev, tenancy, service_token=service_token) as (
        app,
        _,
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            await vault.create_tenant("acme")
            assert (await vault.put("acme", "k", {"v": "1"}))["version"] == 1
            encrypted = await vault.root(
                "POST", "transit/encrypt/pii", namespace="acme", json={"plaintext": "aGk="}
            )
            assert encrypted.status_code == 200, encrypted.text
            deleted = await vault.root("DELETE", "sys/namespaces/acme")
            assert deleted.status_code in (200, 204), deleted.text


async def test_input_the_upstream_would_accept_is_refused_as_on_the_embedded_store(
    upstream: Upstream,
) -> None:
    """OpenBao reads `cas: true` as cas=1 (P-5) and takes a caller's nonce (CVE-2023-4680):
    tenantvault refuses both before anything goes upstream, as the embedded engines do."""
    vault = upstream.vault
    await vault.create_tenant("acme")
    await vault.put("acme", "k", {"v": "1"})
    coerced = await vault.root(
        "POST",
        "secret/data/k",
        namespace="acme",
        json={"data": {"v": "2"}, "options": {"cas": True}},
    )
    assert coerced.status_code == 400, coerced.text
    metadata = await vault.root("GET", "secret/metadata/k", namespace="acme")
    assert metadata.json()["data"]["current_version"] == 1
    nonce = await vault.root(
        "POST",
        "transit/encrypt/pii",
        namespace="acme",
        json={"plaintext": "aGk=", "nonce": "AAAAAAAAAAAAAAAA"},
    )
    assert nonce.status_code == 400, nonce.text
    assert nonce.json()["errors"] == ["nonce provided when not allowed"]
    shape = await vault.root(
        "PUT", "secret/metadata/k", namespace="acme", json={"custom_metadata": {"n": 5}}
    )
    assert shape.status_code == 400, shape.text


async def test_a_bad_partial_failure_code_is_answered_not_sent_upstream(
    upstream: Upstream,
) -> None:
    """OpenBao drops the connection when asked to answer with status 42; tenantvault keeps
    400 and warns, as embedded — and no tenant can make the upstream look down this way."""
    vault = upstream.vault
    await vault.create_tenant("acme")
    await vault.root("POST", "transit/keys/k", namespace="acme", json={})
    batch = {
        "batch_input": [{"plaintext": "aGk="}, {"plaintext": "not base64!"}],
        "partial_failure_response_code": 42,
    }
    answered = await vault.root("POST", "transit/encrypt/k", namespace="acme", json=batch)
    assert answered.status_code == 400, answered.text
    assert "reverting to 400" in answered.json()["warnings"][0]
    assert len(answered.json()["data"]["batch_results"]) == 2


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_on_the_vault_backend_tenant_data_and_records_both_live_upstream(
    strategy: str, openbao_dev: OpenBaoDev, root_token: str, tmp_path: Path
) -> None:
    """The whole gateway: tenantvault's records in `UpstreamBackend`, tenants' `secret/`
    through `gateway_for(backend)`; the operator reads the secret with `bao`."""
    token_file = tmp_path / "upstream-token"
    token_file.write_text(openbao_dev.root_token)
    token_file.chmod(0o600)
    root = unique_root("e")
    url = f"{openbao_dev.backend_url}?root={root}&tenancy={strategy}&token_file={token_file}"

    async def factory() -> Core:
        backend = await open_backend(url, master_key=random_key())
        core = Core(backend, gateway=gateway_for(backend))
        await core.start()
        return core

    secret = canary("kv-")
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with create_app(settings, core_factory=factory) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            await vault.create_tenant("acme")
            await vault.put("acme", "app/db", {"password": secret})
    if strategy == "namespace":
        args, namespace = ["kv", "get", "-format=json", "secret/app/db"], f"{root}/acme"
    else:
        args, namespace = (
            ["kv", "get", "-format=json", "-mount=secret", f"{root}/acme/app/db"],
            None,
        )
    result = _bao(openbao_dev, tmp_path).run(
        *args, token=openbao_dev.root_token, namespace=namespace
    )
    assert result.code == 0, result.text
    assert json.loads(result.out)["data"]["data"] == {"password": secret}


async def test_disabling_secret_destroys_its_upstream_data(upstream: Upstream) -> None:
    """A tenant's `secret/` disabled and enabled again starts empty, upstream too."""
    vault = upstream.vault
    await vault.create_tenant("acme")
    await vault.put("acme", "k", {"v": canary("kv-")})
    disabled = await vault.root("DELETE", "sys/mounts/secret", namespace="acme")
    assert disabled.status_code == 204, disabled.text
    enabled = await vault.root(
        "POST",
        "sys/mounts/secret",
        namespace="acme",
        json={"type": "kv", "options": {"version": "2"}},
    )
    assert enabled.status_code == 204, enabled.text
    again = await vault.root("GET", "secret/data/k", namespace="acme")
    assert again.status_code == 404, again.text
    assert (await vault.put("acme", "k", {"v": "new"}))["version"] == 1


async def test_two_instances_on_one_vault_backend_serve_the_same_tenant(
    openbao_dev: OpenBaoDev, root_token: str, tmp_path: Path
) -> None:
    """Stateless instances: a tenant created and written through one instance is served
    by another (which mints its own scoped token from the tenant's upstream role)."""
    token_file = tmp_path / "upstream-token"
    token_file.write_text(openbao_dev.root_token)
    token_file.chmod(0o600)
    url = f"{openbao_dev.backend_url}?root={unique_root('m')}&token_file={token_file}"
    master_key = random_key()

    def factory() -> Callable[[], Awaitable[Core]]:
        async def open_core() -> Core:
            backend = await open_backend(url, master_key=master_key)
            core = Core(backend, gateway=gateway_for(backend))
            await core.start()
            return core

        return open_core

    secret = canary("kv-")
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with (
        create_app(settings, core_factory=factory()) as first,
        create_app(settings, core_factory=factory()) as second,
    ):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
            for app in (first, second)
        ]
        async with clients[0] as one, clients[1] as two:
            await Vault(one, root_token).create_tenant("acme")
            await Vault(one, root_token).put("acme", "k", {"v": secret})
            read = await Vault(two, root_token).root("GET", "secret/data/k", namespace="acme")
            assert read.status_code == 200, read.text
            assert read.json()["data"]["data"] == {"v": secret}
