"""The OpenAPI paths of a pki mount's fetches, at `pki/` (where `sys/mounts` enabled it;
other paths answer the same). Part of the document `_openapi` builds.

They run without a token (`security: []`, as in OpenBao), in the namespace the request names
(header or `/v1/<tenant>/` prefix); a valid token is accepted and needs no capability. The
files answer with OpenBao's content types, and 204 when the mount has no CA yet. OpenBao
answers some of them with a plain 500 (`cert/crl` or `issuer/<ref>/…` without that issuer):
those say so with `x-vault-plain-errors`. The OCSP responder (`ocsp`) answers DER OCSP
responses, its errors included.
"""

from __future__ import annotations

from typing import Final

from tenantvault.server._openapi import (
    _NAMESPACE_HEADER,
    _OK,
    Schema,
    _operation,
    _path_param,
)
from tenantvault.server._openapi_auth import PLAIN_ERRORS

__all__ = ["pki_paths"]

_ISSUER: Final = _path_param(
    "issuer_ref", "^[A-Za-z0-9_-]{1,128}$", "An issuer id, name, or `default`"
)
_SERIAL: Final = _path_param(
    "serial", "^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2})*$", "A serial, colon or hyphen separated"
)
_CERT_DER: Final = "application/pkix-cert"
_CERT_PEM: Final = "application/pem-certificate-chain"
_CRL_DER: Final = "application/pkix-crl"
_CRL_PEM: Final = "application/x-pem-file"
_OCSP_RESPONSE: Final = "application/ocsp-response"
_OCSP_REQUEST: Final = _path_param(
    "request", "^[A-Za-z0-9+/=%]+$", "An OCSP request: base64 of its DER, URL-escaped"
)


def _fetch(
    summary: str,
    media: str | None,
    *,
    parameters: list[Schema] | None = None,
    plain_errors: bool = False,
) -> Schema:
    """A tokenless GET: a file of `media` (None: Vault's JSON envelope), or 204 if none."""
    operation = _operation(
        summary,
        "pki",
        success=_OK if media is None else {"200": summary},
        parameters=[*(parameters or []), _NAMESPACE_HEADER],
    )
    operation["security"] = []
    if media is not None:
        body = {"type": "string", "format": "binary"}
        operation["responses"]["200"] = {
            "description": summary,
            "content": {media: {"schema": body}},
        }
        operation["responses"]["204"] = {"description": "No CA (or no such certificate) yet"}
    if plain_errors:
        operation[PLAIN_ERRORS] = True
    return operation


def _ocsp(method: str) -> Schema:
    """The OCSP responder: a DER OCSP response, its status the HTTP status (400 malformed,
    401 unauthorized, 500 internal error, each with the OCSP error response as body)."""
    binary = {"type": "string", "format": "binary"}
    parameters = [_OCSP_REQUEST] if method == "get" else []
    operation = _operation(
        "The revocation status of a certificate (OCSP, RFC 6960)",
        "pki",
        success={"200": "An OCSP response"},
        parameters=parameters,
        body=binary if method == "post" else None,
        body_media="application/ocsp-request",
        body_required=True,
    )
    operation["security"] = []
    for status, text in (("200", "An OCSP response"), ("400", "malformedRequest")):
        operation["responses"][status] = {
            "description": text,
            "content": {_OCSP_RESPONSE: {"schema": binary}},
        }
    return operation


def pki_paths() -> dict[str, Schema]:
    """The fetch paths of a pki mount at `pki/`."""
    issuer = [_ISSUER]
    serial = [_SERIAL]
    listing = _fetch("The mount's issuers (ids and names)", None)
    listing["parameters"].append(
        {"name": "list", "in": "query", "required": True, "schema": {"type": "boolean"}}
    )
    return {
        "/pki/ca": {"get": _fetch("The default issuer's certificate (DER)", _CERT_DER)},
        "/pki/ca/pem": {"get": _fetch("The default issuer's certificate (PEM)", _CERT_PEM)},
        "/pki/ca_chain": {"get": _fetch("The default issuer's chain (PEM)", _CERT_DER)},
        "/pki/crl": {"get": _fetch("The default issuer's CRL (DER)", _CRL_DER)},
        "/pki/crl/pem": {"get": _fetch("The default issuer's CRL (PEM)", _CRL_PEM)},
        "/pki/crl/delta": {"get": _fetch("The default issuer's delta CRL (DER)", _CRL_DER)},
        "/pki/crl/delta/pem": {"get": _fetch("The default issuer's delta CRL (PEM)", _CRL_PEM)},
        "/pki/cert/ca": {"get": _fetch("The default issuer's certificate (JSON)", None)},
        "/pki/cert/ca_chain": {"get": _fetch("The default issuer's chain (JSON)", None)},
        "/pki/cert/crl": {
            "get": _fetch("The default issuer's CRL (JSON)", None, plain_errors=True)
        },
        "/pki/cert/delta-crl": {
            "get": _fetch("The default issuer's delta CRL (JSON)", None, plain_errors=True)
        },
        "/pki/cert/{serial}": {
            "get": _fetch("A stored certificate and its revocation time", None, parameters=serial)
        },
        "/pki/cert/{serial}/raw": {
            "get": _fetch("A stored certificate (DER)", _CERT_DER, parameters=serial)
        },
        "/pki/cert/{serial}/raw/pem": {
            "get": _fetch("A stored certificate (PEM)", _CERT_PEM, parameters=serial)
        },
        "/pki/issuers": {"get": listing},
        "/pki/ocsp": {"post": _ocsp("post")},
        "/pki/ocsp/{request}": {"get": _ocsp("get")},
        "/pki/issuer/{issuer_ref}/pem": {
            "get": _fetch(
                "An issuer's certificate (PEM)", _CERT_PEM, parameters=issuer, plain_errors=True
            )
        },
        "/pki/issuer/{issuer_ref}/der": {
            "get": _fetch(
                "An issuer's certificate (DER)", _CERT_DER, parameters=issuer, plain_errors=True
            )
        },
        "/pki/issuer/{issuer_ref}/json": {
            "get": _fetch(
                "An issuer's certificate and chain", None, parameters=issuer, plain_errors=True
            )
        },
        "/pki/issuer/{issuer_ref}/crl": {
            "get": _fetch("An issuer's CRL (JSON)", None, parameters=issuer, plain_errors=True)
        },
        "/pki/issuer/{issuer_ref}/crl/pem": {
            "get": _fetch("An issuer's CRL (PEM)", _CRL_PEM, parameters=issuer, plain_errors=True)
        },
        "/pki/issuer/{issuer_ref}/crl/der": {
            "get": _fetch("An issuer's CRL (DER)", _CRL_DER, parameters=issuer, plain_errors=True)
        },
        "/pki/issuer/{issuer_ref}/crl/delta": {
            "get": _fetch(
                "An issuer's delta CRL (JSON)", None, parameters=issuer, plain_errors=True
            )
        },
        "/pki/issuer/{issuer_ref}/crl/delta/pem": {
            "get": _fetch(
                "An issuer's delta CRL (PEM)", _CRL_PEM, parameters=issuer, plain_errors=True
            )
        },
        "/pki/issuer/{issuer_ref}/crl/delta/der": {
            "get": _fetch(
                "An issuer's delta CRL (DER)", _CRL_DER, parameters=issuer, plain_errors=True
            )
        },
    }
