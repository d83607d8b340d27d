"""The `auth/token/` endpoints: create, look up, renew and revoke tokens within one tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tenantvault._clock import Clock
from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedOperationError,
)
from tenantvault._paths import validate_name
from tenantvault._policy_store import PolicyStore
from tenantvault._request import Operation, Response
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import TokenRecord, TokenStore, refuse_restricted_parent
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._common import get_bool, get_int, get_mapping, get_str
from tenantvault.engines._route import Call, Route

__all__ = ["TokenEngine"]

Handler = Callable[[Call], Awaitable[Response]]
_MAX_META_KEYS = 64


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


def _namespace(call: Call) -> str | None:
    """The tenant a token made here belongs to: None in the root namespace."""
    return None if call.tenant == SYSTEM_TENANT else call.tenant


class TokenEngine:
    """Token endpoints. Every target token must belong to the caller's own tenant."""

    def __init__(
        self, *, tokens: TokenStore, tenants: TenantRegistry, policies: PolicyStore, clock: Clock
    ) -> None:
        self._tokens = tokens
        self._policies = policies
        self._tenants = tenants
        self._clock = clock

    def route(self, operation: Operation, rest: str) -> Route:
        if not rest.startswith("token/"):
            raise NotFoundError("unsupported path")
        action = rest.removeprefix("token/")
        op = operation
        write = op in (Operation.UPDATE, Operation.CREATE)
        table: dict[str, tuple[bool, Handler]] = {
            "create": (write, self._create),
            "create-orphan": (write, self._create_orphan),
            "lookup": (write, self._lookup),
            "lookup-self": (write or op is Operation.READ, self._lookup_self),
            "lookup-accessor": (write, self._lookup_accessor),
            "renew": (write, self._renew),
            "renew-self": (write, self._renew_self),
            "revoke": (write, self._revoke),
            "revoke-self": (write, self._revoke_self),
            "revoke-accessor": (write, self._revoke_accessor),
            "revoke-orphan": (write, self._revoke_orphan),
        }
        entry = table.get(action)
        if entry is None:
            raise NotFoundError("unsupported path")
        allowed, handler = entry
        if not allowed:
            raise UnsupportedOperationError()
        capability = "read" if op is Operation.READ else "update"
        return Route(f"auth/{rest}", capability, handler, mount="auth")

    # -- helpers ---------------------------------------------------------------------------

    def _same_tenant(self, call: Call, record: TokenRecord | None) -> TokenRecord | None:
        """Hide tokens of other tenants: they answer exactly like tokens that do not exist."""
        if record is None or record.tenant != _namespace(call):
            return None
        return record

    async def _target(self, call: Call, *, dying: bool = False) -> TokenRecord:
        token = get_str(call.data, "token")
        if not token:
            raise InvalidRequestError("missing token")
        record = self._same_tenant(call, await self._tokens.lookup(token, dying=dying))
        if record is None:
            raise PermissionDeniedError("bad token")
        return record

    async def _target_accessor(self, call: Call, *, dying: bool = False) -> TokenRecord:
        accessor = get_str(call.data, "accessor")
        if not accessor:
            raise InvalidRequestError("missing accessor")
        found = await self._tokens.lookup_accessor(accessor, dying=dying)
        record = self._same_tenant(call, found)
        if record is None:
            raise InvalidRequestError("invalid accessor")
        return record

    def _self_record(self, call: Call) -> TokenRecord:
        record = call.principal.record
        if record is None:
            raise InvalidRequestError("the in-process operator has no token")
        return record

    # -- create ----------------------------------------------------------------------------

    async def _create(self, call: Call) -> Response:
        return await self._create_token(call, orphan=get_bool(call.data, "no_parent") or False)

    async def _create_orphan(self, call: Call) -> Response:
        return await self._create_token(call, orphan=True, path="auth/token/create-orphan")

    async def _create_token(
        self, call: Call, *, orphan: bool, path: str = "auth/token/create"
    ) -> Response:
        data = call.data
        principal = call.principal
        # First, as in Vault: a use-limited token gets this answer whatever else it asks.
        refuse_restricted_parent(principal.record)
        raw_policies = data.get("policies")
        if raw_policies is None:
            # The parent's policies are inherited only inside the parent's own namespace: a
            # root-namespace token (or the operator) making a tenant's token without naming
            # policies gives it `default` alone, as OpenBao does, never a tenant root token.
            inherited = principal.tenant == _namespace(call)
            requested = [p for p in principal.policies if p != "default"] if inherited else []
            explicit = False
        elif isinstance(raw_policies, list) and all(isinstance(p, str) for p in raw_policies):
            requested = list(raw_policies)
            explicit = True
        elif isinstance(raw_policies, str):
            requested = [p.strip() for p in raw_policies.split(",") if p.strip()]
            explicit = True
        else:
            raise InvalidRequestError("invalid value for policies: expected a list of strings")
        for name in requested:
            validate_name(name, kind="policy name")
        if not get_bool(data, "no_default_policy", default=False) and "root" not in requested:
            requested.append("default")
        if orphan and not principal.is_root and not call.acl.allows(path, "sudo"):
            raise PermissionDeniedError("root or sudo privileges required to create orphan token")
        if not principal.is_root:
            # A token can only hand out what it holds itself (Vault's subset rule).
            held = set(principal.policies)
            if not set(requested) - {"default"} <= held:
                raise PermissionDeniedError(
                    "child policies must be subset of parent" if explicit else "permission denied"
                )
        meta = get_mapping(data, "meta")
        if meta is not None:
            if len(meta) > _MAX_META_KEYS or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
            ):
                raise InvalidRequestError("invalid value for meta: expected an object of strings")
        period = parse_duration(data.get("period") or 0, field="period")
        if period and not principal.is_root and not call.acl.allows(path, "sudo"):
            # A periodic token can be renewed forever: Vault reserves it to root and sudo.
            raise InvalidRequestError("root or sudo privileges required to create periodic token")
        ttl = data.get("ttl") or data.get("lease")
        num_uses = get_int(data, "num_uses", default=0) or 0
        tenant = _namespace(call)
        uid = await self._tenants.uid(tenant) if tenant else ""
        if tenant and uid is None:
            raise NotFoundError()
        display = get_str(data, "display_name", default="") or ""
        token, record = await self._tokens.create(
            tenant=tenant,
            tenant_uid=uid or "",
            policies=requested,
            parent=principal.record,
            orphan=orphan or principal.record is None,
            ttl_seconds=parse_duration(ttl, field="ttl") if ttl not in (None, "") else None,
            explicit_max_ttl_seconds=parse_duration(
                data.get("explicit_max_ttl") or 0, field="explicit_max_ttl"
            ),
            period_seconds=period,
            renewable=get_bool(data, "renewable", default=True) is not False,
            num_uses=num_uses,
            meta=dict(meta) if meta else None,
            display_name="token" + (f"-{display}" if display else ""),
            path=path,
        )
        missing = [
            name
            for name in record.policies
            if name not in ("default", "root")
            and await self._policies.read(call.tenant, name) is None
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
        return Response(data=record.describe(self._clock(), include_id=call.token))

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
        record, granted = await self._tokens.renew(record, self._increment(call))
        auth = _auth_block(token or "", record, granted)
        return Response(auth=auth)

    async def _renew(self, call: Call) -> Response:
        return await self._renewed(call, await self._target(call), get_str(call.data, "token"))

    async def _renew_self(self, call: Call) -> Response:
        return await self._renewed(call, self._self_record(call), call.token)

    # -- revoke ----------------------------------------------------------------------------

    async def _revoke(self, call: Call) -> Response:
        token = get_str(call.data, "token")
        if not token:
            raise InvalidRequestError("missing token")
        # A token already being revoked is revoked again: that finishes a revocation that an
        # outage cut short, which would otherwise leave its children alive (as Vault does).
        record = self._same_tenant(call, await self._tokens.lookup(token, dying=True))
        if record is not None:
            await self._tokens.revoke(record, tree=True)
        return Response.no_content()

    async def _revoke_self(self, call: Call) -> Response:
        await self._tokens.revoke(self._self_record(call), tree=True)
        return Response.no_content()

    async def _revoke_accessor(self, call: Call) -> Response:
        await self._tokens.revoke(await self._target_accessor(call, dying=True), tree=True)
        return Response.no_content()

    async def _revoke_orphan(self, call: Call) -> Response:
        if not call.principal.is_root and not call.acl.allows("auth/token/revoke-orphan", "sudo"):
            raise PermissionDeniedError()
        await self._tokens.revoke(await self._target(call, dying=True), tree=False)
        return Response.no_content()
