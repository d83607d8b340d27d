"""The pki differential test for a CSR's key: `sign/<role>`, `sign-verbatim` and
`root/sign-intermediate` with RSA, EC and Ed25519 CSRs of several sizes, against roles of
each key type and `key_bits`, sent to a tenantvault tenant and to a namespace of a real
`bao server -dev`: the same certificates signed and the same refusals (a key of another
type, fewer bits than the role's minimum, RSA below 2048 bits under any role)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from tests.integration.test_differential import Pair
from tests.integration.test_pki_differential import _run, pair

pytestmark = pytest.mark.integration

__all__ = ["pair"]  # the fixture, shared with test_pki_differential

MOUNT = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
# (role name, key_type, key_bits); key_bits 0 takes the type's default.
ROLES = [
    ("any", "any", 0),
    ("any4096", "any", 4096),
    ("rsa2048", "rsa", 2048),
    ("rsa4096", "rsa", 4096),
    ("ec256", "ec", 256),
    ("ec384", "ec", 384),
    ("ed", "ed25519", 0),
]


def _csr_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.com")])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def _csrs() -> dict[str, str]:
    """One CSR per key kind: RSA 1024 (too small anywhere), 2048 and 3072; P-192 (below
    `any`'s P-224 floor), P-224, P-256 and P-384; Ed25519."""
    keys: dict[str, Any] = {
        f"rsa{bits}": rsa.generate_private_key(public_exponent=65537, key_size=bits)
        for bits in (1024, 2048, 3072)
    }
    for curve in (ec.SECP192R1(), ec.SECP224R1(), ec.SECP256R1(), ec.SECP384R1()):
        keys[f"ec{curve.key_size}"] = ec.generate_private_key(curve)
    keys["ed25519"] = ed25519.Ed25519PrivateKey.generate()
    return {name: _csr_of(key) for name, key in keys.items()}


def test_pki_csr_key_checks(pair: Pair) -> None:
    csrs = _csrs()
    steps: list[tuple[str, str, Any, str]] = [
        ("POST", "sys/mounts/pki", MOUNT, ""),
        ("POST", "pki/root/generate/internal", {"common_name": "Root", "ttl": "8760h"}, ""),
    ]
    for name, key_type, bits in ROLES:
        role = {"allow_any_name": True, "key_type": key_type, "key_bits": bits, "no_store": True}
        steps.append(("POST", f"pki/roles/{name}", role, ""))
    for name, *_ in ROLES:
        for label, csr in csrs.items():
            body = {"csr": csr, "ttl": "1h", "common_name": f"{label}.example.com"}
            steps.append(("POST", f"pki/sign/{name}", body, ""))
    for label, csr in csrs.items():
        body = {"csr": csr, "ttl": "1h", "common_name": f"{label}.example.com"}
        steps.append(("POST", "pki/sign-verbatim/rsa4096", body, ""))
        steps.append(("POST", "pki/sign-verbatim", body, ""))
        steps.append(("POST", "pki/root/sign-intermediate", body, ""))
    _run(pair, steps)
