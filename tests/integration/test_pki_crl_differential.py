"""The pki differential test for `config/crl`, delta CRLs and `sign-verbatim`: the same
requests to a tenantvault tenant and to a namespace of a real `bao server -dev` get the same
statuses, fields, warnings and error texts (PEMs, serials and times compared by shape, as in
test_pki_differential); the CRLs and certificates themselves are parsed on both sides and
must say the same things (a delta CRL's indicator and entries, a certificate's subject and
extensions)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.integration.test_differential import Pair, Step, Target
from tests.integration.test_pki_differential import ROLE, _run, _tokenless, pair

pytestmark = pytest.mark.integration
__all__ = ["pair"]  # the fixture, shared with test_pki_differential

MOUNT = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
ROOT = {"common_name": "Root", "key_type": "ec", "ttl": "8760h"}
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
        x509.NameAttribute(NameOID.COMMON_NAME, "svc.internal"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@acme.test"),
    ]
)


def _csr(*, extensions: bool) -> str:
    """A CSR with SUBJECT, SANs no role allows, and (optionally) its own key usage, a
    private extension and CA basic constraints."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT)
    names = [x509.DNSName("svc.internal"), x509.RFC822Name("a@b.test")]
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if extensions:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        private = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\0")
        builder = builder.add_extension(private, critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    signed = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode()


def _weak_csr() -> str:
    """A CSR for a 1024-bit RSA key, which OpenBao refuses to sign."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the refusal is the point
    builder = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _fetch_crl(target: Target, path: str) -> x509.CertificateRevocationList:
    headers = {"X-Vault-Token": target.token, "X-Vault-Namespace": target.namespace}
    response = target.client.get(f"/v1/{path}", headers=headers)
    assert response.status_code == 200, f"{target.name}: {response.text}"
    return x509.load_der_x509_crl(response.content)


def _data(target: Target, method: str, path: str, body: Any = None) -> dict[str, Any]:
    outcome = target.send(Step(method, path, body))
    assert outcome.status == 200, f"{target.name}: {outcome.body}"
    assert isinstance(outcome.body, dict)
    data: dict[str, Any] = outcome.body["data"]
    return data


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _delta_facts(target: Target) -> dict[str, Any]:
    """What a client learns from the CRLs after a revoke and `crl/rotate-delta` (delta CRLs
    on, auto-rebuild on): which CRL lists the serial, and how the delta names its base."""
    leaf = _data(target, "POST", "pki/issue/web", {"common_name": "a.example.com", "ttl": "1h"})
    serial = x509.load_pem_x509_certificate(leaf["certificate"].encode()).serial_number
    _data(target, "POST", "pki/revoke", {"serial_number": leaf["serial_number"]})
    _data(target, "GET", "pki/crl/rotate-delta")
    complete = _fetch_crl(target, "pki/crl")
    delta = _fetch_crl(target, "pki/crl/delta")
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    pem = _data(target, "GET", "pki/issuer/default/crl/delta")["crl"]
    return {
        "serial on complete": complete.get_revoked_certificate_by_serial_number(serial) is not None,
        "serials on delta": [entry.serial_number == serial for entry in delta],
        "indicator critical": indicator.critical,
        "indicator names the complete CRL": indicator.value.crl_number == _number(complete),
        "delta numbered after it": _number(delta) > _number(complete),
        "complete CRL has no indicator": not any(
            isinstance(ext.value, x509.DeltaCRLIndicator) for ext in complete.extensions
        ),
        "issuer/default/crl/delta is the same": x509.load_pem_x509_crl(pem.encode()) == delta,
        "complete CRL extensions": sorted(ext.oid.dotted_string for ext in complete.extensions),
    }


def _certificate_facts(pem: str) -> dict[str, Any]:
    """What a certificate says, as far as it does not differ by nature (keys, serials)."""
    certificate = x509.load_pem_x509_certificate(pem.encode())
    extensions = certificate.extensions
    try:
        uses = [
            str(oid.dotted_string)
            for oid in extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ]
    except x509.ExtensionNotFound:
        uses = []
    return {
        "subject is the CSR's": certificate.subject == SUBJECT,
        "extensions": sorted((ext.oid.dotted_string, ext.critical) for ext in extensions),
        "sans": extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
        "key usage": str(extensions.get_extension_for_class(x509.KeyUsage).value),
        "extended key usage": uses,
        "lifetime": certificate.not_valid_after_utc - certificate.not_valid_before_utc,
    }


def test_config_crl_read_back_and_refusals(pair: Pair) -> None:
    """`config/crl`: defaults, durations read back as written, OpenBao's refusals, and the
    fields OpenBao 2.7 does not know ignored with the same warning."""
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            ("GET", "pki/config/crl", None, ""),
            ("POST", "pki/config/crl", {"expiry": "90m", "ocsp_expiry": 0}, ""),
            ("POST", "pki/config/crl", {"expiry": 3600, "disable": "true"}, ""),
            ("POST", "pki/config/crl", {"unified_crl": True, "cross_cluster_revocation": True}, ""),
            ("POST", "pki/config/crl", {"expiry": "bogus"}, ""),
            ("POST", "pki/config/crl", {"expiry": "5x"}, ""),
            ("POST", "pki/config/crl", {"delta_rebuild_interval": "1h5"}, ""),
            ("POST", "pki/config/crl", {"auto_rebuild_grace_period": "xd"}, ""),
            ("POST", "pki/config/crl", {"ocsp_expiry": "-1s"}, ""),
            ("POST", "pki/config/crl", {"disable": "maybe"}, ""),
            ("POST", "pki/config/crl", {"disable": 2}, ""),
            ("POST", "pki/config/crl", {"disable": ["x"]}, ""),
            ("POST", "pki/config/crl", {"expiry": {"a": 1}}, ""),
            ("POST", "pki/config/crl", {"expiry": 1.5}, ""),
            ("POST", "pki/config/crl", {"expiry": True, "disable": 1}, ""),
            ("POST", "pki/config/crl", {"expiry": "", "disable": 0}, ""),
            ("GET", "pki/config/crl", None, ""),
            ("POST", "pki/config/crl", {"delta_rebuild_interval": "", "ocsp_expiry": ""}, ""),
            ("GET", "pki/config/crl", None, ""),
            ("POST", "pki/config/crl", {"ocsp_expiry": 0}, ""),
            ("POST", "pki/config/crl", {"enable_delta": True}, ""),
            (
                "POST",
                "pki/config/crl",
                {"auto_rebuild": True, "auto_rebuild_grace_period": "2h"},
                "",
            ),
            (
                "POST",
                "pki/config/crl",
                {"auto_rebuild": True, "auto_rebuild_grace_period": "30m", "enable_delta": True},
                "",
            ),
            ("POST", "pki/config/crl", {"delta_rebuild_interval": "2h"}, ""),
            (
                "POST",
                "pki/config/crl",
                {"allow_expired_cert_revocation": True, "expiry": "-5s"},
                "",
            ),
            ("GET", "pki/config/crl", None, ""),
        ],
    )


def test_delta_crl_after_a_revoke(pair: Pair) -> None:
    """Delta CRL endpoints before and after delta CRLs are on; after a revoke and
    `crl/rotate-delta`, the delta CRL (parsed) lists the serial with a critical
    DeltaCRLIndicator naming the complete CRL, which does not list it yet."""
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            ("POST", "sys/mounts/empty", MOUNT, ""),
            ("GET", "empty/cert/delta-crl", None, ""),
            ("GET", "empty/issuer/default/crl/delta", None, ""),
            ("GET", "empty/crl/rotate-delta", None, ""),
            ("POST", "pki/root/generate/internal", ROOT, ""),
            ("POST", "pki/roles/web", ROLE, ""),
            ("GET", "pki/crl/rotate-delta", None, ""),
            ("GET", "pki/cert/delta-crl", None, ""),
            ("GET", "pki/issuer/default/crl/delta", None, ""),
            ("POST", "pki/config/crl", {"auto_rebuild": True, "enable_delta": True}, ""),
            ("GET", "pki/crl/rotate-delta", None, ""),
        ],
    )
    ours, theirs = (_delta_facts(target) for target in (pair.ours, pair.bao))
    pair.transcript.append(f"delta facts\n   tenantvault {ours}\n   openbao     {theirs}")
    assert ours == theirs
    assert ours["serials on delta"] == [True]
    assert not ours["serial on complete"]


def test_sign_verbatim_keeps_the_csr(pair: Pair) -> None:
    """`sign-verbatim`: same answers and texts as OpenBao, and certificates that say the
    same: the CSR's subject, its extensions copied (basic constraints dropped with a
    warning), the default key usage otherwise."""
    plain, rich = _csr(extensions=False), _csr(extensions=True)
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            ("POST", "pki/sign-verbatim", {"csr": plain}, ""),
            ("POST", "pki/root/generate/internal", ROOT, ""),
            (
                "POST",
                "pki/roles/v",
                {"ttl": "2h", "max_ttl": "3h", "allowed_domains": ["x.test"]},
                "",
            ),
            ("POST", "pki/sign-verbatim", {}, ""),
            ("POST", "pki/sign-verbatim", {"csr": "garbage"}, ""),
            ("POST", "pki/sign-verbatim/nope", {"csr": plain}, ""),
            ("POST", "pki/issuer/nope/sign-verbatim", {"csr": plain}, ""),
            ("POST", "pki/sign-verbatim", {"csr": plain, "format": "bogus"}, ""),
            ("POST", "pki/sign-verbatim", {"csr": plain, "ttl": "1h"}, ""),
            ("POST", "pki/sign-verbatim", {"csr": rich, "ttl": "1h"}, ""),
            ("POST", "pki/sign-verbatim/v", {"csr": plain, "ttl": "5h"}, ""),
            ("POST", "pki/issuer/default/sign-verbatim/v", {"csr": plain}, ""),
            (
                "POST",
                "pki/sign-verbatim",
                {"csr": plain, "format": "pem_bundle", "remove_roots_from_chain": True},
                "",
            ),
            ("POST", "pki/sign-verbatim", {"csr": plain, "ttl": "100000h"}, ""),
            ("POST", "pki/sign-verbatim", {"csr": _weak_csr()}, ""),
            (
                "POST",
                "pki/sign-verbatim/v",
                {"csr": plain, "ttl": "5h", "common_name": "x.test", "alt_names": "y.test"},
                "",
            ),
            ("POST", "pki/sign-verbatim", {"csr": plain, "key_usage": "CRLSign", "ttl": "1h"}, ""),
            (
                "POST",
                "pki/sign-verbatim",
                {"csr": plain, "ext_key_usage_oids": "nope,1.2.3.4", "ext_key_usage": "bogus"},
                "",
            ),
        ],
    )
    usage = {"key_usage": "CRLSign", "ext_key_usage_oids": "nope,1.2.3.4", "ext_key_usage": "x"}
    for csr, body in ((plain, {"ttl": "1h"}), (rich, {"ttl": "1h"}), (plain, usage)):
        facts = [
            _certificate_facts(
                _data(target, "POST", "pki/sign-verbatim", {"csr": csr, **body})["certificate"]
            )
            for target in (pair.ours, pair.bao)
        ]
        pair.transcript.append(
            f"certificate facts\n   tenantvault {facts[0]}\n   openbao     {facts[1]}"
        )
        assert facts[0] == facts[1]
        assert facts[0]["subject is the CSR's"]
    # DER answers differ byte for byte by nature: the same fields, each base64 DER.
    der = [
        _data(target, "POST", "pki/sign-verbatim/v", {"csr": plain, "format": "der"})
        for target in (pair.ours, pair.bao)
    ]
    assert sorted(der[0]) == sorted(der[1])
    for answer in der:
        x509.load_der_x509_certificate(base64.b64decode(answer["certificate"]))
        x509.load_der_x509_certificate(base64.b64decode(answer["issuing_ca"]))


def test_delta_fetches_without_a_token(pair: Pair) -> None:
    """The delta CRL fetches need no token, answer the same statuses and content types as
    OpenBao's, with and without a CA."""
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            ("POST", "sys/mounts/empty", MOUNT, ""),
            ("POST", "pki/root/generate/internal", ROOT, ""),
        ],
    )
    paths = [
        "crl/delta",
        "crl/delta/pem",
        "cert/delta-crl",
        "issuer/default/crl/delta",
        "issuer/default/crl/delta/pem",
        "issuer/default/crl/delta/der",
    ]
    differences = []
    for mount in ("pki", "empty"):
        for path in paths:
            ours, theirs = (
                _tokenless(target, "GET", f"{mount}/{path}", target.namespace)
                for target in (pair.ours, pair.bao)
            )
            line = f"GET {mount}/{path}\n   tenantvault {ours}\n   openbao     {theirs}"
            pair.transcript.append(line)
            if ours != theirs:
                differences.append(line)
    assert not differences, "\n".join(differences)


def _crl_facts(target: Target) -> dict[str, Any]:
    """Which revocations each CRL shows as `disable` and `auto_rebuild` change."""
    facts: dict[str, Any] = {}

    def revoke(name: str) -> int:
        leaf = _data(target, "POST", "pki/issue/web", {"common_name": name, "ttl": "1h"})
        _data(target, "POST", "pki/revoke", {"serial_number": leaf["serial_number"]})
        return x509.load_pem_x509_certificate(leaf["certificate"].encode()).serial_number

    def listed(*serials: int) -> list[bool]:
        crl = _fetch_crl(target, "pki/crl")
        return [crl.get_revoked_certificate_by_serial_number(s) is not None for s in serials]

    first = revoke("a.example.com")
    facts["revoked, default settings"] = listed(first)
    _data(target, "POST", "pki/config/crl", {"disable": True})
    facts["disabled"] = listed(first)
    second = revoke("b.example.com")
    _data(target, "GET", "pki/crl/rotate")
    facts["revoked and rotated while disabled"] = listed(first, second)
    _data(target, "POST", "pki/config/crl", {"disable": False, "auto_rebuild": True})
    facts["enabled again"] = listed(first, second)
    third = revoke("c.example.com")
    facts["revoked under auto_rebuild"] = listed(first, second, third)
    _data(target, "GET", "pki/crl/rotate")
    facts["rotated"] = listed(first, second, third)
    _data(target, "POST", "pki/config/crl", {"expiry": "2h", "auto_rebuild_grace_period": "1h"})
    _data(target, "GET", "pki/crl/rotate")
    crl = _fetch_crl(target, "pki/crl")
    assert crl.next_update_utc is not None
    facts["lifetime"] = crl.next_update_utc - crl.last_update_utc
    return facts


def test_disable_and_auto_rebuild_shape_the_crl(pair: Pair) -> None:
    """`disable` empties the CRL and keeps it empty, `auto_rebuild` leaves a revoke off the
    CRL until it is rebuilt, `expiry` is its lifetime: the same on both servers."""
    _run(
        pair,
        [
            ("POST", "sys/mounts/pki", MOUNT, ""),
            ("POST", "pki/root/generate/internal", ROOT, ""),
            ("POST", "pki/roles/web", ROLE, ""),
        ],
    )
    ours, theirs = (_crl_facts(target) for target in (pair.ours, pair.bao))
    pair.transcript.append(f"CRL facts\n   tenantvault {ours}\n   openbao     {theirs}")
    assert ours == theirs
    assert ours["disabled"] == [False]
    assert ours["revoked under auto_rebuild"] == [True, True, False]
