"""Verification keys of the jwt auth method: PEM and JWK parsing, and which algorithms each allows.

Only asymmetric JWS algorithms exist here. A key admits exactly the algorithms of its own type
(an RSA key RS*/PS*, an EC key the one ES* of its curve, an Ed25519/Ed448 key EdDSA), so a
token can never make a public key serve as an HMAC secret (the classic "HS256 signed with the
RSA public key" confusion) nor an RSA key verify an EC signature: the algorithm a key verifies
with comes from the key and the mount's `jwt_supported_algs`, never from the token alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import PyJWK
from jwt.exceptions import PyJWTError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "MAX_JWKS_KEYS",
    "PublicKey",
    "VerificationKey",
    "algorithms_for",
    "parse_jwks",
    "parse_pem",
]

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

_RSA: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_BY_CURVE: Final = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
# Every algorithm the method can verify; also OpenBao's default when jwt_supported_algs is empty.
ASYMMETRIC_ALGORITHMS: Final = frozenset({*_RSA, *_EC_BY_CURVE.values(), "EdDSA"})
_KEY_TYPES: Final = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)
# The keys kept from one JWKS document (real issuers publish a handful).
MAX_JWKS_KEYS: Final = 64
# RSA keys shorter than this are refused: they are factorable, and PyJWT only warns about them.
_MIN_RSA_BITS: Final = 2048


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key, the algorithms it may verify, and its JWKS `kid` if it has one."""

    key: PublicKey = field(repr=False)
    algorithms: frozenset[str]
    kid: str | None = None


def algorithms_for(key: object) -> frozenset[str]:
    """The JWS algorithms a public key of this type and size can verify (empty: unusable)."""
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA if key.key_size >= _MIN_RSA_BITS else frozenset()
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_BY_CURVE.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset({"EdDSA"})
    return frozenset()


def _usable(key: object, kid: str | None = None) -> VerificationKey | None:
    if not isinstance(key, _KEY_TYPES):
        return None
    algorithms = algorithms_for(key)
    return VerificationKey(key, algorithms, kid) if algorithms else None


def parse_pem(text: str) -> VerificationKey:
    """A `jwt_validation_pubkeys` entry: a PEM public key or certificate; `ValueError` else.

    The message is OpenBao's ("data does not contain any valid public keys"), never the input.
    """
    data = text.strip().encode("utf-8", "replace")
    key: object = None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = x509.load_pem_x509_certificate(data).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            key = None
    usable = _usable(key)
    if usable is None:
        raise ValueError("data does not contain any valid public keys")
    return usable


def parse_jwks(document: Any) -> list[VerificationKey]:
    """The usable keys of a JWKS document (`{"keys": [...]}`); `ValueError` if it is none.

    Keys that are not asymmetric signature keys (`oct`, `use: enc`, unknown types or curves,
    short RSA) are skipped, as JWKS consumers do, so a provider may publish others beside.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: list[VerificationKey] = []
    for entry in _signature_jwks(document["keys"]):
        try:
            # PyJWK parses the JWK; only its public key object is used, so the algorithm is
            # still decided by the key type below and not by the JWK's own `alg` field.
            jwk = PyJWK.from_dict(dict(entry))
        except (PyJWTError, ValueError, TypeError, KeyError):
            continue
        kid = entry.get("kid")
        usable = _usable(jwk.key, kid if isinstance(kid, str) else None)
        if usable is None:
            continue
        declared = entry.get("alg")
        if isinstance(declared, str):
            # A JWK that names its algorithm is used with that one only (RFC 7517 §4.4).
            usable = VerificationKey(usable.key, usable.algorithms & {declared}, usable.kid)
        if usable.algorithms:
            keys.append(usable)
        if len(keys) == MAX_JWKS_KEYS:
            break  # a login may try every key (no kid): bound that work
    if not keys:
        raise ValueError("no usable keys in the JWKS document")
    return keys


def _signature_jwks(entries: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        yield entry
