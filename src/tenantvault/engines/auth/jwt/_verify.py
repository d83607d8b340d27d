"""Verify one login JWT: signature with PyJWT against the mount's keys, then the claim checks.

The token's header is read by PyJWT (never parsed here). Its `alg` must be an asymmetric
algorithm the mount supports, and a key verifies it only if the algorithm is one of that
key's own type (`_keys.algorithms_for`): `none`, HS* and a public key reused as an HMAC secret
are refused before any key is tried. Each refusal carries OpenBao's text; none of them
repeats the token or a claim value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt
from jwt.exceptions import DecodeError, InvalidKeyError, InvalidSignatureError, PyJWTError

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.auth.jwt._claims import (
    Identity,
    check_bound_claims,
    check_registered,
    check_times,
    check_unbound_audience,
    identity,
)
from tenantvault.engines.auth.jwt._config import JwtConfig
from tenantvault.engines.auth.jwt._keys import ASYMMETRIC_ALGORITHMS, VerificationKey
from tenantvault.engines.auth.jwt._role import JwtRole

__all__ = ["MAX_TOKEN_CHARS", "KeySource", "verify"]

# A compact JWT of a real issuer is well under 8 KiB; refusing longer ones bounds the work
# an unauthenticated caller can cause (base64, JSON, signature) per attempt.
MAX_TOKEN_CHARS: Final = 16 * 1024
_SIGNATURE: Final = "error validating token: error verifying token signature: "

# Only the signature: every claim check is ours, in OpenBao's order and with its texts.
_DECODE_OPTIONS: Final[Any] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
    # A short RSA key is no key (PyJWT would only warn).
    "enforce_minimum_key_length": True,
}


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a mount's keys come from: `keys(kid)` and the text of "no key verified it"
    (OpenBao words it differently for PEM keys and for a JWKS)."""

    keys: Callable[[str | None], Awaitable[list[VerificationKey]]]
    no_key_text: str


def _header(token: str) -> Mapping[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise InvalidRequestError(_SIGNATURE + "malformed token") from None
    return header


def _verified_claims(token: str, alg: str, keys: list[VerificationKey], no_key: str) -> Any:
    for candidate in keys:
        if alg not in candidate.algorithms:
            continue
        try:
            decoded = jwt.decode_complete(
                token, candidate.key, algorithms=[alg], options=_DECODE_OPTIONS
            )
        except (InvalidSignatureError, InvalidKeyError):
            continue
        except DecodeError:
            raise InvalidRequestError(_SIGNATURE + "malformed token") from None
        except PyJWTError:
            continue
        return decoded["payload"]
    raise InvalidRequestError(_SIGNATURE + no_key)


async def verify(
    token: str,
    *,
    config: JwtConfig,
    role_name: str,
    role: JwtRole,
    source: KeySource,
    now: float,
) -> Identity:
    """The identity a valid token establishes for `role`; `InvalidRequestError` otherwise."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidRequestError(_SIGNATURE + "token too large")
    header = _header(token)
    alg = header.get("alg")
    kid = header.get("kid")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
        # `none`, HS256 (a public key as HMAC secret) and anything unknown: no key of this
        # method can ever verify them, and OpenBao says exactly that.
        raise InvalidRequestError(_SIGNATURE + source.no_key_text)
    if alg not in config.algorithms:
        raise InvalidRequestError(
            "error validating token: invalid algorithm (alg) header parameter: "
            "token signed with unexpected algorithm"
        )
    keys = await source.keys(kid if isinstance(kid, str) else None)
    claims = _verified_claims(token, alg, keys, source.no_key_text)
    if not isinstance(claims, Mapping):
        raise InvalidRequestError(_SIGNATURE + "malformed token")
    check_registered(
        claims,
        bound_issuer=config.bound_issuer,
        bound_subject=role.bound_subject,
        bound_audiences=role.bound_audiences,
    )
    check_times(claims, now=now, leeways=role.leeways)
    check_unbound_audience(claims, bound_audiences=role.bound_audiences)
    found = identity(
        claims,
        role_name=role_name,
        user_claim=role.user_claim,
        user_claim_json_pointer=role.user_claim_json_pointer,
        claim_mappings=role.claim_mappings or {},
        groups_claim=role.groups_claim,
    )
    check_bound_claims(claims, role.bound_claims or {}, glob=role.bound_claims_type == "glob")
    return found
