"""The choke point: authenticate → resolve tenant → parse path → authorize → audit → engine.

Every request from every surface (Python API, HTTP, CLI) passes through `Core.handle`; no other
code path reaches an engine or a backend. Tenant isolation is enforced here, once.
"""

from __future__ import annotations

from tenantvault._audit_hook import AuditHook, RequestContext
from tenantvault._clock import Clock, system_clock
from tenantvault._exceptions import (
    AuditError,
    ClosedError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
    TenantVaultError,
)
from tenantvault._paths import validate_tenant_id
from tenantvault._policy import ACL
from tenantvault._policy_store import PolicyStore
from tenantvault._request import Operation, Request, Response
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import Principal, TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._route import Call, Route
from tenantvault.engines.audit import AuditEngine
from tenantvault.engines.kv import KVEngine
from tenantvault.engines.sys import SysEngine
from tenantvault.engines.token import TokenEngine
from tenantvault.engines.transit import TransitEngine

__all__ = ["AuditHook", "Core", "RequestContext"]

# First path segments that name a mount or a system area; anything else is a namespace prefix
# (`/v1/acme/secret/data/x`). Tenant ids can never take these names (they are reserved).
_TOP_LEVEL = frozenset({"secret", "sys", "auth", "transit", "cubbyhole", "identity"})
_ROOT_ACL = ACL((), root=True)


class Core:
    """Owns the engines and stores over one Backend, and serves `Request`s."""

    def __init__(
        self, backend: Backend, *, clock: Clock = system_clock, audit: AuditBroker | None = None
    ) -> None:
        self.backend = backend
        self.clock = clock
        # Always a broker: with no sink enabled it records nothing and costs nothing; enabling
        # a sink (settings, `sys/audit/<name>`) makes every request fail closed on it.
        self.audit: AuditHook = audit if audit is not None else AuditBroker(backend, clock=clock)
        self.audit_broker = self.audit if isinstance(self.audit, AuditBroker) else None
        self.tenants = TenantRegistry(backend, clock=clock)
        self.policies = PolicyStore(backend)
        self.tokens = TokenStore(backend, clock=clock, tenant_uid=self.tenants.uid)
        self.kv = KVEngine(backend, clock=clock)
        self.transit = TransitEngine(backend, clock=clock)
        self.sys = SysEngine(
            tenants=self.tenants,
            policies=self.policies,
            tokens=self.tokens,
            sealed=lambda: self._closed,
            clock=clock,
            audit_health=self.audit_broker.health if self.audit_broker is not None else None,
        )
        self.token_engine = TokenEngine(
            tokens=self.tokens, tenants=self.tenants, policies=self.policies, clock=clock
        )
        self.audit_engine = AuditEngine(
            self.audit_broker or AuditBroker(backend, clock=clock),
            tokens=self.tokens,
            backend=backend,
            clock=clock,
            tenant_uid=self.tenants.uid,
        )
        self._closed = False

    async def start(self) -> None:
        await self.tokens.start()
        if self.audit_broker is not None:
            await self.audit_broker.load()

    async def initialize_root_token(self, token: str | None = None) -> str | None:
        """Create the initial root token once per store; None if the store was initialized.

        `token` fixes its value (dev mode, like `bao server -dev-root-token-id`).
        """
        if await self.tokens.is_initialized():
            return None
        # Token first, then the mark: a crash in between leaves an unprinted root token (dead
        # weight) and a store that initializes again — never a store without any root token.
        plaintext, record = await self.tokens.create(
            tenant=None,
            tenant_uid="",
            policies=["root"],
            parent=None,
            orphan=True,
            display_name="root",
            path="auth/token/root",
            token=token,
        )
        try:
            await self.tokens.mark_initialized()
        except NotFoundError:
            # Another instance initialized the store first: its root token stands, not ours.
            await self.tokens.revoke(record)
            return None
        return plaintext

    async def aclose(self) -> None:
        self._closed = True
        if self.audit_broker is not None:
            await self.audit_broker.aclose()

    # -- the pipeline ----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Serve `request` as the holder of `request.token`."""
        return await self._handle(request, operator=False)

    async def handle_as_operator(self, request: Request) -> Response:
        """Serve `request` as the in-process operator (the program that opened the store)."""
        return await self._handle(request, operator=True)

    async def _handle(self, request: Request, *, operator: bool) -> Response:
        if self._closed:
            raise ClosedError("tenantvault is closed")
        context = RequestContext(request, None, None, "", request.path, None)
        audited = False
        try:
            namespace, path = self._split_namespace(request)
            public = self.sys.is_public(path)
            # 1. authenticate (public probes excepted, as in Vault)
            if public:
                principal = None
            elif operator:
                principal = Principal.operator()
            else:
                principal = await self.tokens.authenticate(request.token)
            context.principal = principal
            # 2. resolve the tenant
            tenant, context.tenant_uid = await self._resolve_tenant(principal, namespace)
            context.tenant = tenant
            # 3. parse the path once
            route = self._route(request.operation, path, tenant)
            context.mount, context.path = route.mount, route.acl_path
            storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
            # 4. authorize
            acl = await self._acl(principal, storage_tenant)
            context.capability = await self._authorize(
                route, acl, storage_tenant, principal, request
            )
            # 5. audit the request — fail closed: if no sink records it, nothing happens.
            # Unauthenticated health probes are not audited, as in Vault.
            if not public:
                audited = True
                await self.audit.request(context)
            # 6. execute
            response = await route.handler(
                Call(
                    tenant=storage_tenant,
                    principal=principal or Principal.operator(),
                    data=request.data or {},
                    request_id=request.request_id,
                    acl=acl,
                    token=request.token,
                )
            )
            # A use-limited token's last use ends with its request (Vault's "revocation
            # pending"): revoke it now that the request is done, and before answering.
            await self.tokens.revoke_if_used_up(principal)
        except TenantVaultError as error:
            if not (audited and isinstance(error, AuditError)):
                # Denied and invalid requests are audited too: a request entry (if the failure
                # came before it), then the response entry with the error.
                if not audited:
                    await self.audit.request(context)
                await self.audit.response(context, None, error)
            # A failed request used up its token too (as in Vault).
            await self.tokens.revoke_if_used_up(context.principal)
            raise
        except Exception:
            # A bug, not a refusal: the caller gets it as it is (HTTP answers 500 with the
            # request id and logs where it happened), and the audit trail still pairs the
            # request entry with a response entry, so no request goes unrecorded.
            if not audited:
                await self.audit.request(context)
            await self.audit.response(context, None, InternalError())
            await self.tokens.revoke_if_used_up(context.principal)
            raise
        response.request_id = request.request_id
        # 7. audit the response; if no sink records it the client gets 500, as in Vault.
        if not public:
            await self.audit.response(context, response, None)
        return response

    @staticmethod
    def _split_namespace(request: Request) -> tuple[str | None, str]:
        """Combine the namespace header with a namespace path prefix, Vault-style."""
        namespace = request.namespace.strip("/") if request.namespace else None
        path = request.path
        head, _, rest = path.partition("/")
        if head and head not in _TOP_LEVEL:
            namespace = f"{namespace}/{head}" if namespace else head
            path = rest
        return namespace or None, path

    async def _resolve_tenant(
        self,
        principal: Principal | None,
        namespace: str | None,
    ) -> tuple[str | None, str]:
        """The tenant the request runs in and its incarnation id ('' in the root namespace)."""
        if principal is None:
            return None, ""
        if principal.tenant is not None:
            # Only the token's own binding is authoritative; a namespace may only repeat it.
            if namespace is not None and namespace != principal.tenant:
                raise PermissionDeniedError()
            # Authentication checked this uid against the tenant's current incarnation.
            return principal.tenant, principal.record.tenant_uid if principal.record else ""
        if namespace is None:
            return None, ""
        if not principal.is_root:
            raise PermissionDeniedError()
        validate_tenant_id(namespace)
        uid = await self.tenants.uid(namespace)
        if uid is None:
            raise NotFoundError("namespace not found")
        return namespace, uid

    def _route(self, operation: Operation, path: str, tenant: str | None) -> Route:
        mount, _, rest = path.partition("/")
        if mount == "sys":
            if rest.startswith(("audit/", "audit-hash/")) or rest == "audit":
                return self.audit_engine.route(operation, rest, tenant=tenant)
            return self.sys.route(operation, rest, tenant=tenant)
        if mount == "auth":
            return self.token_engine.route(operation, rest)
        if mount == "secret" and tenant is not None:
            return self.kv.route(operation, rest)
        if mount == "transit" and tenant is not None:
            return self.transit.route(operation, rest)
        raise NotFoundError("unsupported path")

    async def _acl(self, principal: Principal | None, storage_tenant: str) -> ACL:
        if principal is None:
            return ACL(())
        if principal.is_root:
            return _ROOT_ACL
        return await self.policies.acl(storage_tenant, principal.policies)

    async def _authorize(
        self,
        route: Route,
        acl: ACL,
        storage_tenant: str,
        principal: Principal | None,
        request: Request,
    ) -> str | None:
        if route.public:
            return None
        capability = route.capability
        if capability is None:
            if route.exists is None:
                raise PermissionDeniedError()
            capability = "update" if await route.exists(storage_tenant) else "create"
        # The policy checks the request's parameters too (Vault's allowed, denied and
        # required parameters), here and only here: engines never see the ACL for this.
        if principal is None or not acl.permits(
            route.acl_path, capability, operation=request.operation, data=request.data
        ):
            raise PermissionDeniedError()
        return capability
