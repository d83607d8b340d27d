"""The pki OCSP responder over HTTP (`GET ocsp/<base64>`, `POST ocsp` with a DER body): the
answers a TLS client or `openssl ocsp` gets, checked against OpenBao 2.7.2's behaviour —
good, revoked with its time, unknown for another CA's certificate, the fixed error responses
with their HTTP statuses, no token needed, and one tenant's responder never vouching for
another tenant's certificate."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests._ocsp import escaped, ocsp_der, with_empty_segment
from tests.conftest import FakeClock
from tests.server.conftest import Vault
from tests.server.test_pki import ROLE, cert_of, mount_pki, ok, pki_vault, root_ca

__all__ = ["pki_vault"]  # the fixture, shared with test_pki

OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}
OCSP_RESPONSE = "application/ocsp-response"
MALFORMED = bytes.fromhex("30030a0101")
UNAUTHORIZED = bytes.fromhex("30030a0106")


def ocsp_request(leaf: x509.Certificate, issuer: x509.Certificate, algorithm: Any = None) -> bytes:
    """The DER OCSP request for one certificate (SHA-1 CertID unless told), with a nonce."""
    # SHA-1 is openssl's default CertID hash: the one most clients send.
    chosen = algorithm or hashes.SHA1()  # noqa: S303 -- names a certificate, secures nothing
    return ocsp_der(leaf, issuer, chosen)


async def post(vault: Vault, der: bytes, *, namespace: str | None = None) -> httpx.Response:
    """`POST pki/ocsp` without a token, as openssl sends it."""
    return await vault.request(
        "POST", "pki/ocsp", namespace=namespace, content=der, headers=OCSP_REQUEST
    )


def answer(response: httpx.Response, status: int = 200) -> ocsp.OCSPResponse:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == OCSP_RESPONSE
    return ocsp.load_der_ocsp_response(response.content)


async def _ca_with_leaves(vault: Vault, namespace: str | None = None) -> dict[str, Any]:
    """A mount with a root CA, a role and two leaves, the second revoked."""
    await mount_pki(vault, namespace=namespace)
    root = await root_ca(vault, namespace=namespace)
    await ok(await vault.root("POST", "pki/roles/web", namespace=namespace, json=ROLE))
    leaves = []
    for name in ("a.example.com", "b.example.com"):
        issued = await ok(
            await vault.root(
                "POST", "pki/issue/web", namespace=namespace, json={"common_name": name}
            )
        )
        leaves.append(issued["data"])
    revoked = await ok(
        await vault.root(
            "POST",
            "pki/revoke",
            namespace=namespace,
            json={"serial_number": leaves[1]["serial_number"]},
        )
    )
    return {
        "root": cert_of(root["certificate"]),
        "good": cert_of(leaves[0]["certificate"]),
        "revoked": cert_of(leaves[1]["certificate"]),
        "revocation_time": revoked["data"]["revocation_time"],
    }


def _verify(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    """Signed by `signer`, named by it, no certificates and no nonce (as OpenBao)."""
    key = signer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(
        response.signature,
        response.tbs_response_bytes,
        ec.ECDSA(response.signature_hash_algorithm),
    )
    assert response.responder_name == signer.subject
    assert response.certificates == []
    assert list(response.extensions) == []


async def test_good_and_revoked_by_post_and_get(vault: Vault) -> None:
    """A live certificate is `good`, a revoked one `revoked` at the time `revoke` answered;
    both forms answer the same, signed by the CA, and the CertID echoes the request's."""
    made = await _ca_with_leaves(vault)
    root = made["root"]
    for which in ("good", "revoked"):
        der = ocsp_request(made[which], root)
        for response in (
            await post(vault, der),
            await vault.request("GET", f"pki/ocsp/{escaped(der)}"),
        ):
            parsed = answer(response)
            assert parsed.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
            _verify(parsed, root)
            assert parsed.serial_number == made[which].serial_number
            request = ocsp.load_der_ocsp_request(der)
            assert parsed.issuer_name_hash == request.issuer_name_hash
            assert parsed.issuer_key_hash == request.issuer_key_hash
            if which == "good":
                assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
                assert parsed.revocation_time_utc is None
            else:
                assert parsed.certificate_status is ocsp.OCSPCertStatus.REVOKED
                assert parsed.revocation_time_utc is not None
                assert int(parsed.revocation_time_utc.timestamp()) == made["revocation_time"]
                assert parsed.revocation_reason is None


async def test_get_form_with_slashes_in_its_base64(vault: Vault) -> None:
    """RFC 6960's GET form escapes the base64 (`%2F`, `%2B`, `%3D`, either case): a request
    whose base64 holds `//` is answered so (OpenBao too; unescaped, neither serves it), in
    the header and the path form of the namespace alike."""
    made = await _ca_with_leaves(vault)
    der = with_empty_segment(made["good"], made["root"], hashes.SHA1())  # noqa: S303
    tail = escaped(der)
    assert "%2F%2F" in tail
    await vault.create_tenant("acme")
    await _ca_with_leaves(vault, namespace="acme")
    for response in (
        await vault.request("GET", f"pki/ocsp/{tail}"),
        await vault.request("GET", f"pki/ocsp/{tail.replace('%2F', '%2f')}"),
    ):
        parsed = answer(response)
        assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert parsed.serial_number == made["good"].serial_number
    # The tenant's own responder, named in the path: not the root's CA, so `unknown`.
    parsed = answer(await vault.request("GET", f"acme/pki/ocsp/{tail}"))
    assert parsed.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    # Unescaped, `//` is an empty path segment: refused as in every path.
    plain = base64.b64encode(der).decode()
    refused = await vault.request("GET", f"pki/ocsp/{plain}")
    assert refused.status_code == 400, refused.text


async def test_get_form_unescaped(vault: Vault) -> None:
    """The base64 sent as is (what curl users type) is answered too while it has no empty
    segment: a fresh leaf is issued until its request's base64 has none (a `//` turns up
    in a few requests in a hundred)."""
    made = await _ca_with_leaves(vault)
    for attempt in range(20):
        issued = await ok(
            await vault.root(
                "POST", "pki/issue/web", json={"common_name": f"p{attempt}.example.com"}
            )
        )
        leaf = cert_of(issued["data"]["certificate"])
        plain = base64.b64encode(ocsp_request(leaf, made["root"])).decode()
        if "//" not in plain and not plain.startswith("/"):
            break
    else:
        raise AssertionError("twenty requests in a row held '//'")
    assert "/" in plain or "+" in plain or "=" in plain  # something an escape would change
    parsed = answer(await vault.request("GET", f"pki/ocsp/{plain}"))
    assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert parsed.serial_number == leaf.serial_number


async def test_escaped_separators_stay_refused_off_the_ocsp_route(vault: Vault) -> None:
    """The escaped GET form is the pki `ocsp` route's alone: an escaped '/' anywhere else is
    refused as it always was (400, never a read of a neighbouring key), and so is any other
    escape in an OCSP tail."""
    made = await _ca_with_leaves(vault)
    await ok(await vault.root("POST", "secret/data/ocsp", json={"data": {"v": "neighbour-value"}}))
    tail = escaped(with_empty_segment(made["good"], made["root"], hashes.SHA1()))  # noqa: S303
    for path in (
        "secret/data/ocsp/a%2Fb",
        f"secret/data/ocsp/{tail}",
        f"pki/roles/ocsp/{tail}",
        f"pki/ocsp/{tail}%2F..",
        "pki/ocsp/MEow%2Fa%25b",
        f"pki%2Focsp/{tail}",
    ):
        response = await vault.root("GET", path)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["errors"][0].startswith("invalid path"), response.text
        assert "neighbour-value" not in response.text
    for method in ("POST", "DELETE", "LIST"):
        response = await vault.root(method, f"pki/ocsp/{tail}")
        assert response.status_code == 400, (method, response.text)


async def test_request_hash_algorithm_is_answered_in_kind(vault: Vault) -> None:
    """A SHA-256 or SHA-512 CertID is matched and answered with that algorithm."""
    made = await _ca_with_leaves(vault)
    for algorithm in (hashes.SHA256(), hashes.SHA512()):
        parsed = answer(await post(vault, ocsp_request(made["revoked"], made["root"], algorithm)))
        assert parsed.hash_algorithm.name == algorithm.name
        assert parsed.certificate_status is ocsp.OCSPCertStatus.REVOKED


async def test_answer_times_follow_the_server_clock(pki_vault: Vault, clock: FakeClock) -> None:
    """thisUpdate is the server's now and nextUpdate 12h later (OpenBao's `ocsp_expiry`)."""
    made = await _ca_with_leaves(pki_vault)
    clock.advance(3600)
    parsed = answer(await post(pki_vault, ocsp_request(made["good"], made["root"])))
    now = datetime.fromtimestamp(clock() / 1e9, UTC).replace(microsecond=0)
    assert parsed.this_update_utc == now
    assert parsed.next_update_utc == now + timedelta(hours=12)


async def test_other_ca_is_unknown_signed_by_the_default_issuer(vault: Vault) -> None:
    """A certificate this mount did not issue is `unknown` (never `good`), signed by the
    mount's default issuer; the CertID names that issuer, as Go's responder writes it."""
    made = await _ca_with_leaves(vault)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Elsewhere")])
    now = datetime.now(UTC)
    stranger = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(made["good"].serial_number)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    parsed = answer(await post(vault, ocsp_request(made["good"], stranger)))
    assert parsed.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    _verify(parsed, made["root"])
    own = ocsp.load_der_ocsp_request(ocsp_request(made["good"], made["root"]))
    assert parsed.issuer_name_hash == own.issuer_name_hash


async def test_malformed_requests_get_the_malformed_response(vault: Vault) -> None:
    """Bad DER, an empty or JSON body, bad base64, an empty path part, and a request of 2048
    bytes or more: 400 with OCSP's `malformedRequest`, as OpenBao."""
    made = await _ca_with_leaves(vault)
    good = ocsp_request(made["good"], made["root"])
    urlsafe = base64.urlsafe_b64encode(b"\xfb\xff" * 40).decode()  # '-' and '_': not std
    replies = [
        await post(vault, b"\x30\x03\x01\x01\x00"),
        await post(vault, b""),
        await post(vault, good + b"\x00" * 2048),
        await vault.request("POST", "pki/ocsp", json={"request": "x"}),
        await vault.request("GET", "pki/ocsp/bm90LWRlcg=="),
        await vault.request("GET", "pki/ocsp/@@@"),
        await vault.request("GET", "pki/ocsp/"),
        await vault.request("GET", f"pki/ocsp/{urlsafe}"),
    ]
    for reply in replies:
        assert reply.status_code == 400, reply.request.url
        assert reply.headers["content-type"] == OCSP_RESPONSE
        assert reply.content == MALFORMED


@pytest.mark.parametrize(("method", "path"), [("GET", "pki/ocsp"), ("DELETE", "pki/ocsp")])
async def test_other_operations_are_unsupported(vault: Vault, method: str, path: str) -> None:
    await mount_pki(vault)
    response = await vault.root(method, path)
    assert response.status_code == 405
    assert response.json() == {"errors": ["unsupported operation"]}


async def test_no_issuer_and_disabled_responder_are_unauthorized(vault: Vault) -> None:
    """Without a CA to sign, or with `ocsp_disable`, the answer is 401 `unauthorized`."""
    made = await _ca_with_leaves(vault)
    der = ocsp_request(made["good"], made["root"])
    await mount_pki(vault, "empty")
    empty = await vault.request("POST", "empty/ocsp", content=der, headers=OCSP_REQUEST)
    assert (empty.status_code, empty.content) == (401, UNAUTHORIZED)
    await ok(await vault.root("POST", "pki/config/crl", json={"ocsp_disable": True}))
    disabled = await post(vault, der)
    assert (disabled.status_code, disabled.content) == (401, UNAUTHORIZED)
    await ok(await vault.root("POST", "pki/config/crl", json={"ocsp_disable": False}))
    assert answer(await post(vault, der)).certificate_status is ocsp.OCSPCertStatus.GOOD


async def test_each_tenant_answers_for_its_own_ca_only(vault: Vault) -> None:
    """Without a token, in the tenant the header or path names: tenant B's responder says
    `unknown` about tenant A's certificate, even at a same-named mount; A's says `revoked`."""
    made: dict[str, dict[str, Any]] = {}
    for tenant in ("acme", "other"):
        await vault.create_tenant(tenant)
        made[tenant] = await _ca_with_leaves(vault, namespace=tenant)
    der = ocsp_request(made["acme"]["revoked"], made["acme"]["root"])
    own = answer(await post(vault, der, namespace="acme"))
    assert own.certificate_status is ocsp.OCSPCertStatus.REVOKED
    by_path = answer(
        await vault.request("POST", "acme/pki/ocsp", content=der, headers=OCSP_REQUEST)
    )
    assert by_path.certificate_status is ocsp.OCSPCertStatus.REVOKED
    theirs = answer(await post(vault, der, namespace="other"))
    assert theirs.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    _verify(theirs, made["other"]["root"])


async def test_deleted_issuer_no_longer_answers(vault: Vault) -> None:
    """After `DELETE issuer/default` the mount has no issuer to sign with: unauthorized."""
    made = await _ca_with_leaves(vault)
    der = ocsp_request(made["good"], made["root"])
    assert answer(await post(vault, der)).certificate_status is ocsp.OCSPCertStatus.GOOD
    await ok(await vault.root("DELETE", "pki/issuer/default"))
    gone = await post(vault, der)
    assert (gone.status_code, gone.content) == (401, UNAUTHORIZED)


async def test_only_post_and_put_pass_an_ocsp_body_unparsed(vault: Vault) -> None:
    """The HTTP layer's exception is narrow: PUT is a POST (as in OpenBao), PATCH keeps its
    merge-patch rule, and a DER body labelled anything else is read as JSON, so refused (400)."""
    made = await _ca_with_leaves(vault)
    der = ocsp_request(made["good"], made["root"])
    put = await vault.request("PUT", "pki/ocsp", content=der, headers=OCSP_REQUEST)
    assert answer(put).certificate_status is ocsp.OCSPCertStatus.GOOD
    patch = await vault.request("PATCH", "pki/ocsp", content=der, headers=OCSP_REQUEST)
    assert patch.status_code == 415
    octets = {"Content-Type": "application/octet-stream"}
    other = await vault.request("POST", "pki/ocsp", content=der, headers=octets)
    assert other.status_code == 400
