"""The `sys/` endpoints: tenants as namespaces, ACL policies, health, init status and the
random and hash tools (mounts: sys_mounts).

(`sys/capabilities*` are answered by the Core, which alone holds the ACL.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

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
from tenantvault._tokens import TOKEN_PREFIX, TokenStore
from tenantvault._version import __version__
from tenantvault.engines._route import Call, Route
from tenantvault.engines._tools import (
    HASH_PARAMETERS,
    RANDOM_PARAMETERS,
    hash_answer,
    random_answer,
)
from tenantvault.seal import FileSeal, Seal, ShamirSeal
from tenantvault.seal import _endpoints as seal_endpoints
from tenantvault.seal._generate_root import GENERATE_ROOT_PARAMETERS, RootGeneration
from tenantvault.seal._rekey import REKEY_PARAMETERS, RootRotation
from tenantvault.seal._terms import KeyRotation

if TYPE_CHECKING:
    from tenantvault._password_policy import PasswordPolicyRoutes
    from tenantvault.observability._routes import ObservabilityRoutes

__all__ = ["SysEngine"]

Handler = Callable[[Call], Awaitable[Response]]


def _policies(call: Call) -> TenantPolicies:
    """The call's own tenant's policies (the Core binds them; a handler names no tenant)."""
    if call.policies is None:
        raise InternalError()
    return call.policies


def _route_tools(op: Operation, rest: str) -> Route:
    """`sys/tools/random(/:source)(/:bytes)` and `sys/tools/hash(/:algorithm)`: writes that
    need `update` on their full path, in any namespace (answered by `engines._tools`)."""
    tool, _, sub = rest.removeprefix("tools/").partition("/")
    if tool not in ("random", "hash"):
        raise NotFoundError("unsupported path")
    if op is Operation.LIST:
        raise NotFoundError("unsupported path")
    if op not in (Operation.UPDATE, Operation.CREATE):
        raise UnsupportedOperationError()
    if tool == "random":

        async def random(call: Call) -> Response:
            return random_answer(call.data, sub)

        return Route(f"sys/{rest}", "update", random, mount="sys", parameters=RANDOM_PARAMETERS)

    async def hashed(call: Call) -> Response:
        return hash_answer(call.data, sub, input_required=False)

    return Route(f"sys/{rest}", "update", hashed, mount="sys", parameters=HASH_PARAMETERS)


# The parameters of each sys endpoint here (`Route.parameters`), as OpenBao declares them.
_NONE: frozenset[str] = frozenset()
_NAMESPACE = frozenset({"custom_metadata"})
_POLICY = frozenset({"policy"})
_LEGACY_POLICY = frozenset({"policy", "rules"})
# Key terms (`tenantvault.seal._terms`), and the rekey backups that never exist here.
_BACKUP_PATHS = ("rekey/backup", "rotate/root/backup", "rekey/recovery-key-backup")
_KEY_PATHS = ("key-status", "rotate", "rotate/keyring", *_BACKUP_PATHS)
# A root token's length (`_tokens`: the prefix and 32 random bytes, URL-safe base64): the
# one-time pad of generate-root is as long, as in Vault.
_ROOT_TOKEN_LENGTH = len(TOKEN_PREFIX) + 43


async def _now(response: Response) -> Response:
    return response


async def _nothing_deleted(call: Call) -> Response:
    """A delete of something that cannot exist: done, as Vault's idempotent deletes."""
    return Response.no_content()


class _QuorumFlow(Protocol):
    """An operation that collects a quorum of key shares (generate-root, rekey)."""

    def status(self) -> Response: ...
    def start(self, data: Mapping[str, Any]) -> Response: ...
    def cancel(self) -> Response: ...
    async def update(self, data: Mapping[str, Any]) -> Response: ...


def _quorum_route(
    flow: _QuorumFlow,
    op: Operation,
    rest: str,
    *,
    tenant: str | None,
    area: str,
    start: str,
    sudo: bool,
    parameters: frozenset[str],
) -> Route:
    """The route of a quorum flow's `<area><start>` (read status, begin, cancel) or
    `<area>update` (one share), as OpenBao serves both flows."""
    if tenant is not None:
        raise InvalidRequestError("operation unavailable in namespaces")
    handlers: dict[tuple[str, Operation], tuple[str, Handler]] = {
        (start, Operation.READ): ("read", lambda call: _now(flow.status())),
        (start, Operation.UPDATE): ("update", lambda call: _now(flow.start(call.data))),
        (start, Operation.CREATE): ("update", lambda call: _now(flow.start(call.data))),
        (start, Operation.DELETE): ("delete", lambda call: _now(flow.cancel())),
        ("update", Operation.UPDATE): ("update", lambda call: flow.update(call.data)),
        ("update", Operation.CREATE): ("update", lambda call: flow.update(call.data)),
    }
    found = handlers.get((rest.removeprefix(area), op))
    if found is None:
        raise UnsupportedOperationError()
    capability, handler = found
    return Route(f"sys/{rest}", capability, handler, sudo=sudo, mount="sys", parameters=parameters)


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
        seal: Seal | None = None,
        key_rotation: KeyRotation | None = None,
        gateway: bool = False,
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
        self._seal: Seal = seal if seal is not None else FileSeal()
        # The store's key terms (the embedded store; None for the dev and gateway stores).
        self._key_rotation = key_rotation
        self._gateway = gateway
        self._root_generation = RootGeneration(
            self._seal, mint=self._mint_root, otp_length=_ROOT_TOKEN_LENGTH
        )
        rekeyable = self._seal if isinstance(self._seal, ShamirSeal) else None
        self._root_rotation = RootRotation(rekeyable)
        # sys/metrics, sys/alerts, sys/dashboard (`tenantvault.observability`; the Core sets it).
        self.observability: ObservabilityRoutes | None = None
        # sys/policies/password/* (`tenantvault._password_policy`; the Core sets it).
        self.password_policies: PasswordPolicyRoutes | None = None

    @staticmethod
    def is_public(path: str) -> bool:
        """Unauthenticated endpoints, as in Vault: health, seal and init status, unseal."""
        return path in ("sys/health", "sys/seal-status", "sys/leader", "sys/init", "sys/unseal")

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
        if rest in _KEY_PATHS:
            return self._route_keys(op, rest, tenant=tenant)
        if section == "generate-root-token":
            return self._route_generate_root(op, rest, tenant=tenant)
        if rest in ("rotate/root/init", "rotate/root/update"):
            return self._route_rekey(op, rest, tenant=tenant)
        if rest in ("init", "unseal", "seal"):
            if tenant is not None:
                raise InvalidRequestError("operation unavailable in namespaces")
            if rest == "init":
                return self._route_init(op)
            if op not in (Operation.UPDATE, Operation.CREATE):
                raise seal_endpoints.method_not_allowed()
            if rest == "unseal":
                return Route(
                    "sys/unseal",
                    None,
                    lambda call: seal_endpoints.unseal(self._seal, call.data),
                    public=True,
                    mount="sys",
                    parameters=seal_endpoints.UNSEAL_PARAMETERS,
                )
            # Vault's sys/seal needs update and sudo on it (root's token has both).
            return Route(
                "sys/seal",
                "update",
                lambda call: seal_endpoints.seal(self._seal),
                sudo=True,
                mount="sys",
                parameters=_NONE,
            )
        if section == "tools":
            return _route_tools(op, rest)
        if section == "namespaces":
            return self._route_namespaces(op, sub, tenant=tenant)
        if rest.startswith("policies/acl") or section == "policy":
            return self._route_policies(op, rest)
        if self.password_policies is not None and self.password_policies.handles(rest):
            return self.password_policies.route(op, rest)
        if self.observability is not None and self.observability.handles(rest):
            return self.observability.route(op, rest, tenant=tenant)
        raise NotFoundError("unsupported path")

    # -- key terms -------------------------------------------------------------------------

    def _route_keys(self, op: Operation, rest: str, *, tenant: str | None) -> Route:
        """`sys/key-status` (read), `sys/rotate` (update, sudo) and the rekey backups (read,
        sudo): root namespace only, as in Vault."""
        if tenant is not None:
            raise InvalidRequestError("operation unavailable in namespaces")
        want = Operation.READ if rest in ("key-status", *_BACKUP_PATHS) else Operation.UPDATE
        if op is not want and not (want is Operation.UPDATE and op is Operation.CREATE):
            raise UnsupportedOperationError()
        if rest in _BACKUP_PATHS:
            return Route(
                f"sys/{rest}",
                "read",
                lambda call: seal_endpoints.no_backed_up_keys(),
                sudo=True,
                mount="sys",
                parameters=_NONE,
            )
        handler = seal_endpoints.key_status if rest == "key-status" else seal_endpoints.rotate

        async def answer(call: Call) -> Response:
            if self._key_rotation is None:
                raise seal_endpoints.rotation_unavailable(gateway=self._gateway)
            return await handler(self._key_rotation)

        capability = "read" if rest == "key-status" else "update"
        return Route(
            f"sys/{rest}",
            capability,
            answer,
            sudo=rest != "key-status",
            mount="sys",
            parameters=_NONE,
        )

    # -- generate-root ---------------------------------------------------------------------

    def _route_generate_root(self, op: Operation, rest: str, *, tenant: str | None) -> Route:
        """`sys/generate-root-token/attempt|update` (OpenBao 2.6+: a token with the ACL, plus
        a quorum of shares). The legacy unauthenticated `sys/generate-root/*` is disabled, as
        OpenBao's by default (`seal._endpoints.seal_gate`)."""
        return _quorum_route(
            self._root_generation,
            op,
            rest,
            tenant=tenant,
            area="generate-root-token/",
            start="attempt",
            sudo=False,
            parameters=GENERATE_ROOT_PARAMETERS,
        )

    def _route_rekey(self, op: Operation, rest: str, *, tenant: str | None) -> Route:
        """`sys/rotate/root/init|update` (`bao operator rotate-keys`): new unseal key shares
        from a quorum of the current ones; update with sudo, as Vault's rekey."""
        return _quorum_route(
            self._root_rotation,
            op,
            rest,
            tenant=tenant,
            area="rotate/root/",
            start="init",
            sudo=True,
            parameters=REKEY_PARAMETERS,
        )

    async def _mint_root(self) -> str:
        """A fresh root token (generate-root), the same kind as the one `sys/init` made."""
        plaintext, _ = await self._tokens.create(
            tenant=None,
            tenant_uid="",
            policies=["root"],
            parent=None,
            orphan=True,
            display_name="root",
            path="auth/token/root",
        )
        if len(plaintext) != _ROOT_TOKEN_LENGTH:
            raise InternalError()  # the OTP was drawn for another length: never hand it out
        return plaintext

    # -- init ------------------------------------------------------------------------------

    def _route_init(self, op: Operation) -> Route:
        """`sys/init`: unauthenticated, as in Vault. An unsealed server is initialized: the
        file seal's store initializes itself on first start (`Core.initialize_root_token`),
        the Shamir seal's at `sys/init` while sealed (`tenantvault.seal`)."""
        if op is Operation.READ:
            return Route(
                "sys/init",
                None,
                self._init_status,
                public=True,
                mount="sys",
                parameters=_NONE,
            )
        if op in (Operation.UPDATE, Operation.CREATE):
            return Route(
                "sys/init",
                None,
                lambda call: seal_endpoints.init(self._seal, call.data),
                public=True,
                mount="sys",
                parameters=seal_endpoints.INIT_PARAMETERS,
            )
        raise seal_endpoints.method_not_allowed()

    async def _init_status(self, call: Call) -> Response:
        return seal_endpoints.init_status(self._seal)

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
        if op is Operation.LIST:
            name = rest.removeprefix(base).strip("/")
        else:
            # `sys/policy` itself (hvac's list_policies) names no policy.
            name = "" if rest == base else rest.removeprefix(base + "/")
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
        acl = f"sys/{base}/{name}"
        if op is Operation.DELETE and not self._policies.is_valid_name(name):
            # No policy can have that name, so there is nothing to delete: deletes are
            # idempotent (OpenBao answers 204), and clients clean up so (hvac's own suite
            # deletes a policy named "['testpolicy']"). The ACL still decides first.
            return Route(acl, "delete", _nothing_deleted, mount="sys", parameters=_NONE)
        self._policies.check_name(name)
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
            # Vault repeats sys/policy's data at the top level (older clients read it there).
            listed = {"keys": names, "policies": names}
            return Response(data=listed, top_level=dict(listed))
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
        services = self.services_health() if self.services_health else None
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
                # Ours too: the background services and their restarts (`tenantvault.services`),
                # and those crash-looping: while any is, the server answers 503 (the README).
                "services": services,
                "failing_services": sorted(
                    name for name, report in (services or {}).items() if report.get("crash_looping")
                ),
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
        return seal_endpoints.seal_status(self._seal)
