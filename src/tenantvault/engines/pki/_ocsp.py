"""The OCSP responder of a pki mount: `GET ocsp/<base64 DER>` (plain or URL-escaped) and
`POST ocsp` (RFC 6960).

OpenBao's answers, byte for byte where they are fixed: a malformed request (bad base64, bad
DER, an unknown hash, 2048 bytes or more) is the OCSP `malformedRequest` response with 400,
a disabled responder or an issuer that may not sign OCSP the `unauthorized` one with 401,
an ed25519 issuer `internalError` with 500 (OpenBao's OCSP library signs with RSA and ECDSA
keys only). Otherwise 200 and a basic response signed by the issuer whose name and key
hashes the request names, responder id by name, no certificates and no nonce (OpenBao
echoes none): a serial carrying a revocation mark is `revoked` (time, no reason), any other
serial `good` (OpenBao does not look the certificate up), and a request for an issuer the
mount does not have is `unknown`, signed by the default issuer. `config/crl` says whether
the responder is on (`ocsp_disable`) and how long an answer is valid (`ocsp_expiry`, 12h by
default; 0: no nextUpdate).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp

from tenantvault import _b64
from tenantvault._exceptions import UnsupportedOperationError
from tenantvault._request import OCSP_GET_FIELD, OCSP_REQUEST_FIELD, Response
from tenantvault.crypto import GoBase64Error, go_b64decode
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._common import PkiHandlers, utc
from tenantvault.engines.pki._crl_config import go_duration, load_crl_config
from tenantvault.engines.pki._keys import PrivateKey
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import format_serial, load_certificates, signature_hash

__all__ = ["Responder"]

CONTENT_TYPE: Final = "application/ocsp-response"
# OpenBao's `maximumRequestSize`: a request of this size or more is malformed.
_MAX_REQUEST_BYTES: Final = 2048
_OCSP_USAGE: Final = "ocsp-signing"

Hash = hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512


class _Refused(Exception):
    """The request gets a fixed unsuccessful response (`status`, with this HTTP status)."""

    def __init__(self, status: ocsp.OCSPResponseStatus, http_status: int) -> None:
        super().__init__(status.name)
        self.status = status
        self.http_status = http_status


_MALFORMED: Final = (ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
_UNAUTHORIZED: Final = (ocsp.OCSPResponseStatus.UNAUTHORIZED, 401)
_INTERNAL: Final = (ocsp.OCSPResponseStatus.INTERNAL_ERROR, 500)


def _refusal(status: ocsp.OCSPResponseStatus, http_status: int) -> Response:
    body = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
    return Response(status=http_status, body=body, content_type=CONTENT_TYPE)


def _parse(der: bytes | None) -> ocsp.OCSPRequest:
    """The request, or `_Refused` (malformed) for anything OpenBao's parser refuses."""
    if not der or len(der) >= _MAX_REQUEST_BYTES:
        raise _Refused(*_MALFORMED)
    try:
        request = ocsp.load_der_ocsp_request(der)
        request.hash_algorithm  # noqa: B018 -- an unknown hash OID is malformed too
    except (ValueError, UnsupportedAlgorithm):
        raise _Refused(*_MALFORMED) from None
    return request


def _key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bytes, which an OCSP CertID hashes."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b""


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize()


def _hashes(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuer name hash, issuer key hash) of a CA certificate, as a CertID names it."""
    return (
        _digest(algorithm, certificate.subject.public_bytes()),
        _digest(algorithm, _key_bits(certificate)),
    )


def _response_hash(key: PrivateKey, issuer: Mapping[str, Any]) -> Hash | None:
    """The issuer's `revocation_signature_algorithm` hash (PSS signs as PKCS#1 v1.5 here, as
    OpenBao downgrades it), else the key's default."""
    named = str(issuer.get("revocation_signature_algorithm") or "").upper()
    for size, algorithm in (("SHA512", hashes.SHA512()), ("SHA384", hashes.SHA384())):
        if size in named:
            return algorithm
    if "SHA256" in named:
        return hashes.SHA256()
    return signature_hash(key)


class Responder(PkiHandlers):
    """`ocsp` and `ocsp/<request>`: the revocation status of one serial, signed."""

    async def query_get(self, call: Call, store: PkiStore, mount: Mount, encoded: str) -> Response:
        """`GET ocsp/<base64 DER>`: the request in the path (Go's strict padded base64)."""
        der: bytes | None = None
        if encoded and len(encoded) < _MAX_REQUEST_BYTES:
            try:
                der = go_b64decode(encoded)
            except GoBase64Error:
                der = None
        return await self._answer(store, der)

    async def query_escaped(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET ocsp/<URL-escaped base64 DER>`: the base64 the HTTP layer unescaped
        (`OCSP_GET_FIELD`); without it, `GET ocsp` is unsupported (as in OpenBao)."""
        encoded = call.data.get(OCSP_GET_FIELD)
        if not isinstance(encoded, str):
            raise UnsupportedOperationError()
        return await self.query_get(call, store, mount, encoded)

    async def query_post(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST ocsp`: the request as the body (`application/ocsp-request`, DER)."""
        encoded = call.data.get(OCSP_REQUEST_FIELD)
        der: bytes | None = None
        if isinstance(encoded, str):
            try:
                der = _b64.decode(encoded)
            except ValueError:
                der = None
        return await self._answer(store, der)

    async def _answer(self, store: PkiStore, der: bytes | None) -> Response:
        try:
            expiry = await self._expiry(store)
            request = _parse(der)
            body = await self._respond(store, request, expiry)
        except _Refused as refused:
            return _refusal(refused.status, refused.http_status)
        return Response(body=body, content_type=CONTENT_TYPE)

    async def _expiry(self, store: PkiStore) -> timedelta | None:
        """How long an answer is valid (`ocsp_expiry`; None for 0: no nextUpdate), or
        `_Refused` (unauthorized) when `config/crl` has `ocsp_disable`."""
        config = await load_crl_config(store)
        if config.ocsp_disable:
            raise _Refused(*_UNAUTHORIZED)
        try:
            seconds = go_duration(config.ocsp_expiry)
        except ValueError:
            raise _Refused(*_INTERNAL) from None
        return timedelta(seconds=seconds) if seconds > 0 else None

    async def _respond(
        self, store: PkiStore, request: ocsp.OCSPRequest, expiry: timedelta | None
    ) -> bytes:
        algorithm = request.hash_algorithm
        serial = format_serial(request.serial_number)
        record = await store.cert(serial)
        revoked_ns = 0
        candidates: list[str] = await store.issuer_ids()
        if record is not None and await store.is_marked_revoked(serial):
            revoked_ns = int(record.get("revocation_time_ns") or 0)
            if revoked_ns:
                # OpenBao answers a revoked serial only for the issuer that revoked it.
                candidates = [record["issuer_id"]]
        matched_without_usage = False
        for issuer_id in candidates:
            issuer = await store.issuer(issuer_id)
            if issuer is None or not issuer.get("key_id"):
                continue
            certificate = load_certificates(issuer["certificate"])[0]
            if _hashes(certificate, algorithm) != (
                request.issuer_name_hash,
                request.issuer_key_hash,
            ):
                continue
            if _OCSP_USAGE not in str(issuer["usage"]).split(","):
                matched_without_usage = True
                continue
            status = ocsp.OCSPCertStatus.REVOKED if revoked_ns else ocsp.OCSPCertStatus.GOOD
            return await self._signed(store, issuer, request, status, expiry, revoked_ns=revoked_ns)
        if matched_without_usage:
            raise _Refused(*_UNAUTHORIZED)
        # No issuer of this mount issued it: `unknown`, signed by the default issuer if any.
        default = await store.resolve_issuer("default")
        if default is None or not default.get("key_id"):
            raise _Refused(*_UNAUTHORIZED)
        if _OCSP_USAGE not in str(default["usage"]).split(","):
            raise _Refused(*_UNAUTHORIZED)
        return await self._signed(store, default, request, ocsp.OCSPCertStatus.UNKNOWN, expiry)

    async def _signed(
        self,
        store: PkiStore,
        issuer: Mapping[str, Any],
        request: ocsp.OCSPRequest,
        status: ocsp.OCSPCertStatus,
        expiry: timedelta | None,
        *,
        revoked_ns: int = 0,
    ) -> bytes:
        """A basic response about the request's serial, signed by `issuer` (whose hashes the
        CertID carries, as Go's `ocsp.CreateResponse` writes it)."""
        key = await self._signing_key(store, issuer)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            # OpenBao's OCSP library signs with RSA and ECDSA keys only: an ed25519 issuer
            # answers internalError (500) there, and so here, so clients see one behaviour.
            raise _Refused(*_INTERNAL)
        certificate = load_certificates(issuer["certificate"])[0]
        name_hash, key_hash = _hashes(certificate, request.hash_algorithm)
        now = self._now()
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=now,
            next_update=now + expiry if expiry else None,
            revocation_time=utc(revoked_ns) if revoked_ns else None,
            revocation_reason=None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, certificate)
        signed = builder.sign(key, _response_hash(key, issuer))
        return signed.public_bytes(serialization.Encoding.DER)
