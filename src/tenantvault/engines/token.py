"""The `auth/token/` endpoints: create, look up, renew and revoke tokens within one tenant,
its token roles (`roles/<name>`, `create/<role>`) and its accessors list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal

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
from tenantvault._paths import validate_name
from tenantvault._policy_store import TenantPolicies
from tenantvault._request import Operation, Response
from tenantvault._token_roles import (
    ROLE_PARAMETERS,
    TenantTokenRoles,
    TokenRole,
    TokenRoleStore,
    updated_role,
)
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
# Core's grant rules (`_grants`) and the handler read; OpenBao's `id` and `role_name` are not
# supported here, so they are ignored with Vault's warning. `type` and `entity_alias` are
# read (the bao CLI sends both on every `token create`) to refuse what cannot be honoured: a
# batch token must never come back as a service token with a warning nobody reads.
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
        "type",
        "entity_alias",
    }
)
# The token types `auth/token/create` accepts ("" and "default": the role's, else service).
_SERVICE_TYPES: Final = ("", "default", "service")


class TokenEngine:
    """Token endpoints. Every target token is looked up through the call's tenant-bound view
    of the token store, so only the caller's own tenant's tokens can be named at all."""

    def __init__(self, *, clock: Clock, roles: TokenRoleStore | None = None) -> None:
        self._clock = clock
        self._roles = roles

    def route(self, operation: Operation, rest: str) -> Route:
        if not rest.startswith("token/"):
            raise NotFoundError("unsupported path")
        action = rest.removeprefix("token/")
        op = operation
        section, _, name = action.partition("/")
        if section == "roles" and self._roles is not None:
            return self._route_roles(op, name.rstrip("/") if op is Operation.LIST else name)
        if section == "create" and name and self._roles is not None:
            return self._route_create_with_role(op, name)
        if action.rstrip("/") == "accessors":
            if op is not Operation.LIST:
                raise UnsupportedOperationError()
            # Vault's: every accessor of the namespace's tokens, for root and sudo alone.
            return Route(
                "auth/token/accessors/",
                "list",
                self._list_accessors,
                mount="auth",
                sudo=True,
                parameters=_NONE,
            )
        write = op in (Operation.UPDATE, Operation.CREATE)
        table: dict[str, tuple[bool, Handler, frozenset[str]]] = {
            "create": (write, self._create, _CREATE),
            "create-orphan": (write, self._create_orphan, _CREATE),
            "lookup": (write, self._lookup, _TOKEN),
            "lookup-self": (write or op is Operation.READ, self._lookup_self, _NONE),
            "lookup-accessor": (write, self._lookup_accessor, _ACCESSOR),
            "renew": (write, self._renew, _TOKEN | {"increment"}),
            "renew-self": (write, self._renew_self, frozenset({"increment"})),
            "renew-accessor": (write, self._renew_accessor, _ACCESSOR | {"increment"}),
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

    # -- token roles -----------------------------------------------------------------------

    def _role_view(self, tenant: str) -> TenantTokenRoles:
        if self._roles is None:
            raise InternalError()
        # `tenant` is the storage tenant the Core resolved for this request.
        return self._roles.bound(tenant)

    def _route_roles(self, op: Operation, name: str) -> Route:
        if op is Operation.LIST:
            if name:
                raise NotFoundError("unsupported path")
            return Route(
                "auth/token/roles/", "list", self._list_roles, mount="auth", parameters=_NONE
            )
        if not name:
            raise UnsupportedOperationError()
        validate_name(name, kind="role name")
        acl = f"auth/token/roles/{name}"
        if op is Operation.READ:
            return Route(
                acl,
                "read",
                lambda call: self._read_role(call, name),
                mount="auth",
                parameters=_NONE,
            )
        if op is Operation.DELETE:
            return Route(
                acl,
                "delete",
                lambda call: self._delete_role(call, name),
                mount="auth",
                parameters=_NONE,
            )
        if op in (Operation.UPDATE, Operation.CREATE):

            async def exists(tenant: str) -> bool:
                return await self._role_view(tenant).read(name) is not None

            return Route(
                acl,
                "create" if op is Operation.CREATE else None,
                lambda call: self._write_role(call, name),
                exists=exists if op is Operation.UPDATE else None,
                mount="auth",
                parameters=ROLE_PARAMETERS,
            )
        raise UnsupportedOperationError()

    def _route_create_with_role(self, op: Operation, name: str) -> Route:
        if op not in (Operation.UPDATE, Operation.CREATE):
            raise UnsupportedOperationError()
        validate_name(name, kind="role name")

        async def role(tenant: str) -> TokenRole | None:
            return await self._role_view(tenant).read(name)

        return Route(
            f"auth/token/create/{name}",
            "update",
            self._create,
            mount="auth",
            # The Core loads the role and applies it in the grant (`_grants.token_grant`).
            mints_token=_MINTS["create"],
            token_role=role,
            parameters=_CREATE,
        )

    async def _list_roles(self, call: Call) -> Response:
        names = await self._role_view(call.tenant).list()
        if not names:
            raise NotFoundError()
        return Response(data={"keys": names})

    async def _read_role(self, call: Call, name: str) -> Response:
        role = await self._role_view(call.tenant).read(name)
        if role is None:
            raise NotFoundError()
        return Response(data=role.describe())

    async def _write_role(self, call: Call, name: str) -> Response:
        roles = self._role_view(call.tenant)
        await roles.write(updated_role(name, call.data, await roles.read(name)))
        return Response.no_content()

    async def _delete_role(self, call: Call, name: str) -> Response:
        await self._role_view(call.tenant).delete(name)
        return Response.no_content()

    async def _list_accessors(self, call: Call) -> Response:
        accessors = await _view(call).accessors()
        if not accessors:
            raise NotFoundError()
        return Response(data={"keys": accessors})

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
        # A token role's grant names its own path (create/<role>[/<suffix>]).
        path = call.grant.path if call.grant is not None else ""
        return await self._create_token(call, path=path or "auth/token/create")

    async def _create_orphan(self, call: Call) -> Response:
        return await self._create_token(call, path="auth/token/create-orphan")

    async def _create_token(self, call: Call, *, path: str) -> Response:
        # The Core applied the issuing rules (use-limited parent, subset rule, sudo for
        # orphans and periodic tokens) and hands over what it allowed.
        grant = call.grant
        if grant is None:
            raise InternalError()
        data = call.data
        _check_type_and_alias(data, with_role=bool(grant.path))
        ttl = data.get("ttl") or data.get("lease")
        num_uses = get_int(data, "num_uses", default=0) or 0
        display = get_str(data, "display_name", default="") or ""
        explicit_max = parse_duration(data.get("explicit_max_ttl") or 0, field="explicit_max_ttl")
        cap = grant.explicit_max_ttl_cap_seconds
        if cap and (not explicit_max or explicit_max > cap):
            explicit_max = cap  # a token role's token_explicit_max_ttl bounds the token's
        token, record = await _view(call).create(
            policies=grant.policies,
            orphan=grant.orphan,
            ttl_seconds=parse_duration(ttl, field="ttl") if ttl not in (None, "") else None,
            explicit_max_ttl_seconds=explicit_max,
            period_seconds=grant.period_seconds,
            renewable=grant.renewable and get_bool(data, "renewable", default=True) is not False,
            bound_cidrs=grant.bound_cidrs,
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

    async def _renew_accessor(self, call: Call) -> Response:
        # As Vault: the auth block names the accessor, never the token (client_token "").
        return await self._renewed(call, await self._target_accessor(call), None)

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


def _check_type_and_alias(data: Mapping[str, Any], *, with_role: bool) -> None:
    """Refuse a token type or entity alias that cannot be honoured, with OpenBao's texts."""
    token_type = data.get("type", "")
    if token_type == "batch":  # noqa: S105 -- a token type, not a credential
        # Every token here is a service token (stored, revocable, with an accessor).
        raise InvalidRequestError("batch tokens are not supported")
    if not isinstance(token_type, str) or token_type not in _SERVICE_TYPES:
        raise InvalidRequestError("invalid 'token_type' value")
    alias = data.get("entity_alias", "")
    if not isinstance(alias, str):
        raise InvalidRequestError("invalid 'entity_alias' value")
    if alias:
        if not with_role:
            raise InvalidRequestError(
                "'entity_alias' is only allowed in combination with token role"
            )
        # No identity store: no entity for the alias to name (see README, differences).
        raise InvalidRequestError("entity aliases are not supported")
