"""PKI's fetch endpoints without a token (OpenBao's PathsSpecial.Unauthenticated of pki): the
CA, chain, CRL and stored certificates reach openssl, browsers and CRL fetchers in the tenant
the namespace names; everything else still needs a token; each fetch is audited. Statuses and
texts were checked against OpenBao 2.7.2 (`bao server -dev`, curl without a token)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.server.conftest import Vault
from tests.server.test_pki import ROLE, cert_of, mount_pki, ok, root_ca

# Every path OpenBao serves without a token that we serve (GET), and what it answers.
CA_DER = ("ca", "issuer/default/der", "cert/ca/raw")
CA_PEM = ("ca/pem", "ca_chain", "issuer/default/pem", "cert/ca/raw/pem")
CRL_DER = ("crl", "issuer/default/crl/der")
CRL_PEM = ("crl/pem", "issuer/default/crl/pem")
JSON = ("cert/ca", "cert/ca_chain", "cert/crl", "issuer/default/json", "issuer/default/crl")
FETCHES = (*CA_DER, *CA_PEM, *CRL_DER, *CRL_PEM, *JSON)


async def _tenant_with_leaf(vault: Vault, tenant: str) -> dict[str, Any]:
    """A tenant with a pki mount, a root CA, a role and one revoked leaf; the CA and leaf."""
    await vault.create_tenant(tenant)
    await mount_pki(vault, namespace=tenant)
    root = await root_ca(vault, namespace=tenant)
    await ok(await vault.root("POST", "pki/roles/web", namespace=tenant, json=ROLE))
    leaf = (
        await ok(
            await vault.root(
                "POST", "pki/issue/web", namespace=tenant, json={"common_name": "a.example.com"}
            )
        )
    )["data"]
    await ok(
        await vault.root(
            "POST", "pki/revoke", namespace=tenant, json={"serial_number": leaf["serial_number"]}
        )
    )
    return {"root": root, "leaf": leaf}


def _check_fetch(path: str, answer: httpx.Response, root: x509.Certificate) -> None:
    """The fetch answered the CA certificate or a CRL it signed, in the form of its path."""
    key = root.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    body = answer.content
    if path in CA_DER:
        assert x509.load_der_x509_certificate(body) == root, path
    elif path in CA_PEM:
        assert x509.load_pem_x509_certificates(body)[0] == root, path
    elif path in CRL_DER:
        assert x509.load_der_x509_crl(body).is_signature_valid(key), path
    elif path in CRL_PEM:
        assert x509.load_pem_x509_crl(body).is_signature_valid(key), path
    else:
        data = answer.json()["data"]
        if "crl" in data:
            assert x509.load_pem_x509_crl(data["crl"].encode()).is_signature_valid(key)
        elif path == "cert/crl":
            assert x509.load_pem_x509_crl(data["certificate"].encode()).is_signature_valid(key)
        else:
            assert x509.load_pem_x509_certificate(data["certificate"].encode()) == root, path


@pytest.mark.parametrize("form", ["header", "path"])
async def test_fetches_need_no_token_and_answer_the_named_tenant(vault: Vault, form: str) -> None:
    """Without a token, each fetch answers the CA of the tenant the namespace header (or the
    `/v1/<ns>/` prefix) names, never another tenant's with a same-named mount."""
    acme = await _tenant_with_leaf(vault, "acme")
    other = await _tenant_with_leaf(vault, "other")
    assert acme["root"]["certificate"] != other["root"]["certificate"]
    for tenant, made in (("acme", acme), ("other", other)):
        root = cert_of(made["root"]["certificate"])
        serial = made["leaf"]["serial_number"]
        leaf = cert_of(made["leaf"]["certificate"])
        for path in (*FETCHES, f"cert/{serial}", f"cert/{serial}/raw", f"cert/{serial}/raw/pem"):
            if form == "header":
                answer = await vault.request("GET", f"pki/{path}", namespace=tenant)
            else:
                answer = await vault.request("GET", f"{tenant}/pki/{path}")
            assert answer.status_code == 200, (path, answer.text)
            # As OpenBao marks every answer: a CRL or a certificate no proxy may keep either.
            assert answer.headers.get_list("cache-control") == ["no-store"], path
            if path in FETCHES:
                _check_fetch(path, answer, root)
            elif path == f"cert/{serial}":
                data = answer.json()["data"]
                assert cert_of(data["certificate"]) == leaf
                assert data["revocation_time"] > 0
            elif path.endswith("/raw"):
                assert x509.load_der_x509_certificate(answer.content) == leaf
            else:
                assert x509.load_pem_x509_certificate(answer.content) == leaf
        listing = await vault.request("LIST", "pki/issuers", namespace=tenant)
        assert listing.status_code == 200, listing.text
        assert listing.json()["data"]["keys"] == [made["root"]["issuer_id"]]


async def test_a_token_that_does_not_authenticate_is_ignored(vault: Vault) -> None:
    """As OpenBao: a bogus token on a fetch is ignored (200), and still refused elsewhere."""
    await _tenant_with_leaf(vault, "acme")
    fetched = await vault.request("GET", "pki/ca/pem", token="bogus", namespace="acme")
    assert fetched.status_code == 200
    refused = await vault.request("GET", "pki/roles/web", token="bogus", namespace="acme")
    assert (refused.status_code, refused.json()) == (403, {"errors": ["permission denied"]})


async def test_a_tenant_token_fetches_its_own_ca_without_a_capability(vault: Vault) -> None:
    """A tenant token with no pki policy fetches its own tenant's CA (no header needed; Vault
    checks no ACL on these paths), but still cannot read a role."""
    made = await _tenant_with_leaf(vault, "acme")
    token = (await vault.create_token("acme", ["default"]))["client_token"]
    answer = await vault.request("GET", "pki/ca/pem", token=token)
    assert answer.status_code == 200, answer.text
    assert x509.load_pem_x509_certificate(answer.content) == cert_of(made["root"]["certificate"])
    refused = await vault.request("GET", "pki/roles/web", token=token)
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "pki/roles/web"),
        ("LIST", "pki/roles"),
        ("LIST", "pki/certs"),
        ("GET", "pki/issuer/default"),
        ("GET", "pki/config/urls"),
        ("GET", "pki/config/issuers"),
        ("GET", "pki/crl/rotate"),
        ("POST", "pki/issue/web"),
        ("POST", "pki/revoke"),
        ("POST", "pki/root/generate/internal"),
        ("POST", "pki/tidy"),
        ("GET", "secret/data/x"),
    ],
)
async def test_everything_else_still_needs_a_token(vault: Vault, method: str, path: str) -> None:
    """Outside the declared paths, no token is OpenBao's 403 "permission denied"."""
    await _tenant_with_leaf(vault, "acme")
    body = {"common_name": "a.example.com", "serial_number": "aa"} if method == "POST" else None
    answer = await vault.request(method, path, namespace="acme", json=body)
    assert (answer.status_code, answer.json()) == (403, {"errors": ["permission denied"]})


async def test_other_operations_on_a_fetch_path_are_unsupported(vault: Vault) -> None:
    """As OpenBao: the path is unauthenticated whatever the method; a write there is 405."""
    await _tenant_with_leaf(vault, "acme")
    for method, path in (("POST", "pki/ca/pem"), ("DELETE", "pki/crl"), ("POST", "pki/cert/ca")):
        answer = await vault.request(method, path, namespace="acme", json={})
        assert (answer.status_code, answer.json()) == (
            405,
            {"errors": ["unsupported operation"]},
        ), (method, path)


async def test_unknown_tenants_and_mounts_reveal_nothing(vault: Vault) -> None:
    """No such mount, a mount of another type, or no such tenant (header or path form): the
    same 403 "permission denied", so a caller without a token cannot tell tenants apart."""
    await _tenant_with_leaf(vault, "acme")
    await vault.create_tenant("empty")
    for namespace, path in (
        ("acme", "nopki/ca/pem"),
        ("acme", "secret/ca/pem"),
        ("empty", "pki/ca/pem"),
        ("nosuch", "pki/ca/pem"),
        ("acme/child", "pki/ca/pem"),
        (None, "nosuch/pki/ca/pem"),
        (None, "pki/ca/pem"),  # the root namespace has no pki mount
    ):
        answer = await vault.request("GET", path, namespace=namespace)
        assert (answer.status_code, answer.json()) == (403, {"errors": ["permission denied"]}), (
            namespace,
            path,
        )


async def test_a_mount_without_a_ca_answers_as_openbao(vault: Vault) -> None:
    """Before any CA: the raw fetches 204, `cert/ca` 400 and `cert/crl` 500, no token sent."""
    await vault.create_tenant("acme")
    await mount_pki(vault, namespace="acme")
    for path in ("ca", "ca/pem", "ca_chain", "crl", "crl/pem"):
        assert (await vault.request("GET", f"pki/{path}", namespace="acme")).status_code == 204
    answer = await vault.request("GET", "pki/cert/ca", namespace="acme")
    assert (answer.status_code, answer.json()) == (
        400,
        {"errors": ["no default issuer currently configured"]},
    )
    answer = await vault.request("GET", "pki/cert/crl", namespace="acme")
    assert answer.status_code == 500
    for path in ("issuer/default/pem", "issuer/default/json", "issuer/default/crl"):
        answer = await vault.request("GET", f"pki/{path}", namespace="acme")
        assert (answer.status_code, answer.json()) == (
            500,
            {"errors": ["no default issuer currently configured"]},
        ), path
    unknown = await vault.request("GET", "pki/cert/00:11", namespace="acme")
    assert unknown.status_code == 404
    assert (await vault.request("GET", "pki/cert/00:11/raw", namespace="acme")).status_code == 204


async def test_an_unknown_issuer_answers_as_openbao(vault: Vault) -> None:
    """`issuer/<ref>/pem` of no such issuer: OpenBao's 500 with its text, no token sent."""
    await _tenant_with_leaf(vault, "acme")
    for path in ("issuer/nonexist/pem", "issuer/nonexist/der", "issuer/nonexist/crl/pem"):
        answer = await vault.request("GET", f"pki/{path}", namespace="acme")
        assert (answer.status_code, answer.json()) == (
            500,
            {"errors": ["unable to find PKI issuer for reference: nonexist"]},
        ), path


async def test_fetches_are_audited_as_anonymous(vault: Vault) -> None:
    """Each tokenless fetch is audited (request and response, root sees them), recorded under
    no tenant as every tokenless request is: strangers cannot write into a tenant's trail."""
    await _tenant_with_leaf(vault, "acme")
    fetched = await vault.request("GET", "pki/ca/pem", namespace="acme")
    assert fetched.status_code == 200
    request_id = fetched.headers["x-request-id"]
    everything = await vault.root("GET", "sys/audit/events", params={"limit": "1000"})
    entries = [entry for entry in everything.json()["data"]["events"] if request_id in str(entry)]
    assert {entry["type"] for entry in entries} == {"request", "response"}, entries
    own = await vault.root("GET", "sys/audit/events", namespace="acme", params={"limit": "1000"})
    assert request_id not in own.text
