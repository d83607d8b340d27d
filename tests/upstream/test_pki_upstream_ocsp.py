"""Gateway mode, namespace strategy, on a real OpenBao: a tenant's OCSP queries (`GET
ocsp/<base64>`, `POST ocsp` with a DER body) reach OpenBao's own responder in the tenant's
namespace, and its answers come back as it gives them — good, revoked after a revoke through
the gateway, its fixed error responses with their statuses — while tenantvault keeps the
audit trail."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tenantvault.upstream._tenancy import NamespaceTenancy
from tenantvault.upstream.engines import Gateway
from tests._ocsp import escaped, ocsp_der, with_empty_segment
from tests._openbao import OpenBaoDev
from tests.server.conftest import Vault
from tests.upstream.test_passthrough_serve import served
from tests.upstream.test_pki_upstream import MOUNT, ROLE, ROOT, direct, namespaced

# The fixtures, shared with test_pki_upstream and test_passthrough_serve.
__all__ = ["direct", "namespaced", "served"]

OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}
OCSP_RESPONSE = "application/ocsp-response"
# The DER of OpenBao's fixed unsuccessful responses: malformedRequest, unauthorized.
MALFORMED = bytes.fromhex("30030a0101")
UNAUTHORIZED = bytes.fromhex("30030a0106")


def _query(leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """The DER OCSP request for `leaf`, with openssl's default CertID hash (SHA-1)."""
    algorithm = hashes.SHA1()  # noqa: S303 -- names a certificate, secures nothing
    return ocsp_der(leaf, issuer, algorithm)


def _parsed(response: httpx.Response, status: int = 200) -> ocsp.OCSPResponse:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == OCSP_RESPONSE
    return ocsp.load_der_ocsp_response(response.content)


async def _get(
    vault: Vault, der: bytes, *, token: str | None = None, plain: bool = False
) -> httpx.Response:
    """`GET pki/ocsp/<base64>` through the gateway, without a token unless told (as openssl
    asks): the base64 URL-escaped as RFC 6960 says, or as is with `plain`."""
    tail = base64.b64encode(der).decode() if plain else escaped(der)
    return await vault.request("GET", f"pki/ocsp/{tail}", token=token, namespace="acme")


async def _post(vault: Vault, der: bytes, *, token: str | None = None) -> httpx.Response:
    """`POST pki/ocsp` through the gateway, the DER as the body, without a token unless told."""
    return await vault.request(
        "POST", "pki/ocsp", token=token, namespace="acme", content=der, headers=OCSP_REQUEST
    )


async def _openbaos(direct: httpx.AsyncClient, gateway: Gateway, der: bytes) -> httpx.Response:
    """The same POST to OpenBao's responder itself, in the tenant's namespace."""
    tenancy = gateway.tenancy
    assert isinstance(tenancy, NamespaceTenancy)
    headers = {**OCSP_REQUEST, "X-Vault-Namespace": tenancy.namespace("acme")}
    return await direct.post("/v1/pki/ocsp", content=der, headers=headers)


async def _leaf(vault: Vault) -> dict[str, Any]:
    """The tenant's CA (OpenBao's, upstream), a role and one leaf issued through the gateway."""
    await vault.create_tenant("acme")
    enabled = await vault.root("POST", "sys/mounts/pki", namespace="acme", json=MOUNT)
    assert enabled.status_code == 204, enabled.text
    made = await vault.root("POST", "pki/root/generate/internal", namespace="acme", json=ROOT)
    assert made.status_code == 200, made.text
    role = await vault.root("POST", "pki/roles/web", namespace="acme", json=ROLE)
    assert role.status_code == 200, role.text
    issued = await vault.root(
        "POST", "pki/issue/web", namespace="acme", json={"common_name": "api.example.com"}
    )
    assert issued.status_code == 200, issued.text
    data = issued.json()["data"]
    return {
        "ca": x509.load_pem_x509_certificate(made.json()["data"]["certificate"].encode()),
        "leaf": x509.load_pem_x509_certificate(data["certificate"].encode()),
        "serial": data["serial_number"],
    }


def _signed_by(parsed: ocsp.OCSPResponse, ca: x509.Certificate) -> None:
    """The response names the CA as responder and carries its (ECDSA) signature."""
    assert parsed.responder_name == ca.subject
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    algorithm = parsed.signature_hash_algorithm
    assert algorithm is not None
    key.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(algorithm))


async def test_ocsp_through_the_gateway_is_openbaos_responder(
    namespaced: tuple[Vault, Gateway], direct: httpx.AsyncClient
) -> None:
    """GOOD for a fresh certificate, REVOKED with OpenBao's revocation time once it is revoked
    through the gateway, by GET and by POST, signed by the tenant's CA (which only OpenBao
    holds): the verdicts of OpenBao's own responder asked directly."""
    vault, gateway = namespaced
    made = await _leaf(vault)
    ca, leaf = made["ca"], made["leaf"]
    der = _query(leaf, ca)
    # `//` in the base64: only the escaped GET form can carry it (sent on as a POST).
    slashes = with_empty_segment(leaf, ca, hashes.SHA1())  # noqa: S303 -- names, secures nothing
    for answered in (
        await _get(vault, der),
        await _get(vault, slashes),
        await _post(vault, der),
    ):
        parsed = _parsed(answered)
        assert parsed.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert parsed.serial_number == leaf.serial_number
        _signed_by(parsed, ca)
    theirs = _parsed(await _openbaos(direct, gateway, der))
    assert theirs.certificate_status is ocsp.OCSPCertStatus.GOOD

    revoked = await vault.root(
        "POST", "pki/revoke", namespace="acme", json={"serial_number": made["serial"]}
    )
    assert revoked.status_code == 200, revoked.text
    when = revoked.json()["data"]["revocation_time"]
    for answered in (await _get(vault, der), await _post(vault, der)):
        parsed = _parsed(answered)
        assert parsed.certificate_status is ocsp.OCSPCertStatus.REVOKED
        revocation_time = parsed.revocation_time_utc
        assert revocation_time is not None
        assert int(revocation_time.timestamp()) == when
        _signed_by(parsed, ca)
    theirs = _parsed(await _openbaos(direct, gateway, der))
    assert theirs.certificate_status is ocsp.OCSPCertStatus.REVOKED


async def test_ocsp_refusals_are_openbaos_status_and_error_response(
    namespaced: tuple[Vault, Gateway], direct: httpx.AsyncClient
) -> None:
    """A malformed query is OpenBao's malformedRequest with 400 (by POST, by GET, and a POST
    without a DER body); a disabled responder its unauthorized with 401 — the bytes OpenBao's
    responder answers directly."""
    vault, gateway = namespaced
    made = await _leaf(vault)
    junk = b"not an ocsp request"
    theirs = await _openbaos(direct, gateway, junk)
    ours = await _post(vault, junk)
    assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content)
    assert _parsed(ours, 400).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert ours.content == MALFORMED
    assert (await _get(vault, junk)).content == MALFORMED
    assert (await _get(vault, junk, plain=True)).content == MALFORMED
    as_json = await vault.request("POST", "pki/ocsp", namespace="acme", json={"x": "y"})
    assert _parsed(as_json, 400).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST

    disabled = await vault.root(
        "POST", "pki/config/crl", namespace="acme", json={"ocsp_disable": True}
    )
    assert disabled.is_success, disabled.text
    der = _query(made["leaf"], made["ca"])
    theirs = await _openbaos(direct, gateway, der)
    for ours in (await _get(vault, der), await _post(vault, der)):
        assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content)
        assert _parsed(ours, 401).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
        assert ours.content == UNAUTHORIZED


async def test_an_ocsp_internal_error_is_openbaos_500(
    namespaced: tuple[Vault, Gateway], direct: httpx.AsyncClient
) -> None:
    """OpenBao's responder cannot sign with an ed25519 issuer: its internalError response
    with 500 comes back as is (an answer, not an upstream outage turned into a 502)."""
    vault, gateway = namespaced
    await vault.create_tenant("acme")
    enabled = await vault.root("POST", "sys/mounts/pki", namespace="acme", json=MOUNT)
    assert enabled.status_code == 204, enabled.text
    made = await vault.root(
        "POST",
        "pki/root/generate/internal",
        namespace="acme",
        json={**ROOT, "key_type": "ed25519"},
    )
    assert made.status_code == 200, made.text
    ca = x509.load_pem_x509_certificate(made.json()["data"]["certificate"].encode())
    der = _query(ca, ca)
    theirs = await _openbaos(direct, gateway, der)
    for _ in range(2):  # twice: a 500 answer neither retried away nor opening the breaker
        for ours in (await _get(vault, der), await _post(vault, der)):
            assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content)
            parsed = _parsed(ours, 500)
            assert parsed.response_status is ocsp.OCSPResponseStatus.INTERNAL_ERROR
    assert gateway.client.breaker.state == "closed"


async def test_ocsp_queries_are_in_the_tenants_audit_trail(
    namespaced: tuple[Vault, Gateway],
) -> None:
    """tenantvault authorizes and audits the query (the embedded route's path): both forms,
    asked with a token of the tenant, are recorded in the tenant's trail (a query without a
    token is anonymous and recorded under no tenant, as the Core records every such one)."""
    vault, _ = namespaced
    made = await _leaf(vault)
    der = _query(made["leaf"], made["ca"])
    junk = b"not an ocsp request"  # its plain base64 holds no '/': a path of its own
    encoded = base64.b64encode(junk).decode()
    token = (await vault.create_token("acme", ["default"]))["client_token"]
    _parsed(await _get(vault, der, token=token))
    _parsed(await _get(vault, junk, token=token, plain=True), 400)
    _parsed(await _post(vault, der, token=token))
    events = await vault.root(
        "GET",
        "sys/audit/events",
        params={"tenant": "acme", "path_prefix": "pki/", "limit": "1000"},
    )
    assert events.status_code == 200, events.text
    seen = [
        (event["request"].get("path"), event["request"].get("operation"))
        for event in events.json()["data"]["events"]
    ]
    # The escaped GET form's base64 is data, not path: its entry is a read of `pki/ocsp`.
    assert ("pki/ocsp", "read") in seen, seen
    assert ("pki/ocsp", "update") in seen, seen
    assert (f"pki/ocsp/{encoded}", "read") in seen, seen


def test_openssl_ocsp_through_a_served_gateway(
    served: tuple[str, str, str], openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """`openssl ocsp` (a client no one here wrote) against `tenantvault serve` in gateway
    mode, the tenant in the URL: the response verifies against the tenant's CA (OpenBao's,
    only upstream) and says good, then revoked."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed for this test"
    addr, root_token, root = served
    headers = {"X-Vault-Token": root_token}
    with httpx.Client(base_url=f"{addr}/v1/", headers=headers, timeout=30) as client:

        def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
            answered = client.request(method, path, json=body)
            assert answered.is_success, answered.text
            return answered.json() if answered.content else {}

        call("POST", "sys/namespaces/acme")
        call("POST", "acme/sys/mounts/pki", MOUNT)
        ca = call("POST", "acme/pki/root/generate/internal", ROOT)["data"]["certificate"]
        call("POST", "acme/pki/roles/web", ROLE)
        leaf = call("POST", "acme/pki/issue/web", {"common_name": "api.example.com"})["data"]
        upstream = httpx.get(
            f"{openbao_dev.addr}/v1/pki/cert/ca",
            headers={"X-Vault-Namespace": f"{root}/acme"},
            timeout=30,
        )
        assert upstream.json()["data"]["certificate"].strip() == ca.strip()
        (tmp_path / "ca.pem").write_text(ca + "\n")
        (tmp_path / "leaf.pem").write_text(leaf["certificate"] + "\n")
        command = [
            openssl, "ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem",
            "-url", f"{addr}/v1/acme/pki/ocsp", "-CAfile", "ca.pem", "-resp_text",
        ]  # fmt: skip
        for expected in ("good", "revoked"):
            if expected == "revoked":
                call("POST", "acme/pki/revoke", {"serial_number": leaf["serial_number"]})
            done = subprocess.run(
                command, cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
            )
            output = done.stdout + done.stderr
            assert done.returncode == 0, output
            assert "Response verify OK" in output, output
            assert f"leaf.pem: {expected}" in output, output
