"""Gateway mode, namespace strategy, on a real OpenBao: a tenant's pki mount is OpenBao's own
pki engine in the tenant's upstream namespace. Requests pass through with the tenant's scoped
token and come back as OpenBao gives them (compared with the same request sent to OpenBao
directly); tenantvault keeps authorization, audit and the tokenless fetches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tenantvault._config import ServerSettings
from tenantvault.upstream._tenancy import NamespaceTenancy
from tenantvault.upstream.engines import Gateway
from tests._openbao import OpenBaoDev
from tests.conftest import canary
from tests.server.conftest import BASE_URL, Vault
from tests.upstream._gateway_app import gateway_app, tenancy_for

MOUNT = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
ROOT = {"common_name": "Root CA", "key_type": "ec", "ttl": "8760h"}
ROLE = {"allowed_domains": ["example.com"], "allow_subdomains": True, "key_type": "ec"}
REVOKERS = 8


@pytest.fixture
async def namespaced(openbao_dev: OpenBaoDev) -> AsyncIterator[tuple[Vault, Gateway]]:
    root_token = canary("root-")
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with gateway_app(settings, openbao_dev, tenancy_for("namespace")) as (app, gateway):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            audit = await vault.root("PUT", "sys/audit/store", json={"type": "store"})
            assert audit.status_code == 204, audit.text
            yield vault, gateway


@pytest.fixture
async def direct(openbao_dev: OpenBaoDev) -> AsyncIterator[httpx.AsyncClient]:
    """OpenBao itself, spoken to with its root token (the operator's view)."""
    async with httpx.AsyncClient(base_url=openbao_dev.addr) as client:
        yield client


def _csr(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


def _namespace(gateway: Gateway, tenant: str) -> str:
    tenancy = gateway.tenancy
    assert isinstance(tenancy, NamespaceTenancy)
    return tenancy.namespace(tenant)


async def _upstream(
    direct: httpx.AsyncClient,
    server: OpenBaoDev,
    namespace: str,
    method: str,
    path: str,
    *,
    token: bool = True,
    json: Any = None,
) -> httpx.Response:
    headers = {"X-Vault-Namespace": namespace}
    if token:
        headers["X-Vault-Token"] = server.root_token
    return await direct.request(method, f"/v1/{path}", headers=headers, json=json)


async def _ca(vault: Vault) -> dict[str, Any]:
    await vault.create_tenant("acme")
    enabled = await vault.root("POST", "sys/mounts/pki", namespace="acme", json=MOUNT)
    assert enabled.status_code == 204, enabled.text
    made = await vault.root("POST", "pki/root/generate/internal", namespace="acme", json=ROOT)
    assert made.status_code == 200, made.text
    role = await vault.root("POST", "pki/roles/web", namespace="acme", json=ROLE)
    assert role.status_code == 200, role.text
    data: dict[str, Any] = made.json()["data"]
    return data


async def test_the_ca_and_certificates_are_openbaos_own(
    namespaced: tuple[Vault, Gateway], direct: httpx.AsyncClient, openbao_dev: OpenBaoDev
) -> None:
    """The mount, its CA, roles and issued certificates live in OpenBao, in the tenant's
    namespace; refusals come back with OpenBao's status and text."""
    vault, gateway = namespaced
    namespace = _namespace(gateway, "acme")
    root = await _ca(vault)
    mounts = await _upstream(direct, openbao_dev, namespace, "GET", "sys/mounts")
    assert mounts.json()["data"]["pki/"]["type"] == "pki"
    upstream_ca = await _upstream(direct, openbao_dev, namespace, "GET", "pki/cert/ca")
    assert upstream_ca.json()["data"]["certificate"].strip() == root["certificate"].strip()
    assert (await _upstream(direct, openbao_dev, namespace, "GET", "pki/roles/web")).is_success

    issued = await vault.root(
        "POST", "pki/issue/web", namespace="acme", json={"common_name": "api.example.com"}
    )
    assert issued.status_code == 200, issued.text
    leaf = issued.json()["data"]
    stored = await _upstream(
        direct, openbao_dev, namespace, "GET", f"pki/cert/{leaf['serial_number']}"
    )
    assert stored.json()["data"]["certificate"].strip() == leaf["certificate"].strip()

    for method, path, body in (
        ("POST", "pki/issue/web", {"common_name": "api.other.com"}),
        ("POST", "pki/issue/none", {"common_name": "api.example.com"}),
        ("GET", "pki/issuer/nonexist/json", None),
        ("POST", "pki/roles/bad", {"key_type": "rsa", "key_bits": 1024}),
        ("GET", "pki/issuer/default/crl/delta", None),  # OpenBao's own delta CRL
        ("GET", "pki/config/crl", None),
    ):
        ours = await vault.root(method, path, namespace="acme", json=body)
        theirs = await _upstream(direct, openbao_dev, namespace, method, path, json=body)
        assert ours.status_code == theirs.status_code, (path, ours.text, theirs.text)
        if theirs.headers.get("content-type") == "application/json":
            assert ours.json().get("errors") == theirs.json().get("errors"), path

    # sign-verbatim is OpenBao's own here: a tenant's pki mount lives upstream.
    verbatim = await vault.root(
        "POST", "pki/sign-verbatim", namespace="acme", json={"csr": _csr("svc.other.org")}
    )
    assert verbatim.status_code == 200, verbatim.text
    signed = x509.load_pem_x509_certificate(verbatim.json()["data"]["certificate"].encode())
    names = signed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["svc.other.org"]

    disabled = await vault.root("DELETE", "sys/mounts/pki", namespace="acme")
    assert disabled.status_code == 204, disabled.text
    mounts = await _upstream(direct, openbao_dev, namespace, "GET", "sys/mounts")
    assert "pki/" not in mounts.json()["data"]


async def test_fetches_without_a_token_answer_openbaos_files(
    namespaced: tuple[Vault, Gateway], direct: httpx.AsyncClient, openbao_dev: OpenBaoDev
) -> None:
    """Without a token, tenantvault's fetch answers the same bytes and content type as
    OpenBao's own fetch of the tenant's namespace, and 204 where OpenBao has nothing."""
    vault, gateway = namespaced
    namespace = _namespace(gateway, "acme")
    await _ca(vault)
    issued = await vault.root(
        "POST", "pki/issue/web", namespace="acme", json={"common_name": "api.example.com"}
    )
    serial = issued.json()["data"]["serial_number"]
    revoked = await vault.root(
        "POST", "pki/revoke", namespace="acme", json={"serial_number": serial}
    )
    assert revoked.status_code == 200, revoked.text
    for path in (
        "ca",
        "ca/pem",
        "ca_chain",
        "crl",
        "crl/pem",
        "cert/ca",
        "cert/ca_chain",
        "issuer/default/pem",
        "issuer/default/der",
        "issuer/default/json",
        "issuer/default/crl/pem",
        "issuer/default/crl/der",
        f"cert/{serial}/raw",
        f"cert/{serial}/raw/pem",
        "cert/aa:bb/raw",
        "crl/delta",
        "crl/delta/pem",
        "issuer/default/crl/delta/der",
    ):
        ours = await vault.request("GET", f"pki/{path}", namespace="acme")
        theirs = await _upstream(direct, openbao_dev, namespace, "GET", f"pki/{path}", token=False)
        assert ours.status_code == theirs.status_code, (path, ours.text, theirs.text)
        assert ours.headers.get("content-type") == theirs.headers.get("content-type"), path
        if theirs.headers.get("content-type") == "application/json":
            assert ours.json()["data"] == theirs.json()["data"], path
        else:
            assert ours.content == theirs.content, path
    refused = await vault.request("GET", "pki/roles/web", namespace="acme")
    assert refused.status_code == 403


async def test_tenantvault_authorizes_and_audits(namespaced: tuple[Vault, Gateway]) -> None:
    """A token without pki policy is refused by tenantvault (the upstream never asked); the
    requests that passed are in the tenant's audit trail."""
    vault, _ = namespaced
    await _ca(vault)
    token = (await vault.create_token("acme", ["default"]))["client_token"]
    refused = await vault.request(
        "POST", "pki/issue/web", token=token, json={"common_name": "a.example.com"}
    )
    assert refused.status_code == 403
    events = await vault.root(
        "GET",
        "sys/audit/events",
        params={"tenant": "acme", "path_prefix": "pki/", "limit": "1000"},
    )
    paths = {event["request"].get("path") for event in events.json()["data"]["events"]}
    assert {"pki/root/generate/internal", "pki/issue/web"} <= paths, paths


async def test_concurrent_revokes_through_the_gateway_all_reach_openbaos_crl(
    namespaced: tuple[Vault, Gateway],
) -> None:
    """Many revokes at once through the gateway: every serial in OpenBao's CRL."""
    vault, _ = namespaced
    await _ca(vault)
    serials = []
    for number in range(REVOKERS):
        issued = await vault.root(
            "POST",
            "pki/issue/web",
            namespace="acme",
            json={"common_name": f"s{number}.example.com"},
        )
        serials.append(issued.json()["data"]["serial_number"])
    answers = await asyncio.gather(
        *(
            vault.root("POST", "pki/revoke", namespace="acme", json={"serial_number": serial})
            for serial in serials
        )
    )
    assert [answer.status_code for answer in answers] == [200] * REVOKERS
    crl = x509.load_der_x509_crl((await vault.request("GET", "pki/crl", namespace="acme")).content)
    assert {entry.serial_number for entry in crl} == {
        int(serial.replace(":", ""), 16) for serial in serials
    }


async def test_with_the_prefix_strategy_pki_stays_embedded(openbao_dev: OpenBaoDev) -> None:
    """No per-tenant place upstream: the tenant's pki mount is tenantvault's own engine, its
    CA served (without a token too) from sealed records."""
    root_token = canary("root-")
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with gateway_app(settings, openbao_dev, tenancy_for("prefix")) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            root = await _ca(vault)
            fetched = await vault.request("GET", "pki/ca/pem", namespace="acme")
            assert fetched.status_code == 200, fetched.text
            assert x509.load_pem_x509_certificate(fetched.content) == (
                x509.load_pem_x509_certificate(root["certificate"].encode())
            )
