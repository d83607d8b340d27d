"""The `sys/` endpoints: tenants as namespaces, ACL policies and health (mounts: sys_mounts).

(`sys/capabilities*` are answered by the Core, which alone holds the ACL.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tenantvault._clock import Clock
from tenantvault._exceptions import (
    InternalError,
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_mapping, get_str
from tenantvault._paths import validate_tenant_id
from tenantvault._policy_store import PolicyStore, TenantPolicies
from tenantvault._request import Operation, Response
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import TokenStore
from tenantvault._version import __version__
from tenantvault.engines._route import Call, Route

__all__ = ["SysEngine"]

Handler = Callable[[Call], Awaitable[Response]]


def _policies(call: Call) -> TenantPolicies:
    """The call's own tenant's policies (the Core binds them; a handler names no tenant)."""
    if call.policies is None:
        raise InternalError()
    return call.policies


# The parameters of each sys endpoint here (`Route.parameters`), as OpenBao declares them.
_NONE: frozenset[str] = frozenset()
_NAMESPACE = frozenset({"custom_metadata"})
_POLICY = frozenset({"policy"})
_LEGACY_POLICY = frozenset({"policy", "rules"})


class SysEngine:
    """Endpoints under `sys/`, within one tenant or the root namespace (tenant None)."""

    def __init__(
        self,
        *,
        tenants: TenantRegistry,
        policies: PolicyStore,
        tokens: TokenStore,
        sealed: Callable[[], bool],
        clock: Clock,
        audit_health: Callable[[], dict[str, Any]] | None = None,
        services_health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._clock = clock
        self._audit_health = audit_health
        # Settable: the server's supervisor starts after the Core (see `Core.services_health`).
        self.services_health = services_health
        self._tenants = tenants
        self._policies = policies
        self._tokens = tokens
        self._sealed = sealed

    @staticmethod
    def is_public(path: str) -> bool:
        """Unauthenticated endpoints, as in Vault: health and seal status only."""
        return path in ("sys/health", "sys/seal-status", "sys/leader")

    def route(self, operation: Operation, rest: str, *, tenant: str | None) -> Route:
        op = operation
        section, _, sub = rest.partition("/")
        if rest in ("health", "seal-status", "leader"):
            if op is not Operation.READ:
                raise UnsupportedOperationError()
            handler = {
                "health": self._health,
                "seal-status": self._seal_status,
                "leader": self._leader,
            }[rest]
            # Health's status-code query parameters are the HTTP layer's (`server._app`).
            return Route(f"sys/{rest}", None, handler, public=True, mount="sys", parameters=_NONE)
        if section == "namespaces":
            return self._route_namespaces(op, sub, tenant=tenant)
        if rest.startswith("policies/acl") or section == "policy":
            return self._route_policies(op, rest)
        raise NotFoundError("unsupported path")

    # -- namespaces ------------------------------------------------------------------------

    def _route_namespaces(self, op: Operation, sub: str, *, tenant: str | None) -> Route:
        if tenant is not None:
            if op is Operation.LIST:
                return Route(
                    "sys/namespaces/", "list", self._empty_list, mount="sys", parameters=_NONE
                )
            # Parsed and authorized like any path (400, then 403 without a grant), then refused:
            # tenants are flat.
            validate_tenant_id(sub)
            capability = {Operation.READ: "read", Operation.DELETE: "delete"}.get(op, "create")
            return Route(
                f"sys/namespaces/{sub}",
                capability,
                self._nested,
                mount="sys",
                parameters=_NAMESPACE,
            )
        name = sub.rstrip("/") if op is Operation.LIST else sub
        if op is Operation.LIST and not name:
            return Route(
                "sys/namespaces/", "list", self._list_namespaces, mount="sys", parameters=_NONE
            )
        validate_tenant_id(name)
        acl = f"sys/namespaces/{name}"
        if op is Operation.READ:
            return Route(
                acl, "read", lambda call: self._read_namespace(name), mount="sys", parameters=_NONE
            )
        if op in (Operation.UPDATE, Operation.CREATE):
            return Route(
                acl,
                "create",
                lambda call: self._create_namespace(name, call),
                mount="sys",
                parameters=_NAMESPACE,
            )
        if op is Operation.DELETE:
            return Route(
                acl,
                "delete",
                lambda call: self._delete_namespace(name),
                mount="sys",
                parameters=_NONE,
            )
        raise UnsupportedOperationError()

    async def _nested(self, call: Call) -> Response:
        raise InvalidRequestError("nested namespaces are not supported")

    async def _empty_list(self, call: Call) -> Response:
        raise NotFoundError()

    async def _list_namespaces(self, call: Call) -> Response:
        names = await self._tenants.list()
        if not names:
            raise NotFoundError()
        infos = {f"{name}/": await self._tenants.read(name) for name in names}
        return Response(data={"keys": [f"{name}/" for name in names], "key_info": infos})

    async def _read_namespace(self, name: str) -> Response:
        return Response(data=await self._tenants.read(name))

    async def _create_namespace(self, name: str, call: Call) -> Response:
        metadata = get_mapping(call.data, "custom_metadata")
        if metadata is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise InvalidRequestError("custom_metadata must be an object of strings")
        info = await self._tenants.create(name, metadata=dict(metadata) if metadata else None)
        return Response(data=info)

    async def _delete_namespace(self, name: str) -> Response:
        # Revoke tokens first, so none outlives its tenant even if the process dies midway;
        # tokens also check the tenant's incarnation id, which dies with the tenant.
        uid = await self._tenants.uid(name)
        if uid is None:
            return Response(warnings=["requested namespace does not exist"])
        await self._tokens.revoke_tenant(name, uid)
        await self._tenants.delete(name)
        # Again: a token created while the tenant was being deleted is indexed by now.
        await self._tokens.revoke_tenant(name, uid)
        # OpenBao answers 200 with a status (its deletion runs in the background; ours is
        # done when we answer). The bao CLI expects a body here.
        return Response(data={"status": "deleted"})

    # -- policies --------------------------------------------------------------------------

    def _route_policies(self, op: Operation, rest: str) -> Route:
        legacy = rest.startswith("policy")
        base = "policy" if legacy else "policies/acl"
        name = (
            rest.removeprefix(base).strip("/")
            if op is Operation.LIST
            else rest.removeprefix(base + "/")
        )
        if (op is Operation.LIST or (legacy and op is Operation.READ)) and not name:
            return Route(
                f"sys/{base}/" if op is Operation.LIST else f"sys/{base}",
                "list" if op is Operation.LIST else "read",
                lambda call: self._list_policies(call, legacy=legacy),
                mount="sys",
                parameters=_NONE,
            )
        if not name or rest == base:
            raise UnsupportedOperationError()
        self._policies.check_name(name)
        acl = f"sys/{base}/{name}"
        if op is Operation.READ:
            return Route(
                acl,
                "read",
                lambda call: self._read_policy(call, name, legacy),
                mount="sys",
                parameters=_NONE,
            )
        if op in (Operation.UPDATE, Operation.CREATE):

            async def exists(tenant: str) -> bool:
                return await self._policies.read(tenant, name) is not None

            return Route(
                acl,
                None,
                lambda call: self._write_policy(call, name, legacy),
                exists=exists,
                mount="sys",
                # The legacy sys/policy also takes Vault's older name for the text, `rules`.
                parameters=_LEGACY_POLICY if legacy else _POLICY,
            )
        if op is Operation.DELETE:
            return Route(
                acl,
                "delete",
                lambda call: self._delete_policy(call, name),
                mount="sys",
                parameters=_NONE,
            )
        raise UnsupportedOperationError()

    async def _list_policies(self, call: Call, *, legacy: bool) -> Response:
        names = await _policies(call).list()
        if legacy:
            return Response(data={"keys": names, "policies": names})
        return Response(data={"keys": names})

    async def _read_policy(self, call: Call, name: str, legacy: bool) -> Response:
        policy = await _policies(call).require(name)
        if legacy:
            return Response(data={"name": name, "rules": policy.raw})
        return Response(data={"name": name, "policy": policy.raw})

    async def _write_policy(self, call: Call, name: str, legacy: bool) -> Response:
        text = get_str(call.data, "policy")
        if text is None and legacy:
            text = get_str(call.data, "rules")
        if text is None:
            raise InvalidRequestError("'policy' parameter not supplied or empty")
        await _policies(call).write(name, text)
        return Response.no_content()

    async def _delete_policy(self, call: Call, name: str) -> Response:
        await _policies(call).delete(name)
        return Response.no_content()

    # -- health ----------------------------------------------------------------------------

    async def _health(self, call: Call) -> Response:
        return Response(
            data={
                "initialized": True,
                "sealed": self._sealed(),
                "standby": False,
                "performance_standby": False,
                "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled",
                "server_time_utc": self._clock() // 1_000_000_000,
                "version": __version__,
                "cluster_name": "tenantvault",
                "cluster_id": "",
                # Ours, beyond Vault's fields: failing sinks and responses that could not be
                # audited (a client got 500 after the engine ran) show up here.
                "audit": self._audit_health() if self._audit_health else None,
                # Ours too: the background services and their restarts (`tenantvault.services`).
                "services": self.services_health() if self.services_health else None,
            },
            raw=True,
        )

    async def _leader(self, call: Call) -> Response:
        # One node, no HA cluster: what `bao status` expects from a standalone server.
        return Response(
            data={
                "ha_enabled": False,
                "is_self": False,
                "leader_address": "",
                "leader_cluster_address": "",
                "performance_standby": False,
                "performance_standby_last_remote_wal": 0,
            },
            raw=True,
        )

    async def _seal_status(self, call: Call) -> Response:
        return Response(
            data={
                "type": "shamir",
                "initialized": True,
                "sealed": self._sealed(),
                "t": 1,
                "n": 1,
                "progress": 0,
                "nonce": "",
                "version": __version__,
                "build_date": "",
                "migration": False,
                "recovery_seal": False,
                "storage_type": "tenantvault",
                "cluster_name": "tenantvault",
                "cluster_id": "",
            },
            raw=True,
        )
