"""The `auth/token/` endpoints: create, look up, renew and revoke tokens within one tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from tenantvault._clock import Clock
from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    InternalError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._policy_store import TenantPolicies
from tenantvault._request import Operation, Response
from tenantvault._tokens import TenantTokens, TokenRecord
from tenantvault.engines._route import Call, Route

__all__ = ["TokenEngine"]

Handler = Callable[[Call], Awaitable[Response]]
# The routes that mint tokens: the Core applies the issuing rules to them.
_MINTS: dict[str, Literal["child", "orphan"]] = {"create": "child", "create-orphan": "orphan"}


def _auth_block(token: str, record: TokenRecord, lease_seconds: int) -> dict[str, Any]:
    return {
        "client_token": token,
        "accessor": record.accessor,
        "policies": sorted(record.policies),
        "token_policies": sorted(record.policies),
        "identity_policies": None,
        "metadata": record.meta,
        "lease_duration": lease_seconds,
        "renewable": record.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": record.orphan,
        "mfa_requirement": None,
        "num_uses": record.num_uses,
    }


def _view(call: Call) -> TenantTokens:
    if call.tokens is None:
        raise InternalError()
    return call.tokens


def _policies(call: Call) -> TenantPolicies:
    if call.policies is None:
        raise InternalError()
    return call.policies


# The parameters of each token endpoint (`Route.parameters`). Token creation's are those the
# Core's grant rules (`_grants`) and the handler read; OpenBao's `id`, `role_name`, `type` and
# `entity_alias` are not supported here, so they are ignored with Vault's warning.
_NONE: frozenset[str] = frozenset()
_TOKEN = frozenset({"token"})
_ACCESSOR = frozenset({"accessor"})
_CREATE = frozenset(
    {
        "policies",
        "meta",
        "no_parent",
        "no_default_policy",
        "ttl",
        "lease",
        "explicit_max_ttl",
        "display_name",
        "num_uses",
        "period",
        "renewable",
    }
)


class TokenEngine:
    """Token endpoints. Every target token is looked up through the call's tenant-bound view
    of the token store, so only the caller's own tenant's tokens can be named at all."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock

    def route(self, operation: Operation, rest: str) -> Route:
        if not rest.startswith("token/"):
            raise NotFoundError("unsupported path")
        action = rest.removeprefix("token/")
        op = operation
        write = op in (Operation.UPDATE, Operation.CREATE)
        table: dict[str, tuple[bool, Handler, frozenset[str]]] = {
            "create": (write, self._create, _CREATE),
            "create-orphan": (write, self._create_orphan, _CREATE),
            "lookup": (write, self._lookup, _TOKEN),
            "lookup-self": (write or op is Operation.READ, self._lookup_self, _NONE),
            "lookup-accessor": (write, self._lookup_accessor, _ACCESSOR),
            "renew": (write, self._renew, _TOKEN | {"increment"}),
            "renew-self": (write, self._renew_self, frozenset({"increment"})),
            "revoke": (write, self._revoke, _TOKEN),
            "revoke-self": (write, self._revoke_self, _NONE),
            "revoke-accessor": (write, self._revoke_accessor, _ACCESSOR),
            "revoke-orphan": (write, self._revoke_orphan, _TOKEN),
        }
        entry = table.get(action)
        if entry is None:
            raise NotFoundError("unsupported path")
        allowed, handler, parameters = entry
        if not allowed:
            raise UnsupportedOperationError()
        capability = "read" if op is Operation.READ else "update"
        return Route(
            f"auth/{rest}",
            capability,
            handler,
            mount="auth",
            # Vault's revoke-orphan is for root and sudo alone.
            sudo=action == "revoke-orphan",
            mints_token=_MINTS.get(action, ""),
            parameters=parameters,
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _target(self, call: Call, *, dying: bool = False) -> TokenRecord:
        token = get_str(call.data, "token")
        if not token:
            raise InvalidRequestError("missing token")
        # Another tenant's token is not addressable through the view: it answers exactly
        # like a token that does not exist.
        record = await _view(call).lookup(token, dying=dying)
        if record is None:
            raise PermissionDeniedError("bad token")
        return record

    async def _target_accessor(self, call: Call, *, dying: bool = False) -> TokenRecord:
        accessor = get_str(call.data, "accessor")
        if not accessor:
            raise InvalidRequestError("missing accessor")
        record = await _view(call).lookup_accessor(accessor, dying=dying)
        if record is None:
            raise InvalidRequestError("invalid accessor")
        return record

    def _self_record(self, call: Call) -> TokenRecord:
        record = _view(call).own()
        if record is None:
            raise InvalidRequestError("the in-process operator has no token")
        return record

    # -- create ----------------------------------------------------------------------------

    async def _create(self, call: Call) -> Response:
        return await self._create_token(call, path="auth/token/create")

    async def _create_orphan(self, call: Call) -> Response:
        return await self._create_token(call, path="auth/token/create-orphan")

    async def _create_token(self, call: Call, *, path: str) -> Response:
        # The Core applied the issuing rules (use-limited parent, subset rule, sudo for
        # orphans and periodic tokens) and hands over what it allowed.
        grant = call.grant
        if grant is None:
            raise InternalError()
        data = call.data
        ttl = data.get("ttl") or data.get("lease")
        num_uses = get_int(data, "num_uses", default=0) or 0
        display = get_str(data, "display_name", default="") or ""
        token, record = await _view(call).create(
            policies=grant.policies,
            orphan=grant.orphan,
            ttl_seconds=parse_duration(ttl, field="ttl") if ttl not in (None, "") else None,
            explicit_max_ttl_seconds=parse_duration(
                data.get("explicit_max_ttl") or 0, field="explicit_max_ttl"
            ),
            period_seconds=grant.period_seconds,
            renewable=get_bool(data, "renewable", default=True) is not False,
            num_uses=num_uses,
            meta=dict(grant.meta) if grant.meta else None,
            display_name="token" + (f"-{display}" if display else ""),
            path=path,
        )
        missing = [
            name
            for name in record.policies
            if name not in ("default", "root") and await _policies(call).read(name) is None
        ]
        warnings = [f'Policy "{name}" does not exist' for name in missing] or None
        # The TTL granted, as Vault reports it (not the remaining seconds, one tick later).
        return Response(auth=_auth_block(token, record, record.ttl_seconds), warnings=warnings)

    # -- lookup ----------------------------------------------------------------------------

    async def _lookup(self, call: Call) -> Response:
        record = await self._target(call)
        return Response(data=record.describe(self._clock(), include_id=get_str(call.data, "token")))

    async def _lookup_self(self, call: Call) -> Response:
        record = self._self_record(call)
        token = call.caller.token if call.caller is not None else None
        return Response(data=record.describe(self._clock(), include_id=token))

    async def _lookup_accessor(self, call: Call) -> Response:
        record = await self._target_accessor(call)
        return Response(data=record.describe(self._clock()))

    # -- renew -----------------------------------------------------------------------------

    def _increment(self, call: Call) -> int | None:
        raw = call.data.get("increment")
        if raw in (None, "", 0):
            return None
        return parse_duration(raw, field="increment")

    async def _renewed(self, call: Call, record: TokenRecord, token: str | None) -> Response:
        record, granted = await _view(call).renew(record, self._increment(call))
        auth = _auth_block(token or "", record, granted)
        return Response(auth=auth)

    async def _renew(self, call: Call) -> Response:
        return await self._renewed(call, await self._target(call), get_str(call.data, "token"))

    async def _renew_self(self, call: Call) -> Response:
        token = call.caller.token if call.caller is not None else None
        return await self._renewed(call, self._self_record(call), token)

    # -- revoke ----------------------------------------------------------------------------

    async def _revoke(self, call: Call) -> Response:
        token = get_str(call.data, "token")
        if not token:
            raise InvalidRequestError("missing token")
        # A token already being revoked is revoked again: that finishes a revocation that an
        # outage cut short, which would otherwise leave its children alive (as Vault does).
        record = await _view(call).lookup(token, dying=True)
        if record is not None:
            await _view(call).revoke(record, tree=True)
        return Response.no_content()

    async def _revoke_self(self, call: Call) -> Response:
        await _view(call).revoke(self._self_record(call), tree=True)
        return Response.no_content()

    async def _revoke_accessor(self, call: Call) -> Response:
        await _view(call).revoke(await self._target_accessor(call, dying=True), tree=True)
        return Response.no_content()

    async def _revoke_orphan(self, call: Call) -> Response:
        # `sudo` is declared on the route and checked by the Core.
        await _view(call).revoke(await self._target(call, dying=True), tree=False)
        return Response.no_content()
