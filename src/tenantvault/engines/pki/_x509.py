"""Certificates, CSRs and CRLs as Vault's PKI engine builds them, with `cryptography`'s x509 API.

Only this module knows X.509: the engine hands it names, keys, times and flags and gets PEM
back. Extensions follow Vault's `certutil`: CA certificates carry critical basic constraints
and keyCertSign|cRLSign; leaves carry the role's key usage and extended key usage; every
certificate has subject and authority key identifiers and the mount's AIA URLs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.pki._keys import PrivateKey, PublicKey

__all__ = [
    "Names",
    "Subject",
    "Urls",
    "build_certificate",
    "build_crl",
    "build_csr",
    "certificate_pem",
    "crl_pem",
    "format_serial",
    "load_certificates",
    "load_csr",
    "public_key_of",
    "same_public_key",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_KEY_USAGES: Final = {
    "digitalsignature": "digital_signature",
    "contentcommitment": "content_commitment",
    "keyencipherment": "key_encipherment",
    "dataencipherment": "data_encipherment",
    "keyagreement": "key_agreement",
    "certsign": "key_cert_sign",
    "crlsign": "crl_sign",
    "encipheronly": "encipher_only",
    "decipheronly": "decipher_only",
}
_EXT_KEY_USAGES: Final = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "serverauth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientauth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codesigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailprotection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsecendsystem": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsectunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsecuser": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocspsigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoftservergatedcrypto": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscapeservergatedcrypto": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


@dataclass(frozen=True, slots=True)
class Subject:
    """A certificate subject, in the order Go's `pkix.Name` writes it."""

    common_name: str = ""
    country: Sequence[str] = ()
    province: Sequence[str] = ()
    locality: Sequence[str] = ()
    street_address: Sequence[str] = ()
    postal_code: Sequence[str] = ()
    organization: Sequence[str] = ()
    ou: Sequence[str] = ()
    serial_number: str = ""

    def name(self) -> x509.Name:
        attributes: list[x509.NameAttribute[str]] = []
        for oid, values in (
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.STATE_OR_PROVINCE_NAME, self.province),
            (NameOID.LOCALITY_NAME, self.locality),
            (NameOID.STREET_ADDRESS, self.street_address),
            (NameOID.POSTAL_CODE, self.postal_code),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.ou),
        ):
            attributes += [x509.NameAttribute(oid, value) for value in values]
        if self.common_name:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        if self.serial_number:
            attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, self.serial_number))
        return x509.Name(attributes)


@dataclass(frozen=True, slots=True)
class Names:
    """The subject alternative names of a certificate."""

    dns: Sequence[str] = ()
    emails: Sequence[str] = ()
    ips: Sequence[IpAddress] = ()
    uris: Sequence[str] = ()
    # (OID, UTF-8 value) pairs: Vault's `other_sans` (only its UTF8 form exists).
    other: Sequence[tuple[str, str]] = ()

    def extension(self) -> x509.SubjectAlternativeName | None:
        general: list[x509.GeneralName] = [x509.DNSName(name) for name in self.dns]
        general += [
            x509.OtherName(x509.ObjectIdentifier(oid), _utf8_string(value))
            for oid, value in self.other
        ]
        general += [x509.RFC822Name(email) for email in self.emails]
        general += [x509.IPAddress(ip) for ip in self.ips]
        general += [x509.UniformResourceIdentifier(uri) for uri in self.uris]
        return x509.SubjectAlternativeName(general) if general else None


@dataclass(frozen=True, slots=True)
class Urls:
    """The mount's `config/urls`: AIA and CRL distribution points written into certificates."""

    issuing_certificates: Sequence[str] = ()
    crl_distribution_points: Sequence[str] = ()
    ocsp_servers: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """What a certificate may be used for: CA (with path length) or leaf usages."""

    is_ca: bool = False
    max_path_length: int | None = None  # None: unconstrained (Vault's -1)
    key_usage: Sequence[str] = ()
    ext_key_usage: Sequence[x509.ObjectIdentifier] = field(default_factory=tuple)
    # A leaf with basicConstraints CA:FALSE (the role's `basic_constraints_valid_for_non_ca`).
    leaf_constraints: bool = False


def _utf8_string(value: str) -> bytes:
    """The DER of an ASN.1 UTF8String (an otherName's value)."""
    raw = value.encode("utf-8")
    if len(raw) < 0x80:
        return bytes([0x0C, len(raw)]) + raw
    size = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(size)]) + size + raw


def format_serial(serial: int) -> str:
    """Vault's colon-separated lowercase hex of the serial's minimal big-endian bytes."""
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return ":".join(f"{byte:02x}" for byte in raw)


def ext_key_usages(names: Sequence[str], oids: Sequence[str]) -> list[x509.ObjectIdentifier]:
    """Role `ext_key_usage` names (case-insensitive; unknown ones ignored, as Vault does)
    and `ext_key_usage_oids`, without duplicates, in order."""
    found: list[x509.ObjectIdentifier] = []
    for name in names:
        oid = _EXT_KEY_USAGES.get(name.replace("_", "").lower())
        if oid is not None and oid not in found:
            found.append(oid)
    for text in oids:
        try:
            oid = x509.ObjectIdentifier(text)
        except ValueError:
            raise InvalidRequestError(f"{text} is not a valid OID") from None
        if oid not in found:
            found.append(oid)
    return found


def _key_usage(names: Sequence[str], *, is_ca: bool) -> x509.KeyUsage | None:
    flags = dict.fromkeys(_KEY_USAGES.values(), False)
    if is_ca:
        flags["key_cert_sign"] = flags["crl_sign"] = True
    for name in names:
        attribute = _KEY_USAGES.get(name.lower())
        if attribute is not None:
            flags[attribute] = True
    if not any(flags.values()):
        return None
    return x509.KeyUsage(**flags)


def signature_hash(
    key: PrivateKey, signature_bits: int = 0
) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """Vault's default: SHA-256 for RSA, the curve's size for EC, none for ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    bits = signature_bits
    if not bits and isinstance(key, ec.EllipticCurvePrivateKey):
        bits = {384: 384, 521: 512}.get(key.curve.key_size, 256)
    if bits == 384:
        return hashes.SHA384()
    if bits == 512:
        return hashes.SHA512()
    return hashes.SHA256()


def build_certificate(
    *,
    subject: Subject,
    names: Names,
    public_key: PublicKey,
    issuer: x509.Certificate | None,
    signing_key: PrivateKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    usage: Usage,
    urls: Urls,
    signature_bits: int = 0,
    subject_name: x509.Name | None = None,
    copied: Sequence[x509.Extension[x509.ExtensionType]] = (),
    use_pss: bool = False,
) -> x509.Certificate:
    """A certificate for `public_key`, signed by `signing_key` (self-signed without `issuer`).

    `subject_name` and `copied` are a CSR's own subject and extensions (sign-verbatim): the
    copied ones come last and replace any this function would add with the same OID, as Go's
    `ExtraExtensions` do. `use_pss` signs with RSASSA-PSS (salt as long as the hash, Go's).
    """
    subject_name = subject_name if subject_name is not None else subject.name()
    skip = frozenset(extension.oid for extension in copied)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer.subject if issuer is not None else subject_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    key_usage = _key_usage(usage.key_usage, is_ca=usage.is_ca)
    if key_usage is not None:
        builder = _add(builder, skip, key_usage, critical=True)
    if usage.ext_key_usage and not usage.is_ca:
        builder = _add(
            builder, skip, x509.ExtendedKeyUsage(list(usage.ext_key_usage)), critical=False
        )
    if usage.is_ca or usage.leaf_constraints:
        constraints = x509.BasicConstraints(
            ca=usage.is_ca, path_length=usage.max_path_length if usage.is_ca else None
        )
        builder = _add(builder, skip, constraints, critical=True)
    builder = _add(
        builder, skip, x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    )
    authority = public_key_of(issuer) if issuer is not None else public_key
    builder = _add(
        builder, skip, x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), critical=False
    )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
        )
        for url in urls.issuing_certificates
    ] + [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
        )
        for url in urls.ocsp_servers
    ]
    if access:
        builder = _add(builder, skip, x509.AuthorityInformationAccess(access), critical=False)
    alternative = names.extension()
    if alternative is not None:
        builder = _add(builder, skip, alternative, critical=False)
    if urls.crl_distribution_points:
        points = [
            x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
            for url in urls.crl_distribution_points
        ]
        builder = _add(builder, skip, x509.CRLDistributionPoints(points), critical=False)
    for extension in copied:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    digest = signature_hash(signing_key, signature_bits)
    if use_pss and isinstance(signing_key, rsa.RSAPrivateKey) and digest is not None:
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.DIGEST_LENGTH)
        return builder.sign(signing_key, digest, rsa_padding=pss)
    return builder.sign(signing_key, digest)


def _add(
    builder: x509.CertificateBuilder,
    skip: frozenset[x509.ObjectIdentifier],
    extension: x509.ExtensionType,
    *,
    critical: bool,
) -> x509.CertificateBuilder:
    """Add a generated extension unless a copied one of the same OID replaces it."""
    if extension.oid in skip:
        return builder
    return builder.add_extension(extension, critical=critical)


def build_csr(*, subject: Subject, names: Names, key: PrivateKey) -> x509.CertificateSigningRequest:
    """An intermediate CA's CSR (with CA basic constraints, as Vault's `add_basic_constraints`
    would ask for; the signer decides what the certificate gets)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject.name())
    alternative = names.extension()
    if alternative is not None:
        builder = builder.add_extension(alternative, critical=False)
    return builder.sign(key, signature_hash(key))


def build_crl(
    *,
    issuer: x509.Certificate,
    signing_key: PrivateKey,
    revoked: Sequence[tuple[int, datetime]],
    number: int,
    this_update: datetime,
    next_update: datetime,
    delta_of: int | None = None,
) -> x509.CertificateRevocationList:
    """The issuer's CRL listing `revoked` (serial, revocation time); with `delta_of`, a delta
    CRL of the complete CRL with that number (its critical DeltaCRLIndicator, RFC 5280)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key_of(issuer)),
            critical=False,
        )
    )
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(signing_key, signature_hash(signing_key))


def certificate_pem(certificate: x509.Certificate) -> str:
    """PEM text without the trailing newline, as Vault returns certificates."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")


def crl_pem(crl: x509.CertificateRevocationList) -> str:
    """A CRL as PEM text (`X509 CRL` block), trailing newline kept off."""
    return crl.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")


def certificate_der(pem: str) -> bytes:
    """The DER form of one PEM certificate (PKI's raw `ca` endpoint)."""
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def crl_der(pem: str) -> bytes:
    """The DER form of a PEM CRL (PKI's raw `crl` endpoint)."""
    return x509.load_pem_x509_crl(pem.encode()).public_bytes(serialization.Encoding.DER)


def load_certificates(text: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (other blocks, keys included, are skipped)."""
    try:
        return x509.load_pem_x509_certificates(text.encode("utf-8"))
    except ValueError:
        return []


_GO_CURVES: Final = frozenset({"secp224r1", "secp256r1", "secp384r1", "secp521r1"})


def load_csr(text: str) -> x509.CertificateSigningRequest:
    """A PEM CSR; Vault's texts when it is absent or does not parse."""
    if "-----BEGIN" not in text:
        raise InvalidRequestError("csr contains no data")
    try:
        csr = x509.load_pem_x509_csr(text.encode("utf-8"))
    except ValueError as error:
        raise InvalidRequestError(f"certificate request could not be parsed: {error}") from None
    try:
        key: object = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        key = None  # refused by `public_key_of` when the key is needed
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in _GO_CURVES:
        # Go's x509 parser (OpenBao's) knows only the NIST curves P-224 to P-521.
        raise InvalidRequestError(
            "certificate request could not be parsed: x509: unsupported elliptic curve"
        )
    if not csr.is_signature_valid:
        raise InvalidRequestError("request signature invalid")
    return csr


def public_key_of(item: x509.Certificate | x509.CertificateSigningRequest) -> PublicKey:
    """The RSA, EC or ed25519 public key of a certificate or CSR; 400 for other types."""
    try:
        key = item.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidRequestError("unsupported public key type") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise InvalidRequestError("unsupported public key type")
    return key


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    """Whether two public keys are the same key (compared as SubjectPublicKeyInfo bytes)."""
    form = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(serialization.Encoding.DER, form) == b.public_bytes(
        serialization.Encoding.DER, form
    )


def utc(seconds: float) -> datetime:
    """A unix time as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
