"""Vault's seal endpoints — `sys/seal-status`, `sys/init`, `sys/unseal`, `sys/seal` — and
the answers of a sealed server, whose Core serves nothing else.

While sealed, the Core hands every request here (`answer_sealed`) before authenticating or
auditing anything, as Vault does: there is no store to check a token against, and no audit
device is loaded. Unsealed, `engines.sys` routes the same endpoints to the same handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantvault import _b64
from tenantvault._exceptions import InvalidRequestError, UnsupportedOperationError
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._request import Operation, Request, Response
from tenantvault._version import __version__
from tenantvault.seal._seal import Seal, SealedError
from tenantvault.seal._shamir_seal import decode_key_share
from tenantvault.seal._terms import KeyRotation

__all__ = [
    "INIT_PARAMETERS",
    "UNSEAL_PARAMETERS",
    "answer_sealed",
    "init",
    "init_status",
    "key_status",
    "method_not_allowed",
    "no_backed_up_keys",
    "rotate",
    "rotation_unavailable",
    "seal",
    "seal_gate",
    "seal_status",
    "sealed_health",
    "unseal",
]

# What OpenBao's sys/init and sys/unseal declare (the bao CLI sends all of init's).
INIT_PARAMETERS = frozenset(
    {
        "secret_shares",
        "secret_threshold",
        "pgp_keys",
        "root_token_pgp_key",
        "stored_shares",
        "recovery_shares",
        "recovery_threshold",
        "recovery_pgp_keys",
    }
)
UNSEAL_PARAMETERS = frozenset({"key", "reset", "migrate"})
_WRITES = (Operation.UPDATE, Operation.CREATE)
_DISABLED = ("sys/generate-root/", "sys/rekey/init", "sys/rekey/update", "sys/rekey/verify")


def seal_status(seal: Seal) -> Response:
    """Vault's `sys/seal-status`; the cluster fields only once unsealed, as OpenBao."""
    status = seal.status()
    data: dict[str, Any] = {
        "type": status.type,
        "initialized": status.initialized,
        "sealed": status.sealed,
        "t": status.threshold,
        "n": status.shares,
        "progress": status.progress,
        "nonce": status.nonce,
        "version": __version__,
        "build_date": "",
        "migration": False,
        "recovery_seal": status.recovery_seal,
        "storage_type": "tenantvault",
    }
    if not status.sealed:
        data["cluster_name"] = "tenantvault"
        data["cluster_id"] = ""
    return Response(data=data, raw=True)


def init_status(seal: Seal) -> Response:
    """`GET sys/init`."""
    return Response(data={"initialized": seal.status().initialized}, raw=True)


async def init(seal: Seal, data: Mapping[str, Any]) -> Response:
    """`PUT sys/init`: the shares (hex and base64) and the root token, once."""
    if data.get("pgp_keys") or data.get("root_token_pgp_key") or data.get("recovery_pgp_keys"):
        # A deliberate difference: OpenBao can encrypt each share to a PGP key; we refuse
        # rather than hand out in the clear what the caller wanted encrypted.
        raise InvalidRequestError("PGP-encrypted key shares are not supported")
    shares = get_int(data, "secret_shares", default=0) or 0
    threshold = get_int(data, "secret_threshold", default=0) or 0
    result = await seal.initialize(
        shares,
        threshold,
        recovery_shares=get_int(data, "recovery_shares", default=0) or 0,
        recovery_threshold=get_int(data, "recovery_threshold", default=0) or 0,
    )
    answer: dict[str, Any] = {
        "keys": [share.hex() for share in result.shares],
        "keys_base64": [_b64.encode(share) for share in result.shares],
    }
    if result.recovery_shares:
        answer["recovery_keys"] = [share.hex() for share in result.recovery_shares]
        answer["recovery_keys_base64"] = [_b64.encode(s) for s in result.recovery_shares]
    answer["root_token"] = result.root_token
    return Response(data=answer, raw=True)


async def unseal(seal: Seal, data: Mapping[str, Any]) -> Response:
    """`PUT sys/unseal`: one share (or `reset`); answers the seal status."""
    if get_bool(data, "reset", default=False):
        seal.reset()
        return seal_status(seal)
    text = get_str(data, "key")
    if not text:
        raise InvalidRequestError(
            "'key' must be specified in request body as JSON, or 'reset' set to true"
        )
    await seal.unseal(decode_key_share(text))
    return seal_status(seal)


async def seal(seal: Seal) -> Response:
    """`PUT sys/seal`: drop the master key from memory (204)."""
    await seal.seal()
    return Response.no_content()


def sealed_health(seal: Seal, *, now_seconds: int) -> Response:
    """`sys/health` of a sealed server, OpenBao's fields (the HTTP layer picks 503 or 501)."""
    status = seal.status()
    return Response(
        data={
            "initialized": status.initialized,
            "sealed": True,
            "standby": True,
            "replication_performance_mode": "unknown",
            "replication_dr_mode": "unknown",
            "server_time_utc": now_seconds,
            "version": __version__,
        },
        raw=True,
    )


# Vault serves these with its own HTTP handlers, which check the method before anything.
_METHODS = {
    "sys/seal-status": (Operation.READ,),
    "sys/init": (Operation.READ, *_WRITES),
    "sys/unseal": _WRITES,
    "sys/seal": _WRITES,
}


async def seal_gate(seal: Seal, request: Request, *, now_seconds: int) -> Response | None:
    """The Core's first step: a wrong method on a seal endpoint is 405 before any token is
    read; a sealed server answers here (`answer_sealed`); None lets the pipeline serve."""
    allowed = _METHODS.get(request.path)
    if allowed is not None and request.operation not in allowed:
        raise method_not_allowed()
    if seal.is_sealed:
        return await answer_sealed(seal, request, now_seconds=now_seconds)
    if request.path.startswith(_DISABLED):
        # OpenBao 2.5+ disables these unauthenticated endpoints by default (its
        # `disable_unauthed_*_endpoints`): generate-root-token replaces them.
        raise UnsupportedOperationError()
    return None


async def answer_sealed(seal: Seal, request: Request, *, now_seconds: int) -> Response:
    """What a sealed server answers: the seal endpoints, else 503 `Vault is sealed`."""
    path, op = request.path, request.operation
    data = request.data or {}
    if path == "sys/seal-status":
        if op is not Operation.READ:
            raise method_not_allowed()
        return seal_status(seal)
    if path == "sys/health" and op is Operation.READ:
        return sealed_health(seal, now_seconds=now_seconds)
    if path == "sys/init":
        if op is Operation.READ:
            return init_status(seal)
        if op in _WRITES:
            return await init(seal, data)
        raise method_not_allowed()
    if path == "sys/unseal":
        if op not in _WRITES:
            raise method_not_allowed()
        return await unseal(seal, data)
    if path == "sys/seal":
        if op not in _WRITES:
            raise method_not_allowed()
        return Response.no_content()  # already sealed: OpenBao answers 204 to anyone
    raise SealedError()


def method_not_allowed() -> UnsupportedOperationError:
    """405 with no error text: what Vault's own HTTP handlers (the seal endpoints) answer."""
    return UnsupportedOperationError("")


# -- key terms: sys/key-status, sys/rotate, sys/rekey/backup ----------------------------------


def rotation_unavailable(*, gateway: bool) -> InvalidRequestError:
    """Why a store without key terms refuses `sys/rotate` and `sys/key-status`."""
    if gateway:
        return InvalidRequestError(
            "the upstream Vault's own seal and keyring apply in gateway mode: rotate its keys "
            "there (bao operator rotate)"
        )
    return InvalidRequestError("key rotation needs the embedded store (the dev store has no keys)")


async def key_status(rotation: KeyRotation) -> Response:
    """`GET sys/key-status`; Vault repeats the fields at the top level (older clients)."""
    status = await rotation.key_status()
    return Response(data=dict(status), top_level=dict(status))


async def rotate(rotation: KeyRotation) -> Response:
    """`PUT sys/rotate`: a new key term wraps every tenant key created from now on."""
    await rotation.rotate_key()
    return Response.no_content()


async def no_backed_up_keys() -> Response:
    """`GET sys/rekey/backup`: shares are never PGP-encrypted here, so none is backed up."""
    raise InvalidRequestError("no backed-up keys found")
