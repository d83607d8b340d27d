"""`sys/generate-root-token/*`: a new root token from a quorum of key shares (OpenBao 2.6+).

Losing the root token is not fatal: holders of the unseal key shares (recovery key shares
with the pkcs11 seal) start an attempt, which draws a one-time pad; each gives a share; at
the threshold the shares are checked against the seal and a fresh root token is minted and
handed out only as `encoded_token` = base64(token XOR otp) (raw, unpadded), which the starter
decodes with the OTP (`bao operator generate-root -decode=... -otp=...`). OpenBao's texts and
shapes; where OpenBao answers a caller's mistake with 500 (no attempt, wrong nonce, a key
given twice, a wrong key), this answers 400: clients retry 5xx.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

from tenantvault import _b64
from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_str
from tenantvault._random_text import random_text
from tenantvault._request import Response
from tenantvault.seal._shamir_seal import decode_key_share

__all__ = ["GENERATE_ROOT_PARAMETERS", "QuorumSeal", "RootGeneration"]

GENERATE_ROOT_PARAMETERS: Final = frozenset({"otp", "pgp_key", "key", "nonce"})
_BASE62: Final = string.ascii_letters + string.digits


class QuorumSeal(Protocol):
    """A seal whose key shares (unseal or recovery) can prove a quorum."""

    @property
    def quorum(self) -> int:
        """Shares needed (0: this seal has no shares)."""
        ...

    def check_shares(self, parts: list[bytes]) -> None:
        """`InvalidRequestError` unless `parts` rebuild the seal's key."""
        ...


class RootGeneration:
    """The one root generation attempt of the server (root namespace)."""

    def __init__(
        self, seal: QuorumSeal, *, mint: Callable[[], Awaitable[str]], otp_length: int
    ) -> None:
        self._seal = seal
        self._mint = mint
        self._otp_length = otp_length
        self._nonce = ""
        self._otp = ""
        self._parts: list[bytes] = []

    def __repr__(self) -> str:
        return f"<RootGeneration {'started' if self._nonce else 'idle'}>"

    def _require_shares(self) -> int:
        quorum = self._seal.quorum
        if not quorum:
            raise InvalidRequestError(
                "the file seal has no key shares to generate a root token with (serve with "
                "--seal shamir or pkcs11)"
            )
        return quorum

    def status(self) -> Response:
        """`GET sys/generate-root-token/attempt`."""
        required = self._require_shares()
        data: dict[str, Any] = {
            "complete": False,
            "otp": "",
            "otp_length": self._otp_length,
            "progress": len(self._parts),
            "required": required,
            "started": bool(self._nonce),
        }
        if self._nonce:
            data.update(nonce=self._nonce, pgp_fingerprint="")
        return Response(data=data)

    def start(self, data: Mapping[str, Any]) -> Response:
        """`PUT sys/generate-root-token/attempt`: a nonce, and the OTP unless one was given."""
        required = self._require_shares()
        if get_str(data, "pgp_key"):
            raise InvalidRequestError("PGP-encrypted root tokens are not supported")
        given = get_str(data, "otp") or ""
        if given and len(given) != self._otp_length:
            raise InvalidRequestError("OTP string has incorrect length")
        if self._nonce:
            raise InvalidRequestError("root generation already in progress for this namespace")
        drawn = "" if given else random_text(_BASE62, self._otp_length)
        self._nonce, self._otp, self._parts = str(uuid.uuid4()), given or drawn, []
        return Response(
            data={
                "complete": False,
                "nonce": self._nonce,
                "otp": drawn,
                "otp_length": self._otp_length,
                "pgp_fingerprint": "",
                "progress": 0,
                "required": required,
                "started": True,
            }
        )

    def cancel(self) -> Response:
        """`DELETE sys/generate-root-token/attempt`."""
        self._nonce, self._otp, self._parts = "", "", []
        return Response.no_content()

    async def update(self, data: Mapping[str, Any]) -> Response:
        """`PUT sys/generate-root-token/update`: one share; at the quorum, the encoded token."""
        required = self._require_shares()
        nonce, text = get_str(data, "nonce"), get_str(data, "key")
        if not nonce:
            raise InvalidRequestError("nonce is required")
        if not text:
            raise InvalidRequestError("key is required")
        key = decode_key_share(text)
        if not self._nonce:
            raise InvalidRequestError("no root generation in progress")
        if not secrets.compare_digest(nonce, self._nonce):
            raise InvalidRequestError(
                "incorrect nonce supplied; nonce for this root generation operation is "
                f'"{self._nonce}"'
            )
        if any(secrets.compare_digest(part, key) for part in self._parts):
            raise InvalidRequestError(
                "given key has already been provided during this generation operation"
            )
        self._parts.append(key)
        progress = len(self._parts)
        answer: dict[str, Any] = {
            "complete": False,
            "encoded_token": "",
            "nonce": self._nonce,
            "pgp_fingerprint": "",
            "progress": progress,
            "required": required,
            "started": True,
        }
        if progress < required:
            return Response(data=answer)
        parts, otp, self._parts = self._parts, self._otp, []
        try:
            self._seal.check_shares(parts)
        except InvalidRequestError as error:
            raise InvalidRequestError(
                f"root generation aborted: unable to authenticate: {error.message}"
            ) from None
        token = await self._mint()
        self._nonce, self._otp = "", ""
        answer.update(complete=True, encoded_token=_encode(token, otp))
        return Response(data=answer)


def _encode(token: str, otp: str) -> str:
    """Vault's encoding: base64 (standard alphabet, no padding) of token XOR otp."""
    raw = bytes(a ^ b for a, b in zip(token.encode(), otp.encode(), strict=True))
    return _b64.encode(raw).rstrip("=")
