"""The differential test extended to the pki engine: the same PKI requests, sent as raw HTTP to
a tenantvault tenant and to a namespace of a real `bao server -dev`, get the same statuses,
the same `data` fields and the same warnings and error texts. Certificates, keys, serials,
ids and times differ by nature and are compared by shape (a PEM is a PEM, a serial a serial);
values that depend on earlier answers (a CSR, a serial) come from each server's own answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, generate_private_key
from cryptography.x509.oid import NameOID

from tests.integration.test_differential import (
    JSON,
    MERGE_PATCH,
    Outcome,
    Pair,
    Step,
    Target,
    new_pair,
)

pytestmark = pytest.mark.integration

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SERIAL = re.compile(r"\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){7,}\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
_TIME_FIELDS = frozenset(
    {
        "expiration",
        "not_before",
        "revocation_time",
        "revocation_time_rfc3339",
        "time_started",
        "time_finished",
    }
)
# tidy-status: OpenBao reports ACME and other tidy kinds this engine does not have.
_TIDY_STATUS_FIELDS = frozenset(
    {
        "state",
        "error",
        "cert_store_deleted_count",
        "revoked_cert_deleted_count",
        "tidy_cert_store",
        "tidy_revoked_certs",
        "current_cert_store_count",
        "current_revoked_cert_count",
    }
)
ROLE = {
    "allowed_domains": ["example.com"],
    "allow_subdomains": True,
    "key_type": "ec",
    "max_ttl": "72h",
}


def _text(value: str) -> str:
    value = _UUID.sub("<uuid>", value)
    value = _SERIAL.sub("<serial>", value)
    return _TIME.sub("<time>", value)


def shape(value: Any, key: str = "") -> Any:
    """PEMs, serials, ids and times become markers; everything else stays as answered."""
    if isinstance(value, dict):
        return {_text(k): shape(item, k) for k, item in value.items()}
    if isinstance(value, list):
        return [shape(item, key) for item in value]
    if isinstance(value, str):
        if value.startswith("-----BEGIN"):
            return "<pem>"
        if key in _TIME_FIELDS:
            return "<time>" if value else ""
        return _text(value)
    if key in _TIME_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return "<time>" if value else 0
    return value


@dataclass
class Side:
    """One server in the flow, and what its own earlier answers said."""

    target: Target
    saved: dict[str, Any]

    def send(self, step: Step) -> Outcome:
        outcome = self.target.send(step)
        body = outcome.body
        if isinstance(body, dict) and "data" in body and isinstance(body["data"], dict):
            only = {"data": body["data"], "warnings": body.get("warnings")}
            if step.path.endswith("tidy-status"):
                only["data"] = {k: v for k, v in body["data"].items() if k in _TIDY_STATUS_FIELDS}
            return Outcome(outcome.status, only)
        if isinstance(body, dict) and set(body) != {"errors"}:
            return Outcome(
                outcome.status, {"data": body.get("data"), "warnings": body.get("warnings")}
            )
        return outcome


Body = Callable[[dict[str, Any]], Any]


def _csr(name: str, *, rsa: bool = False) -> str:
    key: ec.EllipticCurvePrivateKey | RSAPrivateKey = (
        generate_private_key(public_exponent=65537, key_size=2048)
        if rsa
        else ec.generate_private_key(ec.SECP256R1())
    )
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def _run(pair: Pair, steps: list[tuple[str, str, Any, str]]) -> None:
    """Each step: (method, path, body or body-of-saved-values, name to save the data under)."""
    sides = [Side(pair.ours, {}), Side(pair.bao, {})]
    differences: list[str] = []
    for index, (method, path, body, save) in enumerate(steps):
        outcomes = []
        for side in sides:
            resolved_path = path.format(**side.saved) if "{" in path else path
            resolved = body(side.saved) if callable(body) else body
            kind = MERGE_PATCH if method == "PATCH" else JSON
            outcome = side.send(Step(method, resolved_path, resolved, content_type=kind))
            if save and isinstance(outcome.body, dict):
                side.saved[save] = outcome.body.get("data")
            outcomes.append(Outcome(outcome.status, shape(outcome.body)))
        ours, theirs = outcomes
        line = f"#{index} {method} {path}\n   tenantvault {ours}\n   openbao     {theirs}"
        pair.transcript.append(line)
        if ours != theirs:
            differences.append(line)
    if differences:
        pytest.fail(
            f"tenantvault and OpenBao differ on {len(differences)} of {len(steps)} steps:\n"
            + "\n".join(differences)
        )


@pytest.fixture
def pair(clients: Any, tenantvault_server: Any, openbao_server: Any) -> Pair:
    return new_pair(clients, tenantvault_server, openbao_server)


def test_pki_ca_roles_and_issue(pair: Pair) -> None:
    mount = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
    root = {"common_name": "Root CA", "key_type": "ec", "ttl": "8760h"}
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", mount, ""),
            ("GET", "pki/cert/ca", None, ""),
            ("GET", "pki/config/issuers", None, ""),
            ("POST", "pki/issue/web", {"common_name": "a.example.com"}, ""),
            ("POST", "pki/roles/web", ROLE, ""),
            ("POST", "pki/issue/web", {"common_name": "a.example.com"}, ""),
            ("POST", "pki/root/generate/bogus", root, ""),
            ("POST", "pki/root/generate/internal", root, "root"),
            ("GET", "pki/config/issuers", None, ""),
            ("LIST", "pki/issuers", None, ""),
            ("GET", "pki/issuer/default", None, ""),
            ("GET", "pki/issuer/nope", None, ""),
            ("POST", "pki/config/issuers", {"default": "nope"}, ""),
            ("POST", "pki/roles/web", ROLE, ""),
            ("GET", "pki/roles/web", None, ""),
            ("LIST", "pki/roles", None, ""),
            ("GET", "pki/roles/none", None, ""),
            ("POST", "pki/roles/bad", {"key_type": "rsa", "key_bits": 1024}, ""),
            ("POST", "pki/roles/bad", {"key_type": "ec", "key_bits": 1024}, ""),
            ("POST", "pki/roles/bad", {"key_type": "dsa"}, ""),
            ("POST", "pki/roles/bad", {"ttl": "2h", "max_ttl": "1h"}, ""),
            ("POST", "pki/issue/web", {"common_name": "api.example.com", "ttl": "24h"}, "leaf"),
            ("POST", "pki/issue/web", {"common_name": "api.example.com", "ttl": "100h"}, ""),
            ("POST", "pki/issue/web", {"common_name": "api.other.com"}, ""),
            ("POST", "pki/issue/web", {"common_name": "bad_name.example.com"}, ""),
            (
                "POST",
                "pki/issue/web",
                {"common_name": "a.example.com", "alt_names": "b.other.com"},
                "",
            ),
            ("POST", "pki/issue/web", {}, ""),
            ("POST", "pki/issue/web", {"common_name": "a.example.com", "ip_sans": "nope"}, ""),
            (
                "POST",
                "pki/issue/web",
                {"common_name": "a.example.com", "ttl": "1h", "not_after": "2030-01-01T00:00:00Z"},
                "",
            ),
            ("POST", "pki/roles/noip", {**ROLE, "allow_ip_sans": False}, ""),
            ("POST", "pki/issue/noip", {"common_name": "a.example.com", "ip_sans": "10.0.0.1"}, ""),
            ("POST", "pki/roles/long", {**ROLE, "max_ttl": "87600h"}, ""),
            ("POST", "pki/issue/long", {"common_name": "a.example.com", "ttl": "9000h"}, ""),
            ("POST", "pki/issuer/default", {"leaf_not_after_behavior": "never"}, ""),
            ("POST", "pki/issuer/default", {"leaf_not_after_behavior": "truncate"}, ""),
            ("POST", "pki/issue/long", {"common_name": "a.example.com", "ttl": "9000h"}, ""),
            ("POST", "pki/roles/any", {"key_type": "any", "allow_any_name": True}, ""),
            ("POST", "pki/issue/any", {"common_name": "a.example.com"}, ""),
            (
                "POST",
                "pki/issue/web",
                {"common_name": "a.example.com", "other_sans": "1.2.3.4;UTF8:x"},
                "",
            ),
            ("POST", "pki/issue/web", {"common_name": "a.example.com", "other_sans": "bogus"}, ""),
            ("POST", "pki/issue/web", {"common_name": "a.example.com", "serial_number": "123"}, ""),
            (
                "POST",
                "pki/issue/web",
                {"common_name": "a.example.com", "uri_sans": "spiffe://x"},
                "",
            ),
            ("POST", "pki/issue/web", {"common_name": "a.example.com", "format": "bogus"}, ""),
            (
                "POST",
                "pki/roles/other",
                {
                    **ROLE,
                    "allowed_other_sans": "1.2.3.4;UTF8:ok-*",
                    "allowed_serial_numbers": "sn-*",
                    "allowed_uri_sans": "spiffe://example.com/*",
                },
                "",
            ),
            (
                "POST",
                "pki/issue/other",
                {"common_name": "a.example.com", "other_sans": "1.2.3.4;UTF8:nope"},
                "",
            ),
            (
                "POST",
                "pki/issue/other",
                {"common_name": "a.example.com", "uri_sans": "spiffe://other/x"},
                "",
            ),
            (
                "POST",
                "pki/issue/other",
                {
                    "common_name": "a.example.com",
                    "other_sans": "1.2.3.4;UTF8:ok-1",
                    "serial_number": "sn-1",
                    "uri_sans": "spiffe://example.com/a",
                    "ttl": "1h",
                },
                "",
            ),
            ("GET", "pki/cert/{leaf[serial_number]}", None, ""),
            ("GET", "pki/cert/ca", None, ""),
            ("GET", "pki/cert/ca_chain", None, ""),
            ("GET", "pki/cert/nope", None, ""),
            ("GET", "pki/cert/aa:bb", None, ""),
            (
                "POST",
                "pki/config/urls",
                {"issuing_certificates": "http://127.0.0.1:8200/v1/pki/ca"},
                "",
            ),
            ("GET", "pki/config/urls", None, ""),
            ("PATCH", "pki/roles/web", {"ttl": "2h"}, ""),
            ("PATCH", "pki/roles/missing", {"ttl": "2h"}, ""),
            ("DELETE", "pki/roles/any", None, ""),
            ("GET", "pki/roles/any", None, ""),
        ],
    )


def test_pki_intermediate_sign_revoke_tidy(pair: Pair) -> None:
    mount = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
    csr = _csr("svc.example.com")
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", mount, ""),
            ("POST", "sys/mounts/pki_int", mount, ""),
            (
                "POST",
                "pki/root/generate/internal",
                {"common_name": "Root", "key_type": "ec", "ttl": "8760h"},
                "root",
            ),
            (
                "POST",
                "pki_int/intermediate/generate/internal",
                {"common_name": "Int", "key_type": "ec"},
                "csr",
            ),
            (
                "POST",
                "pki_int/intermediate/generate/exported",
                {"common_name": "Int2", "key_type": "ec"},
                "",
            ),
            ("POST", "pki/root/sign-intermediate", {}, ""),
            ("POST", "pki/root/sign-intermediate", {"csr": "garbage"}, ""),
            (
                "POST",
                "pki/root/sign-intermediate",
                lambda s: {"csr": s["csr"]["csr"], "common_name": "Int", "ttl": "4380h"},
                "signed",
            ),
            ("POST", "pki_int/intermediate/set-signed", {}, ""),
            ("POST", "pki_int/intermediate/set-signed", {"certificate": "short"}, ""),
            (
                "POST",
                "pki_int/intermediate/set-signed",
                lambda s: {"certificate": s["signed"]["certificate"]},
                "",
            ),
            (
                "POST",
                "pki_int/intermediate/set-signed",
                lambda s: {"certificate": s["signed"]["certificate"]},
                "",
            ),
            ("GET", "pki_int/config/issuers", None, ""),
            ("POST", "pki_int/roles/web", ROLE, ""),
            ("POST", "pki_int/sign/web", {}, ""),
            ("POST", "pki_int/sign/web", {"csr": "garbage"}, ""),
            (
                "POST",
                "pki_int/sign/web",
                {"csr": csr, "common_name": "other.example.com", "ttl": "1h"},
                "signed_leaf",
            ),
            ("POST", "pki_int/sign/web", {"csr": _csr("svc.other.com"), "ttl": "1h"}, ""),
            ("POST", "pki_int/issue/web", {"common_name": "api.example.com", "ttl": "1h"}, "leaf"),
            ("LIST", "pki_int/certs", None, ""),
            ("LIST", "pki_int/certs/revoked", None, ""),
            ("POST", "pki_int/revoke", {}, ""),
            ("POST", "pki_int/revoke", {"serial_number": "aa", "certificate": "x"}, ""),
            ("POST", "pki_int/revoke", {"serial_number": "aa:bb"}, ""),
            ("POST", "pki_int/revoke", lambda s: {"serial_number": s["leaf"]["serial_number"]}, ""),
            ("POST", "pki_int/revoke", lambda s: {"serial_number": s["leaf"]["serial_number"]}, ""),
            ("LIST", "pki_int/certs/revoked", None, ""),
            (
                "POST",
                "pki_int/issuers/generate/intermediate/internal",
                {"common_name": "Int3", "key_type": "ec"},
                "",
            ),
            ("POST", "pki_int/sign/web", {"csr": _csr("svc.example.com", rsa=True)}, ""),
            ("GET", "pki_int/cert/{leaf[serial_number]}", None, ""),
            ("GET", "pki_int/cert/crl", None, ""),
            ("GET", "pki_int/crl/rotate", None, ""),
            ("POST", "pki_int/tidy", {}, ""),
            ("POST", "pki_int/tidy", {"safety_buffer": "0s"}, ""),
            ("POST", "pki_int/tidy", {"tidy_cert_store": True, "tidy_revoked_certs": True}, ""),
        ],
    )


def _tokenless(target: Target, method: str, path: str, namespace: str | None) -> Outcome:
    """One request without a token: status, content type and the shaped body (a file's
    bytes by kind only: certificates and CRLs differ by nature)."""
    headers = {"X-Vault-Namespace": namespace} if namespace else {}
    response = target.client.request(method, f"/v1/{path}", headers=headers)
    kind = response.headers.get("content-type", "")
    if not response.content.strip():
        return Outcome(response.status_code, {"content-type": kind})
    if kind == "application/json":
        body = response.json()
        if isinstance(body, dict) and "data" in body:
            body = {"data": body["data"], "warnings": body.get("warnings")}
        ends = _pem_endings(body)
        return Outcome(
            response.status_code, {"content-type": kind, "body": shape(body), "ends": ends}
        )
    if response.content.startswith(b"-----BEGIN"):
        label = response.content.split(b"\n", 1)[0].decode()
        newline = response.content.endswith(b"\n")
        return Outcome(response.status_code, {"content-type": kind, "file": label, "ends": newline})
    return Outcome(response.status_code, {"content-type": kind, "file": "<der>"})


def _pem_endings(value: Any, key: str = "") -> list[str]:
    """Which PEM fields of a JSON answer end with a newline (clients compare bytes)."""
    if isinstance(value, dict):
        return [found for k, item in sorted(value.items()) for found in _pem_endings(item, k)]
    if isinstance(value, list):
        return [found for item in value for found in _pem_endings(item, key)]
    if isinstance(value, str) and value.startswith("-----BEGIN"):
        return [f"{key}:{value.endswith(chr(10))}"]
    return []


def test_pki_fetches_without_a_token(pair: Pair) -> None:
    """The CA, chain, CRL and certificate fetches, without a token, in the namespace the
    header or the path names: same status, content type and JSON as OpenBao; everything
    else refused alike; a missing mount alike. (A namespace that does not exist is the one
    difference: OpenBao answers 404 "namespace not found" to the header form, we the 403 of
    a namespace without that mount, so a caller without a token learns no tenant names.)"""
    mount = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", mount, ""),
            ("POST", "sys/mounts/empty", mount, ""),
            (
                "POST",
                "pki/root/generate/internal",
                {"common_name": "Root", "key_type": "ec", "ttl": "8760h"},
                "root",
            ),
            ("POST", "pki/roles/web", ROLE, ""),
            ("POST", "pki/issue/web", {"common_name": "api.example.com", "ttl": "1h"}, "leaf"),
        ],
    )
    serials = []
    for target in (pair.ours, pair.bao):
        listed = target.send(Step("LIST", "pki/certs"))
        serials.append(sorted(listed.body["data"]["keys"]))
    fetches = [
        "ca",
        "ca/pem",
        "ca_chain",
        "crl",
        "crl/pem",
        "cert/ca",
        "cert/ca_chain",
        "cert/crl",
        "cert/ca/raw",
        "cert/ca/raw/pem",
        "issuer/default/pem",
        "issuer/default/der",
        "issuer/default/json",
        "issuer/default/crl",
        "issuer/default/crl/pem",
        "issuer/default/crl/der",
        "issuer/nope/pem",
        "cert/aa:bb",
        "cert/aa:bb/raw",
    ]
    steps: list[tuple[str, str, bool]] = [("GET", f"pki/{path}", True) for path in fetches]
    steps += [("GET", f"empty/{path}", True) for path in ("ca", "ca/pem", "crl", "cert/ca")]
    steps += [
        ("LIST", "pki/issuers", True),
        ("GET", "pki/ca/pem", False),  # the /v1/<ns>/ path form
        ("GET", "pki/cert/{serial}", True),
        ("GET", "pki/cert/{serial}/raw/pem", True),
        ("POST", "pki/ca/pem", True),
        ("DELETE", "pki/crl", True),
        ("GET", "pki/roles/web", True),
        ("LIST", "pki/certs", True),
        ("GET", "pki/issuer/default", True),
        ("GET", "pki/config/urls", True),
        ("POST", "pki/issue/web", True),
        ("GET", "nopki/ca/pem", True),
    ]
    differences = []
    for method, path, header in steps:
        outcomes = []
        for target, own in zip((pair.ours, pair.bao), serials, strict=True):
            resolved = path.format(serial=own[0])
            if not header:
                resolved = f"{target.namespace}/{resolved}"
            namespace = target.namespace if header else None
            outcomes.append(_tokenless(target, method, resolved, namespace))
        ours, theirs = outcomes
        line = f"{method} {path} (header={header})\n   tenantvault {ours}\n   openbao     {theirs}"
        pair.transcript.append(line)
        if outcomes[0] != outcomes[1]:
            differences.append(line)
    if differences:
        pytest.fail(
            f"tenantvault and OpenBao differ on {len(differences)} tokenless fetches:\n"
            + "\n".join(differences)
        )
