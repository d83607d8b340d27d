"""Private keys of the PKI engine: Vault's key types and sizes, generation and PEM forms."""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tenantvault._exceptions import InvalidRequestError

__all__ = [
    "PrivateKey",
    "PublicKey",
    "check_csr_key",
    "generate_key",
    "key_pem",
    "key_type_of",
    "load_key",
    "normalize_key",
    "public_half",
    "signature_algorithm_name",
]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: Final[dict[int, ec.EllipticCurve]] = {
    224: ec.SECP224R1(),
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
_RSA_BITS: Final = frozenset({2048, 3072, 4096, 8192})
_DEFAULT_BITS: Final = {"rsa": 2048, "ec": 256, "ed25519": 0, "any": 0}


def normalize_key(key_type: str, key_bits: int) -> tuple[str, int]:
    """(type, bits) with Vault's defaults (0 → 2048 rsa, 256 ec), or Vault's refusal."""
    if key_type not in _DEFAULT_BITS:
        raise InvalidRequestError(f"unknown key type {key_type}")
    bits = key_bits or _DEFAULT_BITS[key_type]
    if key_type == "rsa":
        if bits < 2048:
            raise InvalidRequestError(
                f"RSA keys < 2048 bits are unsafe and not supported: got {bits}"
            )
        if bits not in _RSA_BITS:
            raise InvalidRequestError(f"unsupported bit length for RSA key: {bits}")
    elif key_type == "ec" and bits not in _CURVES:
        raise InvalidRequestError(f"unsupported bit length for EC key: {bits}")
    elif key_type == "ed25519":
        bits = 0
    return key_type, bits


def generate_key(key_type: str, key_bits: int) -> PrivateKey:
    """A fresh key of a normalized (type, bits)."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    if key_type == "ec":
        return ec.generate_private_key(_CURVES[key_bits])
    return ed25519.Ed25519PrivateKey.generate()


def key_type_of(key: PrivateKey | PublicKey) -> str:
    """Vault's `private_key_type` name of a key: rsa, ec or ed25519."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    return "ed25519"


def check_csr_key(role_key_type: str, role_key_bits: int, public: PublicKey) -> None:
    """Refuse a CSR's key the role does not allow, with OpenBao's texts: another type than
    the role's, fewer bits than the role's `key_bits` (its minimum for signing), and for a
    role of type `any` (which ignores `key_bits`) RSA below 2048 bits or EC below P-224."""
    actual = key_type_of(public)
    if role_key_type not in ("any", actual):
        raise InvalidRequestError(f"role requires keys of type {role_key_type}")
    if isinstance(public, ed25519.Ed25519PublicKey):
        return
    bits = public.key_size if isinstance(public, rsa.RSAPublicKey) else public.curve.key_size
    if role_key_type == "any":
        if actual == "rsa" and bits < 2048:
            raise InvalidRequestError("RSA keys < 2048 bits are unsafe and not supported")
        minimum = 2048 if actual == "rsa" else 224
    else:
        minimum = role_key_bits
    if bits < minimum:
        raise InvalidRequestError(
            f"role requires a minimum of a {minimum}-bit key, but CSR's key is {bits} bits"
        )


def key_pem(key: PrivateKey, *, pkcs8: bool = False) -> str:
    """The PEM Vault returns: PKCS#1 for RSA and SEC1 for EC by default, PKCS#8 on request
    (and always for ed25519, which has no other form)."""
    form = serialization.PrivateFormat.PKCS8
    if not pkcs8 and not isinstance(key, ed25519.Ed25519PrivateKey):
        form = serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode(
        "ascii"
    )


def load_key(pem: str) -> PrivateKey:
    """A key `key_pem` stored (PKCS#8), back as an object."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise InvalidRequestError("unsupported key type")
    return key


def signature_algorithm_name(key: PrivateKey) -> str:
    """OpenBao's name of the algorithm a CA key signs its CRLs with."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "SHA256WithRSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {384: "ECDSAWithSHA384", 521: "ECDSAWithSHA512"}.get(
            key.curve.key_size, "ECDSAWithSHA256"
        )
    return "PureEd25519"


def public_half(key: PrivateKey) -> PublicKey:
    """The public key of a private key."""
    return key.public_key()
