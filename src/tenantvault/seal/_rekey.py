"""`sys/rotate/root/*` (OpenBao 2.6+'s rekey, `bao operator rotate-keys`): new unseal key
shares from a quorum of the current ones.

The master key stays (no data is re-encrypted); it is sealed under a fresh unseal key whose
shares are handed out once. OpenBao's shapes and texts. Not offered: `backup` and PGP keys
(shares are never stored, encrypted or not) and `require_verification` (the new shares are
in effect at once) — both refused with a reason rather than half-done.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any, Final, Protocol

from tenantvault import _b64
from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._request import Response
from tenantvault.seal._shamir_seal import check_seal_config, decode_key_share

__all__ = ["REKEY_PARAMETERS", "Rekeyable", "RootRotation"]

REKEY_PARAMETERS: Final = frozenset(
    {
        "secret_shares",
        "secret_threshold",
        "pgp_keys",
        "backup",
        "require_verification",
        "key",
        "nonce",
    }
)


class Rekeyable(Protocol):
    """A seal whose unseal key shares can be replaced (the Shamir seal)."""

    @property
    def quorum(self) -> int: ...

    async def rekey(self, parts: list[bytes], shares: int, threshold: int) -> list[bytes]: ...


class RootRotation:
    """The one rekey attempt of the server."""

    def __init__(self, seal: Rekeyable | None) -> None:
        self._seal = seal
        self._nonce = ""
        self._shares = 0
        self._threshold = 0
        self._parts: list[bytes] = []

    def __repr__(self) -> str:
        return f"<RootRotation {'started' if self._nonce else 'idle'}>"

    def _require(self) -> Rekeyable:
        if self._seal is None or not self._seal.quorum:
            raise InvalidRequestError(
                "only the shamir seal has unseal key shares to rotate (the file seal has a "
                "key file, the pkcs11 seal an HSM key)"
            )
        return self._seal

    def _started(self) -> dict[str, Any]:
        return {
            "n": self._shares,
            "nonce": self._nonce,
            "progress": len(self._parts),
            "required": self._require().quorum,
            "started": True,
            "t": self._threshold,
            "verification_nonce": "",
            "verification_required": False,
        }

    def status(self) -> Response:
        """`GET sys/rotate/root/init`."""
        seal = self._require()
        if not self._nonce:
            return Response(data={"n": 0, "required": seal.quorum, "started": False, "t": 0})
        return Response(data=self._started())

    def start(self, data: Mapping[str, Any]) -> Response:
        """`PUT sys/rotate/root/init`: the new shares' count and threshold."""
        self._require()
        if self._nonce:
            raise InvalidRequestError("rotation already in progress")
        if data.get("pgp_keys") or get_bool(data, "backup", default=False):
            raise InvalidRequestError("PGP-encrypted or backed-up key shares are not supported")
        if get_bool(data, "require_verification", default=False):
            raise InvalidRequestError(
                "verification of the new shares is not supported: they are in effect at once"
            )
        shares = get_int(data, "secret_shares", default=0) or 0
        threshold = get_int(data, "secret_threshold", default=0) or 0
        check_seal_config(shares, threshold, prefix="invalid rotate seal configuration: ")
        self._nonce, self._shares, self._threshold = str(uuid.uuid4()), shares, threshold
        self._parts = []
        return Response(data=self._started())

    def cancel(self) -> Response:
        """`DELETE sys/rotate/root/init`."""
        self._nonce, self._parts = "", []
        return Response.no_content()

    async def update(self, data: Mapping[str, Any]) -> Response:
        """`PUT sys/rotate/root/update`: one current share; at the quorum, the new shares."""
        seal = self._require()
        nonce, text = get_str(data, "nonce"), get_str(data, "key")
        if not nonce:
            raise InvalidRequestError("missing required field 'nonce'")
        if not text:
            raise InvalidRequestError("missing required field 'key'")
        key = decode_key_share(text)
        if not self._nonce:
            raise InvalidRequestError("no rotation in progress")
        if not secrets.compare_digest(nonce, self._nonce):
            raise InvalidRequestError(
                f'incorrect nonce supplied; nonce for rotation is "{self._nonce}"'
            )
        if any(secrets.compare_digest(part, key) for part in self._parts):
            raise InvalidRequestError("given key has already been provided during this rotation")
        self._parts.append(key)
        if len(self._parts) < seal.quorum:
            return Response(data=self._started())
        parts, self._parts = self._parts, []
        new_parts = await seal.rekey(parts, self._shares, self._threshold)
        done_nonce, self._nonce = self._nonce, ""
        return Response(
            data={
                "backup": False,
                "complete": True,
                "keys": [part.hex() for part in new_parts],
                "keys_base64": [_b64.encode(part) for part in new_parts],
                "nonce": done_nonce,
                "pgp_fingerprints": None,
                "verification_nonce": "",
                "verification_required": False,
            }
        )
