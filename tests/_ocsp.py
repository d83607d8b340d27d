"""OCSP requests for the responder tests, and their `GET ocsp/<…>` path as clients send it.

RFC 6960 A.1's GET form is the URL-encoding of the request's base64: `/`, `+` and `=` go as
`%2F`, `%2B`, `%3D`. The plain form (the base64 unescaped) works too unless the base64 holds
`//` or starts with `/` — an empty path segment, refused by tenantvault and redirected by
OpenBao — which a certificate's random serial gives in a few runs in a hundred; so the tests
send the escaped form, and `with_empty_segment` makes the case that needs it every run.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

__all__ = ["escaped", "ocsp_der", "with_empty_segment"]

_NONCE = b"0123456789abcdef"


def ocsp_der(
    leaf: x509.Certificate, issuer: x509.Certificate, algorithm: Any, *, nonce: bytes = _NONCE
) -> bytes:
    """The DER OCSP request for `leaf`, with `nonce`."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm)
    request = builder.add_extension(x509.OCSPNonce(nonce), critical=False).build()
    return request.public_bytes(serialization.Encoding.DER)


def with_empty_segment(leaf: x509.Certificate, issuer: x509.Certificate, algorithm: Any) -> bytes:
    """A request for `leaf` whose base64 holds `//`: a nonce of 0xff bytes is all `/` in
    base64 once aligned, and one of three offsets aligns it."""
    for pad in range(3):
        der = ocsp_der(leaf, issuer, algorithm, nonce=b"\x00" * pad + b"\xff" * 12)
        if "//" in base64.b64encode(der).decode():
            return der
    raise AssertionError("no nonce alignment gave '//'")  # base64 is 3-byte periodic


def escaped(der: bytes) -> str:
    """The path tail of RFC 6960's GET form: the base64 of `der`, URL-encoded."""
    return quote(base64.b64encode(der).decode(), safe="")
