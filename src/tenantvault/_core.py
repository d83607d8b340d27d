"""The choke point: authenticate → resolve tenant → parse path → authorize → audit → engine.

Every request from every surface (Python API, HTTP, CLI) passes through `Core.handle`; no other
code path reaches an engine or a backend. Tenant isolation is enforced here, once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tenantvault._audit_hook import AuditHook, Refusal, RequestContext
from tenantvault._authorize import (
    acl_of,
    authorize,
    grant_token,
    root_namespace_checked,
    visible_mounts,
)
from tenantvault._capabilities import CapabilityEndpoints
from tenantvault._clock import Clock, system_clock
from tenantvault._exceptions import (
    AuditError,
    ClosedError,
    InternalError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._namespaces import Namespaces
from tenantvault._observe import RequestObserver, handled_outcome, notify, refused_outcome
from tenantvault._paths import check_request_path
from tenantvault._policy_store import PolicyStore, TenantPolicies
from tenantvault._request import Operation, Request, Response
from tenantvault._router import MountTable, Router
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import Principal, TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._view import AuditView
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines._route import (
    Call,
    Caller,
    MountView,
    Need,
    Parameters,
    Route,
    TokenGrant,
)
from tenantvault.engines.audit import AuditEngine
from tenantvault.engines.kv import KVEngine
from tenantvault.engines.kv_v1 import KVType
from tenantvault.engines.sys import SysEngine
from tenantvault.engines.sys_mounts import MountsEngine
from tenantvault.engines.token import TokenEngine
from tenantvault.engines.transit import TransitEngine

__all__ = ["AuditHook", "Core", "RequestContext"]


class Core:
    """Owns the engines and stores over one Backend, and serves `Request`s."""

    # When set (the test suites do), a handler that asks its data for a parameter its route
    # did not declare fails (`UndeclaredParameterError`) instead of seeing it absent.
    strict_parameters: bool = False

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock = system_clock,
        audit: AuditHook | None = None,
        observers: Iterable[RequestObserver] = (),
    ) -> None:
        self.backend = backend
        self.clock = clock
        # Always one broker: with no sink enabled it records nothing and costs nothing; enabling
        # a sink (settings, `sys/audit/<name>`) makes every request fail closed on it. A custom
        # hook rides on that broker (never beside it), so sys/audit devices, sys/audit/events
        # and sys/health see what the hook sees.
        self.audit_broker = (
            audit
            if isinstance(audit, AuditBroker)
            else AuditBroker(backend, clock=clock, hook=audit)
        )
        self.audit: AuditHook = self.audit_broker
        self._observers: tuple[RequestObserver, ...] = tuple(observers)
        self.tenants = TenantRegistry(backend, clock=clock)
        self.policies = PolicyStore(backend)
        self.tokens = TokenStore(backend, clock=clock, tenant_uid=self.tenants.uid)
        # Engine types, registered once; mounts are rows of each tenant's table (`_router`).
        self.kv = KVEngine(clock=clock)
        kv_type = KVType(self.kv)
        self.router = Router(
            backend,
            {kv_type.type: kv_type, TransitEngine.type: (transit := TransitEngine(clock=clock))},
            tenant_uid=self.tenants.uid,
        )
        self.transit = transit
        transit.attach(self.router.mounts_of_type)
        self.mounts = MountsEngine(self.router, backend=backend, kv=kv_type)
        self._namespaces = Namespaces(self.router, self.tenants)
        self.tenants.on_create(self._namespaces.tenant_created)
        self.sys = SysEngine(
            tenants=self.tenants,
            policies=self.policies,
            tokens=self.tokens,
            sealed=lambda: self._closed,
            clock=clock,
            audit_health=self.audit_broker.health if self.audit_broker is not None else None,
        )
        # Engines get no token store and no audit store: the Core hands each call views of
        # them bound to the call's tenant incarnation (`_call`).
        self.token_engine = TokenEngine(clock=clock)
        self._audit_queries = self.audit_broker
        self.audit_engine = AuditEngine(self._audit_queries, clock=clock)
        # The endpoints that evaluate an ACL are the Core's own (`_capabilities`).
        self._capabilities = CapabilityEndpoints(self.policies)
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

    @property
    def services_health(self) -> Callable[[], dict[str, Any]] | None:
        """The background services' report in `sys/health` (the server sets it at startup)."""
        return self.sys.services_health

    @services_health.setter
    def services_health(self, report: Callable[[], dict[str, Any]] | None) -> None:
        self.sys.services_health = report

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
            # 0. the request path's form, for every surface alike, before anything reads it
            # (so a malformed path costs no token use and reaches no engine).
            check_request_path(request.path)
            public, anonymous = self._tokenless(request, operator=operator)
            # 1. authenticate (public probes and anonymous listings excepted, as in Vault)
            if public or anonymous:
                principal = None
            elif operator:
                principal = Principal.operator()
            else:
                principal = await self.tokens.authenticate(request.token)
            context.principal = principal
            # 2. resolve the tenant (the namespace header, or a path prefix that is no mount)
            namespace, path, seen = await self._namespaces.split(request, principal)
            tenant, tenant_uid = await self._namespaces.resolve(
                principal, namespace, anonymous=anonymous
            )
            # An anonymous listing runs in the namespace it names but is recorded under no
            # tenant (root sees it): a stranger without a token must not write into a
            # tenant's audit trail, nor learn from it which tenants exist.
            context.tenant, context.tenant_uid = (None, "") if anonymous else (tenant, tenant_uid)
            # 3. parse the path once
            route = self._capabilities.route(request.operation, path, principal)
            if route is None:
                route = await self._route(request.operation, path, tenant, tenant_uid, seen)
            route = root_namespace_checked(route, tenant)
            context.mount, context.path = route.mount, route.acl_path
            storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
            # 4. authorize: every declaration of the route, here and only here
            acl = await acl_of(self.policies, principal, storage_tenant)
            context.capability, granted = await authorize(
                route,
                acl,
                storage_tenant=storage_tenant,
                principal=principal,
                request=request,
                tenant=tenant,
            )
            grant = grant_token(route, acl, principal=principal, request=request, tenant=tenant)
            visible = visible_mounts(route, acl, principal=principal)
            # 5. audit the request — fail closed: if no sink records it, nothing happens.
            # Unauthenticated health probes are not audited, as in Vault.
            if not public:
                audited = True
                await self.audit.request(context)
            # 6. execute
            data = _declared(route, request)
            response = await route.handler(
                self._call(request, data, principal, tenant, tenant_uid, granted, grant, visible)
            )
            _warn_ignored(response, route, request)
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
        else:
            response.request_id = request.request_id
            # 7. audit the response; if no sink records it the client gets 500, as in Vault.
            if not public:
                await self.audit.response(context, response, None)
            context.answered = response
        finally:
            # Once per request, however it ended, after it was audited (see _observe.py).
            if self._observers:
                notify(self._observers, handled_outcome(context, sys.exception()))
        return response

    def _tokenless(self, request: Request, *, operator: bool) -> tuple[bool, bool]:
        """Whether the request runs as no one: (public, anonymous).

        Public: the health probes, never authenticated nor audited, as in Vault. Anonymous:
        Vault's mount listing sent without a token (it reads one if sent), audited like any
        request and run in the namespace it names; the route says what no one may see.
        """
        # The path may still start with a namespace (`/v1/acme/sys/health`).
        paths = (request.path, request.path.partition("/")[2])
        public = any(self.sys.is_public(path) for path in paths)
        anonymous = not (public or operator or request.token) and any(
            self.mounts.is_listing(path) for path in paths
        )
        return public, anonymous

    async def mount_of(self, tenant: str | None, path: str) -> Mount:
        """The mount at `path` ('transit/') of a tenant (None: the root namespace), for
        operator tooling and tests; `NotFoundError` if there is none."""
        storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
        uid = "" if tenant is None else await self.tenants.uid(tenant)
        if uid is None:
            raise NotFoundError("namespace not found")
        mount = (await self.router.table(storage_tenant, uid)).mounts.get(path)
        if mount is None:
            raise NotFoundError(f"no mount at {path}")
        return mount

    async def _secret_storage(self, tenant: str) -> MountStorage | None:
        """The storage of a tenant's `secret/` mount if it is kv v2 (audit reports)."""
        try:
            mount = await self.mount_of(tenant, "secret/")
        except NotFoundError:
            return None
        return mount.storage if mount.options.get("version") == "2" else None

    async def mount_dev_defaults(self) -> None:
        """`--dev`: mount `secret/` (kv v2) in the root namespace, as `bao server -dev` does."""
        await self.router.initialize(SYSTEM_TENANT, {"secret/": self.router.defaults()["secret/"]})

    async def _route(
        self,
        operation: Operation,
        path: str,
        tenant: str | None,
        uid: str,
        seen: MountTable | None = None,
    ) -> Route:
        head, _, rest = path.partition("/")
        storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
        if head == "sys":
            if rest.startswith(("audit/", "audit-hash/")) or rest == "audit":
                return self.audit_engine.route(operation, rest)
            if self.mounts.handles(rest):
                return await self.mounts.route(
                    operation, rest, storage_tenant=storage_tenant, uid=uid, tenant=tenant
                )
            return self.sys.route(operation, rest, tenant=tenant)
        if head == "auth":
            return self.token_engine.route(operation, rest)
        # Everything else is a mount of the namespace's own table, by longest prefix.
        table = seen if seen is not None and seen.owner == (storage_tenant, uid) else None
        if table is None:
            table = await self.router.table(storage_tenant, uid)
        found = table.match(path)
        if found is None:
            raise NotFoundError(f'no handler for route "{path}". route entry not found.')
        entry, rest = found
        return self.router.engine(entry).route(operation, rest, table.mounts[entry.path])

    def _call(
        self,
        request: Request,
        data: Mapping[str, Any],
        principal: Principal | None,
        tenant: str | None,
        tenant_uid: str,
        granted: frozenset[Need],
        grant: TokenGrant | None,
        visible: MountView | None,
    ) -> Call:
        """What the handler gets: data, the Core's decisions and views bound to the tenant."""
        storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
        if principal is None:
            # A public probe: no principal, no views, nothing to act for.
            return Call(
                tenant=storage_tenant,
                data=data,
                request_id=request.request_id,
                visible_mounts=visible,
            )
        caller = None
        if principal.record is not None:
            caller = Caller(
                accessor=principal.record.accessor,
                policies=principal.policies,
                tenant=principal.tenant,
                token=request.token,
            )
        return Call(
            tenant=storage_tenant,
            data=data,
            request_id=request.request_id,
            tenant_uid=tenant_uid,
            caller=caller,
            granted=granted,
            grant=grant,
            visible_mounts=visible,
            tokens=self.tokens.bound(tenant=tenant, tenant_uid=tenant_uid, caller=principal),
            audit=AuditView(
                self._audit_queries,
                tokens=self.tokens,
                backend=self.backend,
                tenant_uid_lookup=self.tenants.uid,
                tenant=tenant,
                tenant_uid=tenant_uid,
                kv_mount=self._secret_storage,
            ),
            policies=TenantPolicies(self.policies, storage_tenant),
        )

    # -- requests the HTTP layer refused; request observers -------------------------------

    async def refused(self, refusal: Refusal, *, started: float) -> None:
        """Audit a request the HTTP layer refused before it became a `Request`; tell observers.

        `started` is the `time.perf_counter()` reading when the HTTP layer took the request.
        Nothing is authenticated (a refusal must not consume a token use) and no tenant is
        resolved: the entries belong to no tenant. Only root's queries see them, so a stranger
        cannot write into a tenant's trail by claiming its namespace, and no tenant's queries
        or reports are polluted; the namespace header is kept only as a claim.
        """
        if self._closed:
            return
        try:
            await self.audit.refused(refusal)
        except AuditError:
            # Nothing ran, so there is nothing to fail closed: the refusal stands as answered,
            # and the broker counted it in sys/health (audit.refusal_failures).
            pass
        notify(self._observers, refused_outcome(refusal, started=started))

    def subscribe(self, observer: RequestObserver) -> None:
        """Tell `observer` the outcome of every request from now on (see `_observe.py`)."""
        self._observers = (*self._observers, observer)


def _declared(route: Route, request: Request) -> Mapping[str, Any]:
    """The request data the handler gets: only the parameters `route` declared (all of it
    for a free-form route)."""
    data = request.data or {}
    if route.parameters is None:
        return data
    return Parameters(data, route.parameters, strict=Core.strict_parameters)


def _warn_ignored(response: Response, route: Route, request: Request) -> None:
    """Vault's warning for the request keys (body or query) a route ignored, on any answer
    with a body, as OpenBao (a 204 carries no warning, a raw answer has no envelope)."""
    if route.parameters is None or not request.data:
        return
    if response.raw or (response.data is None and response.auth is None):
        return
    ignored = sorted(key for key in request.data if key not in route.parameters)
    if ignored:
        warning = f"Endpoint ignored these unrecognized parameters: [{' '.join(ignored)}]"
        response.warnings = [*(response.warnings or []), warning]
