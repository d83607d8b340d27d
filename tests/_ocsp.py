"""OCSP requests for the responder tests, shaped so that their `GET ocsp/<base64>` form works.

The base64 of a DER request may hold `//`, or start or end with `/`: an empty path segment,
which tenantvault refuses (400, like every path) and OpenBao redirects, so neither answers
it. A certificate's serial is random, so such a request turns up in a few runs in a hundred;
a nonce that gives a base64 without an empty segment keeps the GET form deterministic. (An
escaped `%2F` is no way out: tenantvault refuses encoded separators in every path.)
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

__all__ = ["get_safe_request"]


def _has_empty_segment(encoded: str) -> bool:
    return "//" in encoded or encoded.startswith("/") or encoded.endswith("/")


def get_safe_request(leaf: x509.Certificate, issuer: x509.Certificate, algorithm: Any) -> bytes:
    """The DER OCSP request for `leaf`, with a nonce chosen so that its base64 has no empty
    path segment where a nonce can prevent one."""
    der = b""
    for attempt in range(256):
        builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm)
        nonce = x509.OCSPNonce(b"0123456789abcd" + attempt.to_bytes(2, "big"))
        der = (
            builder.add_extension(nonce, critical=False)
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        if not _has_empty_segment(base64.b64encode(der).decode()):
            return der
    # The empty segment lies in the CertID (serial, key hash), which no nonce reshapes: the
    # request is still right for POST; its GET form fails on both servers.
    return der
