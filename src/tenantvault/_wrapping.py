"""Response wrapping: the X-Vault-Wrap-TTL grammar, wrapping tokens and their sealed responses.

A wrapped request runs as usual; then, in the Core, its response is stored and the client gets
only a `wrap_info`: a wrapping token that is an orphan of the request's tenant with the one
policy `response-wrapping`, a single use, and `ttl = explicit_max_ttl = wrap TTL`, as in
Vault. Whoever holds that token can unwrap the response once, in that tenant.

The stored response is sealed twice: by the backend, like every record, and under a key
derived (HKDF) from the wrapping token itself, which is never stored — so neither a copy of
the database nor the master key reveals a wrapped secret-id, and once the token is used up or
expired nobody can open the record any more. The associated data binds the record to its
tenant incarnation and token. Records live in the tenant's own space (storage mount
`wrapping`, which no mount uses: mounts store under `mount/<uuid>`), so deleting the tenant
destroys them with its data key; unwrap deletes its record, and a sweep deletes expired ones.

Deliberate differences from OpenBao 2.7 (everything else is checked against it by
tests/integration/test_wrapping_differential.py):

- A wrapping token serves only requests in its own tenant. OpenBao lets a parent namespace
  unwrap a child's token by its body form (and, sent without a namespace header, even a token
  of a sibling namespace); here tenants are not each other's parents. The wrapping token sent
  as the credential, or to a lookup, still needs no namespace header: it names its tenant.
- The wrap TTL is capped at the system's maximum token TTL (768h), and `wrap_info.ttl` says
  the capped value; a positive TTL under a second wraps for one second.
- An unparsable header is refused without echoing it; `X-Vault-Wrap-Format: jwt` is refused.
- Unwrap answers with the unwrap request's id, not the wrapped request's. Where OpenBao 2.7.2
  fails, this works: rewrap in a tenant (OpenBao refuses it in any namespace, "no information
  found"), and the same token as credential and in the body is a 400 here (a 500 there).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from tenantvault import _b64
from tenantvault._clock import Clock, format_time
from tenantvault._durations import duration_seconds
from tenantvault._exceptions import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from tenantvault._records import decode_record, encode_record
from tenantvault._request import Operation, Request, Response
from tenantvault._tokens import MAX_TOKEN_TTL_SECONDS, TokenRecord, TokenStore
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.crypto import AeadKey, encode_aad, hkdf_sha256
from tenantvault.engines._route import Call, Route

__all__ = [
    "INVALID_WRAPPING_TOKEN",
    "WRAPPING_POLICY",
    "ResponseWrapping",
    "WrapInfo",
    "WrappingTokenError",
    "parse_wrap_ttl",
]

WRAPPING_POLICY: Final = "response-wrapping"
# consts.ErrInvalidWrappingToken, OpenBao's text for any bad, used or expired wrapping token.
INVALID_WRAPPING_TOKEN: Final = "wrapping token is not valid or does not exist"  # noqa: S105 -- an error text
_HEADER_ERROR: Final = "error parsing X-Vault-Wrap-TTL header: "
# Go's time.Duration overflows past this many seconds (int64 nanoseconds).
_MAX_DURATION_SECONDS: Final = 9_223_372_036
_MOUNT: Final = "wrapping"
_PREFIX: Final = "response/"
_LABEL: Final = b"tenantvault:wrapped-response"
_NS: Final = 1_000_000_000
# How often a wrap also deletes the expired records of its tenant: often enough that little
# lingers, rarely enough that the listing costs nothing per request.
_SWEEP_INTERVAL_NS: Final = 600 * _NS
# The paths whose token the Core reads differently (see `ResponseWrapping.presented`).
_LOOKUP: Final = "sys/wrapping/lookup"
_UNWRAP: Final = "sys/wrapping/unwrap"
_REWRAP: Final = "sys/wrapping/rewrap"
_EMPTY: Final = "error validating wrapping token: token is empty"


class WrappingTokenError(InvalidRequestError):
    """A wrapping token that is malformed, unknown, used, expired or another tenant's (400)."""

    def __init__(self) -> None:
        super().__init__(INVALID_WRAPPING_TOKEN)


def parse_wrap_ttl(value: str | int | None) -> int | None:
    """Whole seconds to wrap for, from X-Vault-Wrap-TTL ("300", "5m"); None: not wrapped.

    Vault's `ParseDurationSecond`: a number is seconds, otherwise a Go duration; zero (or an
    empty header) means no wrapping. A positive duration under a second still wraps, for one
    second. Refusals carry OpenBao's text, without echoing the value.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        seconds = float(value)
    else:
        text = value.strip()
        if not text:
            return None
        # Go's parsers take one leading sign; our duration grammar has none.
        parsed = duration_seconds(text[1:] if text[:1] in "+-" else text)
        if parsed is None:
            raise InvalidRequestError(_HEADER_ERROR + "time: invalid duration")
        seconds = -parsed if text.startswith("-") else parsed
    if seconds < 0:
        raise InvalidRequestError(_HEADER_ERROR + "requested wrap ttl cannot be negative")
    if seconds > _MAX_DURATION_SECONDS:
        raise InvalidRequestError(
            _HEADER_ERROR
            + "multiplication of durations resulted in overflow, one operand may be too large"
        )
    if seconds == 0:
        return None
    return max(1, math.floor(seconds))


@dataclass(frozen=True, slots=True)
class WrapInfo:
    """A wrapped response as the client sees it (Vault's `wrap_info`). `token` is the secret."""

    token: str
    accessor: str
    ttl: int
    creation_time: str
    creation_path: str
    wrapped_accessor: str = ""

    def __repr__(self) -> str:
        return f"WrapInfo(creation_path={self.creation_path!r}, ttl={self.ttl})"

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> WrapInfo:
        """A `wrap_info` as the HTTP API and `Response.wrap_info` carry it."""
        return cls(
            token=str(data["token"]),
            accessor=str(data["accessor"]),
            ttl=int(data["ttl"]),
            creation_time=str(data["creation_time"]),
            creation_path=str(data["creation_path"]),
            wrapped_accessor=str(data.get("wrapped_accessor", "")),
        )


def _space(tenant: str | None) -> str:
    return tenant if tenant is not None else SYSTEM_TENANT


def _is_wrapping_token(record: TokenRecord | None, tenant: str | None, tenant_uid: str) -> bool:
    """A wrapping token of exactly this tenant incarnation (None: the root namespace)."""
    if record is None or record.policies != [WRAPPING_POLICY] or record.tenant != tenant:
        return False
    return tenant is None or hmac.compare_digest(record.tenant_uid, tenant_uid)


def _serialize(response: Response) -> dict[str, Any]:
    return {
        "status": response.status,
        "data": response.data,
        "auth": response.auth,
        "warnings": response.warnings,
        "lease_duration": response.lease_duration,
        "top_level": response.top_level,
    }


def _deserialize(stored: Mapping[str, Any]) -> Response:
    return Response(
        data=stored["data"],
        auth=stored["auth"],
        warnings=stored["warnings"],
        status=stored["status"],
        lease_duration=stored["lease_duration"],
        top_level=stored["top_level"],
    )


class ResponseWrapping:
    """Wrap responses, and look up, unwrap and rewrap them, within one tenant at a time.

    Every method takes the tenant the request runs in (resolved by the Core); a wrapping
    token of any other tenant answers exactly like one that does not exist.
    """

    def __init__(self, backend: Backend, tokens: TokenStore, *, clock: Clock) -> None:
        self._backend = backend
        self._tokens = tokens
        self._clock = clock
        self._swept: dict[str, int] = {}

    # -- before authentication -------------------------------------------------------------

    async def presented(self, request: Request) -> Request:
        """The request as the Core must read it, before authenticating anyone.

        `sys/wrapping/lookup` is unauthenticated, so a token in the header is never used up:
        it is what the lookup reads when the body names none, and a lookup that names no
        namespace runs in the wrapping token's own tenant (OpenBao: the token's namespace).
        `sys/wrapping/unwrap` without a body token must be sent a wrapping token, and to its
        own namespace: anything else is refused (400) before it could cost a use, as in
        OpenBao; unwrap and rewrap sent no token at all answer OpenBao's 403.
        """
        # The path may still start with a namespace (`acme/sys/wrapping/lookup`).
        path, unprefixed = request.path, request.path.partition("/")[2]
        if _LOOKUP in (path, unprefixed):
            data = request.data or {}
            token = data.get("token") or request.token
            if token and not data.get("token"):
                request = replace(request, data={**data, "token": token})
            if isinstance(token, str) and request.namespace is None and path == _LOOKUP:
                record = await self._tokens.lookup(token)
                if record is not None and record.tenant is not None:
                    request = replace(request, namespace=record.tenant)
        elif _UNWRAP in (path, unprefixed) or _REWRAP in (path, unprefixed):
            in_body = (request.data or {}).get("token")
            if not in_body and not request.token:
                raise PermissionDeniedError(_EMPTY)
            if _UNWRAP in (path, unprefixed) and not in_body and request.token:
                record = await self._tokens.lookup(request.token)
                if record is None or record.policies != [WRAPPING_POLICY]:
                    raise WrappingTokenError()
                named = request.namespace.strip("/") if request.namespace else None
                if named is not None and named != record.tenant:
                    # Sent to another namespace than its own: refused, and not used up.
                    raise WrappingTokenError()
        return request

    @staticmethod
    def listing(route: Route) -> Route:
        """`route` for a wrapped LIST: a listing with no keys is OpenBao's 404 "unsupported
        path", before any token is made."""

        async def handler(call: Call) -> Response:
            try:
                return await route.handler(call)
            except NotFoundError as error:
                if error.body is not None:
                    raise
                raise NotFoundError("unsupported path") from None

        return replace(route, handler=handler)

    @staticmethod
    def is_unauthenticated(path: str) -> bool:
        """Whether `path` runs without authentication (a token sent is never used)."""
        return path == _LOOKUP

    # -- wrapping a response ---------------------------------------------------------------

    async def wrap(
        self,
        response: Response,
        *,
        ttl_seconds: int,
        tenant: str | None,
        tenant_uid: str,
        creation_path: str,
        operation: Operation,
    ) -> Response:
        """Store `response` and answer its `wrap_info` (a 204 or a bare response: unchanged)."""
        if response.raw or (response.data is None and response.auth is None):
            return response  # OpenBao wraps nothing that has no body
        if operation is Operation.LIST and not (response.data or {}).get("keys"):
            raise NotFoundError("unsupported path")  # before any token is made, as OpenBao
        ttl = min(ttl_seconds, MAX_TOKEN_TTL_SECONDS)
        payload = {
            "response": _serialize(response),
            "creation_ttl": ttl,
            "creation_path": creation_path,
        }
        wrap_info = await self._store(payload, tenant=tenant, tenant_uid=tenant_uid)
        if response.auth and response.auth.get("accessor"):
            wrap_info["wrapped_accessor"] = response.auth["accessor"]
        await self._sweep(tenant, tenant_uid)
        return Response(wrap_info=wrap_info)

    async def _store(
        self, payload: dict[str, Any], *, tenant: str | None, tenant_uid: str
    ) -> dict[str, Any]:
        """Mint a wrapping token for `payload` and store the payload sealed under it."""
        ttl = int(payload["creation_ttl"])
        # The token first, then its record: a crash in between leaves a token that unwraps
        # nothing (refused as invalid), never a stored response that no token guards.
        token, record = await self._tokens.create(
            tenant=tenant,
            tenant_uid=tenant_uid,
            policies=[WRAPPING_POLICY],
            parent=None,
            orphan=True,
            ttl_seconds=ttl,
            explicit_max_ttl_seconds=ttl,
            renewable=False,
            num_uses=1,
            display_name="token",
            path=str(payload["creation_path"]),
        )
        created = format_time(record.created_ns)
        sealed = _key(token).seal(
            encode_record({**payload, "creation_time": created}),
            _aad(tenant, tenant_uid, record.token_hash),
        )
        stored = {"expire": record.expire_ns, "sealed": _b64.encode(sealed)}
        await self._backend.write(
            _space(tenant),
            _MOUNT,
            _PREFIX + record.token_hash,
            encode_record(stored),
            expected_revision=0,
        )
        return {
            "token": token,
            "accessor": record.accessor,
            "ttl": ttl,
            "creation_time": created,
            "creation_path": payload["creation_path"],
        }

    # -- the sys/wrapping endpoints --------------------------------------------------------

    async def _payload(
        self, token: str, record: TokenRecord, tenant: str | None, tenant_uid: str
    ) -> dict[str, Any]:
        """The opened payload of `token`'s stored response; `WrappingTokenError` if none."""
        raw = await self._backend.read(_space(tenant), _MOUNT, _PREFIX + record.token_hash)
        if raw is None:
            raise WrappingTokenError()
        stored = decode_record(raw.value)
        sealed = _b64.decode(stored["sealed"])
        payload: dict[str, Any] = decode_record(
            _key(token).open(sealed, _aad(tenant, tenant_uid, record.token_hash))
        )
        return payload

    async def _valid(self, token: str | None, tenant: str | None, tenant_uid: str) -> TokenRecord:
        """The live wrapping token `token` of this tenant, not used; else `WrappingTokenError`."""
        if not isinstance(token, str) or not token:
            raise WrappingTokenError()
        record = await self._tokens.lookup(token)
        if record is None or not _is_wrapping_token(record, tenant, tenant_uid):
            raise WrappingTokenError()
        return record

    async def lookup(self, token: str | None, *, tenant: str | None, tenant_uid: str) -> Response:
        """`sys/wrapping/lookup`: the token's creation facts, never the response; no use."""
        if not token:
            raise PermissionDeniedError(_EMPTY)
        record = await self._valid(token, tenant, tenant_uid)
        payload = await self._payload(token, record, tenant, tenant_uid)
        return Response(
            data={
                "creation_path": payload["creation_path"],
                "creation_time": payload["creation_time"],
                "creation_ttl": payload["creation_ttl"],
            }
        )

    async def _consume(self, token: str, tenant: str | None, tenant_uid: str) -> TokenRecord:
        """Use up `token` (exactly one caller wins); its record, revoked once taken."""
        await self._valid(token, tenant, tenant_uid)
        try:
            # The check-and-set of the token's one use: of concurrent unwraps, one gets it.
            principal = await self._tokens.authenticate(token)
        except PermissionDeniedError:
            raise WrappingTokenError() from None
        if principal.record is None:
            raise WrappingTokenError()
        await self._tokens.revoke_if_used_up(principal)
        return principal.record

    async def _take(
        self, token: str, record: TokenRecord, tenant: str | None, tenant_uid: str
    ) -> dict[str, Any]:
        """Open and delete the stored response of a token that was just used up."""
        payload = await self._payload(token, record, tenant, tenant_uid)
        await self._backend.delete(_space(tenant), _MOUNT, _PREFIX + record.token_hash)
        return payload

    async def unwrap(
        self,
        token: str | None,
        *,
        tenant: str | None,
        tenant_uid: str,
        caller: TokenRecord | None,
        caller_token: str | None,
    ) -> Response:
        """`sys/wrapping/unwrap`: the wrapped response, once. `token` is the body's; without
        one, the caller's own token (authentication already used it up) is the wrapping token.
        """
        if token:
            if caller is not None and caller_token and caller.policies == [WRAPPING_POLICY]:
                # A wrapping token sent as the credential was used up by this request too
                # (even if it is the body's token: "not in both places"); its response goes
                # with it, as OpenBao destroys its cubbyhole.
                await self._discard(caller, tenant)
            record = await self._consume(token, tenant, tenant_uid)
        else:
            if (
                caller is None
                or not caller_token
                or not _is_wrapping_token(caller, tenant, tenant_uid)
            ):
                raise WrappingTokenError()
            token, record = caller_token, caller
        payload = await self._take(token, record, tenant, tenant_uid)
        return _deserialize(payload["response"])

    async def _discard(self, record: TokenRecord, tenant: str | None) -> None:
        await self._backend.delete(_space(tenant), _MOUNT, _PREFIX + record.token_hash)

    async def rewrap(self, token: str | None, *, tenant: str | None, tenant_uid: str) -> Response:
        """`sys/wrapping/rewrap`: the same response under a new token (same TTL and path);
        the old token is used up. The new one is stored first, so a crash loses nothing."""
        record = await self._valid(token, tenant, tenant_uid)
        if token is None:
            raise WrappingTokenError()
        payload = await self._payload(token, record, tenant, tenant_uid)
        payload.pop("creation_time", None)
        wrap_info = await self._store(payload, tenant=tenant, tenant_uid=tenant_uid)
        try:
            consumed = await self._consume(token, tenant, tenant_uid)
        except WrappingTokenError:
            # A concurrent unwrap or rewrap took the old token first: ours must not survive.
            fresh = await self._tokens.lookup(wrap_info["token"])
            if fresh is not None:
                await self._tokens.revoke(fresh)
                await self._discard(fresh, tenant)
            raise
        await self._discard(consumed, tenant)
        return Response(wrap_info=wrap_info)

    # -- expiry ----------------------------------------------------------------------------

    async def _sweep(self, tenant: str | None, tenant_uid: str) -> None:
        """Delete the tenant's expired records, at most once per interval per process."""
        space = _space(tenant)
        now = self._clock()
        if now - self._swept.get(space, 0) < _SWEEP_INTERVAL_NS:
            return
        self._swept[space] = now
        await self.sweep(tenant)

    async def sweep(self, tenant: str | None) -> int:
        """Delete every expired wrapped response of `tenant` now; returns how many."""
        space = _space(tenant)
        now = self._clock()
        deleted = 0
        for key in await self._backend.list(space, _MOUNT, _PREFIX):
            raw = await self._backend.read(space, _MOUNT, _PREFIX + key)
            if raw is None:
                continue
            expire = int(decode_record(raw.value)["expire"])
            if expire and expire <= now:
                try:
                    await self._backend.delete(
                        space, _MOUNT, _PREFIX + key, expected_revision=raw.revision
                    )
                except ConflictError:
                    continue
                deleted += 1
        return deleted


def _key(token: str) -> AeadKey:
    """The sealing key of one wrapped response: derived from its token, which is not stored."""
    return AeadKey(hkdf_sha256(token.encode("utf-8"), _LABEL, 32))


def _aad(tenant: str | None, tenant_uid: str, token_hash: str) -> bytes:
    return encode_aad(_LABEL, _space(tenant), tenant_uid, token_hash)
