"""The pki differential test for OCSP, import and deletion: the same requests sent to a
tenantvault tenant and to a namespace of a real `bao server -dev` get the same answers —
import responses (`imported_issuers`, `imported_keys`, `mapping`, `existing_*`), key and
issuer deletion with their warnings, and OCSP answers (statuses, content types, and the
parsed response: cert status, revocation time, CertID hash, responder, validity window,
no certificates, no nonce; the fixed error responses byte for byte)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests._ocsp import escaped, ocsp_der, with_empty_segment
from tests.integration.test_differential import Pair, Step, Target
from tests.integration.test_pki_differential import ROLE, _run, pair
from tests.server.test_pki_import import make_ca

pytestmark = pytest.mark.integration

__all__ = ["pair"]  # the fixture, shared with test_pki_differential

MOUNT = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A root CA made outside both servers, with key identifiers (OpenBao's CRL needs them)."""
    return make_ca(name)


def _pem(item: x509.Certificate | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM).decode()
    return item.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def test_pki_import_keys_and_deletion(pair: Pair) -> None:
    root, key = _ca("Imported Root")
    spare = ec.generate_private_key(ec.SECP256R1())
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            ("LIST", "pki/keys", None, ""),
            ("GET", "pki/config/keys", None, ""),
            ("POST", "pki/issuers/import/bundle", {}, ""),
            ("POST", "pki/issuers/import/bundle", {"pem_bundle": "short"}, ""),
            ("POST", "pki/issuers/import/bundle", {"pem_bundle": "x" * 100}, ""),
            ("POST", "pki/issuers/import/cert", {"pem_bundle": _pem(key) + _pem(root)}, ""),
            ("POST", "pki/issuers/import/cert", {"pem_bundle": _pem(root)}, ""),
            ("LIST", "pki/issuers", None, ""),
            ("GET", "pki/config/issuers", None, ""),
            ("POST", "pki/issuers/import/bundle", {"pem_bundle": _pem(key) + _pem(root)}, ""),
            ("GET", "pki/config/issuers", None, ""),
            ("LIST", "pki/keys", None, ""),
            ("GET", "pki/config/keys", None, ""),
            ("POST", "pki/config/ca", {"pem_bundle": _pem(root)}, ""),
            ("POST", "pki/keys/import", {}, ""),
            ("POST", "pki/keys/import", {"pem_bundle": _pem(spare), "key_name": "spare"}, ""),
            ("POST", "pki/keys/import", {"pem_bundle": _pem(spare), "key_name": "again"}, ""),
            ("POST", "pki/keys/import", {"pem_bundle": _pem(key), "key_name": "spare"}, ""),
            ("GET", "pki/key/nope", None, ""),
            ("POST", "pki/key/spare", {"key_name": "bad name!"}, ""),
            ("POST", "pki/key/spare", {"key_name": "renamed"}, ""),
            ("POST", "pki/key/renamed", {}, ""),
            ("POST", "pki/config/keys", {}, ""),
            ("POST", "pki/config/keys", {"default": "nope"}, ""),
            ("DELETE", "pki/key/default", None, ""),
            ("DELETE", "pki/key/nope", None, ""),
            ("POST", "pki/issuer/default", {"issuer_name": "main"}, ""),
            ("POST", "pki/roles/web", ROLE, ""),
            ("POST", "pki/roles/pinned", {**ROLE, "issuer_ref": "main"}, ""),
            ("DELETE", "pki/issuer/nope", None, ""),
            ("DELETE", "pki/issuer/main", None, ""),
            ("GET", "pki/config/issuers", None, ""),
            ("LIST", "pki/issuers", None, ""),
            ("GET", "pki/issuer/default", None, ""),
            ("DELETE", "pki/key/default", None, ""),
            ("LIST", "pki/keys", None, ""),
            ("DELETE", "pki/root", None, ""),
            ("LIST", "pki/keys", None, ""),
            ("GET", "pki/config/keys", None, ""),
        ],
    )


def _ocsp_outcome(
    target: Target, method: str, der: bytes, signer: x509.Certificate
) -> dict[str, Any]:
    """One OCSP exchange without a token: HTTP status and type, and the response's shape."""
    headers = {"X-Vault-Namespace": target.namespace}
    if method == "POST":
        headers["Content-Type"] = "application/ocsp-request"
        response = target.client.post("/v1/pki/ocsp", content=der, headers=headers)
    elif method == "GET":
        # RFC 6960's GET form: the base64 URL-escaped, as OCSP clients send it.
        response = target.client.get(f"/v1/pki/ocsp/{escaped(der)}", headers=headers)
    else:  # "GET-plain": the base64 as is
        encoded = base64.b64encode(der).decode()
        response = target.client.get(f"/v1/pki/ocsp/{encoded}", headers=headers)
    outcome: dict[str, Any] = {
        "status": response.status_code,
        "content-type": response.headers.get("content-type"),
    }
    parsed = ocsp.load_der_ocsp_response(response.content)
    outcome["response_status"] = parsed.response_status.name
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        outcome["bytes"] = response.content.hex()
        return outcome
    assert parsed.this_update_utc is not None
    assert parsed.next_update_utc is not None
    outcome.update(
        cert_status=parsed.certificate_status.name,
        revoked=parsed.revocation_time_utc is not None,
        reason=parsed.revocation_reason,
        hash=parsed.hash_algorithm.name,
        serial=parsed.serial_number == ocsp.load_der_ocsp_request(der).serial_number,
        responder_is_signer=parsed.responder_name == signer.subject,
        certificates=len(parsed.certificates),
        extensions=len(parsed.extensions),
        window=parsed.next_update_utc - parsed.this_update_utc,
        signature=parsed.signature_algorithm_oid.dotted_string,
    )
    return outcome


def test_pki_ocsp_answers(pair: Pair) -> None:
    """good, revoked (with its time), unknown for another CA, malformed and unauthorized
    answers, by POST and GET (escaped, with `//` in the base64, and plain): same outcome on
    both servers."""
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            (
                "POST",
                "pki/root/generate/internal",
                {"common_name": "Root", "key_type": "ec", "ttl": "8760h"},
                "",
            ),
            ("POST", "pki/roles/web", ROLE, ""),
        ],
    )
    stranger, _ = _ca("Elsewhere")
    per_side: list[dict[str, Any]] = []
    for target in (pair.ours, pair.bao):
        root_pem = target.send(Step("GET", "pki/cert/ca")).body["data"]["certificate"]
        leaves = []
        for name in ("a.example.com", "b.example.com"):
            issued = target.send(Step("POST", "pki/issue/web", {"common_name": name}))
            leaves.append(issued.body["data"])
        revoked = target.send(
            Step("POST", "pki/revoke", {"serial_number": leaves[1]["serial_number"]})
        )
        assert revoked.status == 200, revoked
        per_side.append(
            {
                "root": x509.load_pem_x509_certificate(root_pem.encode()),
                "good": x509.load_pem_x509_certificate(leaves[0]["certificate"].encode()),
                "revoked": x509.load_pem_x509_certificate(leaves[1]["certificate"].encode()),
                "revocation_time": revoked.body["data"]["revocation_time"],
            }
        )
    sha1 = hashes.SHA1()  # noqa: S303 -- openssl's default CertID hash; names, secures nothing
    cases: list[tuple[str, str, Any]] = [
        ("good", "POST", lambda s: ocsp_der(s["good"], s["root"], sha1)),
        ("good", "GET", lambda s: ocsp_der(s["good"], s["root"], sha1)),
        ("revoked", "POST", lambda s: ocsp_der(s["revoked"], s["root"], hashes.SHA256())),
        ("revoked", "GET", lambda s: ocsp_der(s["revoked"], s["root"], sha1)),
        ("unknown", "POST", lambda s: ocsp_der(s["good"], stranger, sha1)),
        ("garbage", "POST", lambda s: b"\x30\x03\x01\x01\x00"),
        ("empty", "POST", lambda s: b""),
        ("slashes", "GET", lambda s: with_empty_segment(s["good"], s["root"], sha1)),
        ("garbage", "GET", lambda s: b"not-der"),
        ("garbage", "GET-plain", lambda s: b"not-der"),
        ("empty", "GET", lambda s: b""),
    ]
    differences = []
    for label, method, build in cases:
        outcomes = []
        for target, side in zip((pair.ours, pair.bao), per_side, strict=True):
            outcome = _ocsp_outcome(target, method, build(side), side["root"])
            outcomes.append(outcome)
        line = f"OCSP {label} {method}\n   tenantvault {outcomes[0]}\n   openbao     {outcomes[1]}"
        pair.transcript.append(line)
        if outcomes[0] != outcomes[1]:
            differences.append(line)
    # The revocation time each server reports over OCSP is the one its `revoke` answered.
    for target, side in zip((pair.ours, pair.bao), per_side, strict=True):
        headers = {
            "X-Vault-Namespace": target.namespace,
            "Content-Type": "application/ocsp-request",
        }
        der = ocsp_der(side["revoked"], side["root"], sha1)
        body = target.client.post("/v1/pki/ocsp", content=der, headers=headers).content
        parsed = ocsp.load_der_ocsp_response(body)
        assert parsed.revocation_time_utc is not None, target.name
        assert int(parsed.revocation_time_utc.timestamp()) == side["revocation_time"]
    # No issuer left: unauthorized on both.
    for target in (pair.ours, pair.bao):
        target.send(Step("DELETE", "pki/issuer/default"))
    for target, side in zip((pair.ours, pair.bao), per_side, strict=True):
        outcome = _ocsp_outcome(
            target, "POST", ocsp_der(side["good"], side["root"], sha1), side["root"]
        )
        pair.transcript.append(f"OCSP after delete {target.name} {outcome}")
        if outcome != {
            "status": 401,
            "content-type": "application/ocsp-response",
            "response_status": "UNAUTHORIZED",
            "bytes": "30030a0106",
        }:
            differences.append(f"OCSP after delete on {target.name}: {outcome}")
    if differences:
        pytest.fail("tenantvault and OpenBao differ on OCSP:\n" + "\n".join(differences))


def test_openssl_ocsp_client(pair: Pair, tmp_path: Path) -> None:
    """`openssl ocsp` (a client no one here wrote) against both servers, the namespace in the
    URL: the response verifies against the CA, and says good, then revoked."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed for this test"
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            (
                "POST",
                "pki/root/generate/internal",
                {"common_name": "Root", "key_type": "rsa", "ttl": "8760h"},
                "",
            ),
            ("POST", "pki/roles/web", ROLE, ""),
        ],
    )
    for target in (pair.ours, pair.bao):
        folder = tmp_path / target.name
        folder.mkdir()
        ca = target.send(Step("GET", "pki/cert/ca")).body["data"]["certificate"]
        (folder / "ca.pem").write_text(ca + "\n")
        leaf = target.send(Step("POST", "pki/issue/web", {"common_name": "a.example.com"}))
        (folder / "leaf.pem").write_text(leaf.body["data"]["certificate"] + "\n")
        url = f"{str(target.client.base_url).rstrip('/')}/v1/{target.namespace}/pki/ocsp"
        command = [
            openssl, "ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-url", url,
            "-CAfile", "ca.pem",
        ]  # fmt: skip
        for expected in ("good", "revoked"):
            if expected == "revoked":
                serial = leaf.body["data"]["serial_number"]
                target.send(Step("POST", "pki/revoke", {"serial_number": serial}))
            done = subprocess.run(
                command, cwd=folder, capture_output=True, text=True, timeout=30, check=False
            )
            output = done.stdout + done.stderr
            pair.transcript.append(f"openssl ocsp {target.name}: {output}")
            assert done.returncode == 0, output
            assert "Response verify OK" in output, output
            assert f"leaf.pem: {expected}" in output, output
