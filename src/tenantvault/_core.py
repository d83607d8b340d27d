"""The choke point: authenticate → resolve tenant → parse path → authorize → audit → engine.

Every request from every surface (Python API, HTTP, CLI) passes through `Core.handle`; no other
code path reaches an engine or a backend. Tenant isolation is enforced here, once.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

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
    InvalidPathError,
    NotFoundError,
    PermissionDeniedError,
    TenantVaultError,
)
from tenantvault._namespaces import Namespaces
from tenantvault._observe import RequestObserver, handled_outcome, notify, refused_outcome
from tenantvault._password_policy import PasswordPolicyRoutes, PasswordPolicyStore
from tenantvault._paths import check_request_path
from tenantvault._policy_store import PolicyStore, TenantPolicies
from tenantvault._request import OCSP_GET_FIELD, Operation, Request, Response
from tenantvault._router import FallbackEngine, MountTable, RouteMemo, Router
from tenantvault._tenants import TenantRegistry
from tenantvault._token_roles import TokenRoleStore
from tenantvault._tokens import Principal, TokenStore
from tenantvault._wrapping import ResponseWrapping
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._view import open_view
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.cache import CacheSettings, ReadCache
from tenantvault.engines._protocol import Engine, Mount, MountStorage
from tenantvault.engines._route import (
    Call,
    Caller,
    MountView,
    Need,
    Parameters,
    Route,
    TokenGrant,
)
from tenantvault.engines._special import is_unauthenticated
from tenantvault.engines.audit import STORE_ROUTES, AuditEngine
from tenantvault.engines.auth._logins import Logins
from tenantvault.engines.auth._registry import auth_engines
from tenantvault.engines.auth._renew import Renewals
from tenantvault.engines.auth._settings import AuthSettings
from tenantvault.engines.auth._sys_auth import AuthMountsEngine
from tenantvault.engines.database import DatabaseEngine
from tenantvault.engines.kv import KVEngine
from tenantvault.engines.kv_v1 import KVType
from tenantvault.engines.pki import PKIEngine, PkiExpiry
from tenantvault.engines.sys import SysEngine
from tenantvault.engines.sys_mounts import MountsEngine
from tenantvault.engines.token import TokenEngine
from tenantvault.engines.transit import TransitEngine
from tenantvault.engines.wrapping import WrappingEngine
from tenantvault.leases import LeaseManager, LeasesEngine, LeasingEngine
from tenantvault.observability import Observability
from tenantvault.observability._events import EventCounters
from tenantvault.rotation import RotationEngine, RotationSettings
from tenantvault.seal import FileSeal, Seal, seal_gate
from tenantvault.seal._terms import KeyRotation

if TYPE_CHECKING:
    from tenantvault.upstream.engines import Gateway

__all__ = ["AuditHook", "Core", "RequestContext"]


def _engine_types(
    kv: KVType,
    transit: TransitEngine,
    database: DatabaseEngine,
    pki: PKIEngine,
    gateway: Gateway | None,
) -> dict[str, Engine]:
    """The engine types by name: embedded, or with a gateway its upstream-backed variants.

    The database engine is the same in both: its records are mount records on any backend.
    """
    if gateway is None:
        return {kv.type: kv, transit.type: transit, database.type: database, pki.type: pki}
    # Imported only in gateway mode: the embedded modes need no upstream client.
    from tenantvault.upstream.engines import engine_types

    return {**engine_types(gateway, kv, transit, pki), database.type: database}


def _upstream_engines(gateway: Gateway | None) -> FallbackEngine | None:
    """With a gateway, the engine of every mount type tenantvault does not implement: the
    upstream's own engines, per tenant (`upstream/engines/_passthrough`)."""
    if gateway is None:
        return None
    from tenantvault.upstream.engines import PassthroughEngine

    return PassthroughEngine(gateway)


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
        auth_settings: AuthSettings | None = None,
        gateway: Gateway | None = None,
        lease_quota: int = 0,
        rotation: RotationSettings | None = None,
        read_cache: CacheSettings | None = None,
        seal: Seal | None = None,
        database_allow: tuple[str, ...] = (),
    ) -> None:
        """`auth_settings` sets the auth methods' failed-login limit (`engines/auth`);
        `gateway` (vault backend) serves tenants' `secret/` and `transit/` upstream;
        `lease_quota` caps the leases one tenant may hold (0: no limit); `seal` (default the
        file seal, never sealed) gates every request (`tenantvault.seal`); `database_allow`
        lists the `HOST[:PORT]`s database configs may connect to (empty: any)."""
        self.backend = backend
        self.seal: Seal = seal if seal is not None else FileSeal(gateway=gateway is not None)
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
        # Resolved kv v2 routes, by mount table revision (`_route`).
        self._routes = RouteMemo()
        engine_types = _engine_types(
            kv_type,
            transit := TransitEngine(clock=clock),
            database := DatabaseEngine(clock=clock, allow=database_allow),
            pki := PKIEngine(clock=clock),
            gateway,
        )
        # The engine serving the `kv` type: ours, or in gateway mode the one forwarding a
        # tenant's `secret/` upstream. Its v2 routes are what `_route` memoizes.
        self._kv_routes = engine_types[kv_type.type]
        self.router = Router(
            backend,
            engine_types,
            tenant_uid=self.tenants.uid,
            auth_engines=auth_engines(auth_settings or AuthSettings(clock=clock)),
            fallback=_upstream_engines(gateway),
        )
        self.transit = transit
        transit.attach(backend, self.router.mounts_in)
        self.pki = pki
        pki.attach(backend, self.router.mounts_in)
        # sys/pki/expiring: what expires soon across the namespace's own pki mounts.
        self.pki_expiry = PkiExpiry(self.router, clock=clock)
        # Metrics, anomaly alerts and the dashboard's numbers; its sys/metrics, sys/alerts and
        # sys/dashboard routes are declared like any other. The server subscribes it as a
        # request observer (its on/off switch, `--no-observability`). Made first: the event
        # producers below count into it, through callbacks that never lead to the Core.
        self.observability = Observability(clock=clock)
        counters = EventCounters(self.observability.hooks)
        # The KV v2 read cache (`tenantvault.cache`): it wraps kv v2 routes in `_route`, so it
        # runs only where a handler runs, after authorization and the request's audit entry.
        self.read_cache = ReadCache(read_cache, clock=clock, events=counters.cache)
        self.tenants.on_delete(self.read_cache.tenant_deleted)
        self.tenants.on_delete(self._routes.tenant_deleted)
        # Leases of dynamic secrets: the Core registers them (`_attach_lease`), serves
        # sys/leases, and revokes them with the token that created them or the mount.
        # A lease also dies with its token's expiry (`token_expiry`: renewed since?).
        self.leases = LeaseManager(
            backend,
            self.router,
            # Also while a tenant is being deleted (tainted): that is when its leases go.
            tenant_uid=self.tenants.incarnation,
            clock=clock,
            quota=lease_quota,
            token_expiry=self.tokens.expiry,
            events=counters.lease,
            tainted=self.tenants.tainted,
        )
        # A tenant-delete step before the gateway's: its leases are revoked (database users
        # dropped) while its configs are still there; one that cannot be revoked stops the
        # deletion.
        self.tenants.on_delete(self.leases.tenant_deleting)
        self.database = database
        database.attach(self.router.mounts_of_type, on_destroy=self.leases.mount_destroyed)
        self.tokens.on_revoke.append(self.leases.token_revoked)
        self.leases_engine = LeasesEngine(self.leases)
        self.mounts = MountsEngine(self.router, backend=backend, kv=kv_type)
        # sys/auth, and the login pipeline of auth mounts (the Core mints their tokens).
        self.auth_mounts = AuthMountsEngine(self.router, tokens=self.tokens)
        self._namespaces = Namespaces(self.router, self.tenants)
        self._logins = Logins(self.router, self._namespaces, self.tokens)
        # Renewing a login's token asks its auth mount again (role deleted, TTLs lowered).
        self.tokens.renewal = Renewals(self.router).grant
        if gateway is None:
            self.tenants.on_create(self._namespaces.tenant_created)
        else:
            # The tenant's place upstream is made with it and removed before it is forgotten
            # (a step after the leases one above: steps run in the order they were added).
            self.tenants.on_create(gateway.on_create(self._namespaces.tenant_created))
            self.tenants.on_delete(gateway.tenant_deleted)
        self.sys = SysEngine(
            tenants=self.tenants,
            policies=self.policies,
            tokens=self.tokens,
            sealed=lambda: self._closed,
            seal=self.seal,
            key_rotation=backend if isinstance(backend, KeyRotation) else None,
            gateway=gateway is not None,
            clock=clock,
            audit_health=self.audit_broker.health if self.audit_broker is not None else None,
        )
        self.observability.attach(audit_health=self.audit_broker.health)
        self.tokens.on_create.append(counters.token_created)
        self.audit_broker.on_entry = counters.audit
        self.tokens.on_revoke.append(counters.token_revoked)
        self.sys.observability = self.observability.routes
        # Password policies (sys/policies/password), per tenant; the database engine and the
        # KV rotation's random rotator generate passwords from them in the caller's tenant.
        self.password_policies = PasswordPolicyStore(backend)
        self.sys.password_policies = PasswordPolicyRoutes(self.password_policies)
        database.use_password_policies(self.password_policies)
        # Engines get no token store and no audit store: the Core hands each call views of
        # them bound to the call's tenant incarnation (`_call`).
        self.token_engine = TokenEngine(clock=clock, roles=TokenRoleStore(backend))
        self._audit_queries = self.audit_broker
        self.audit_engine = AuditEngine(self._audit_queries, clock=clock)
        # The endpoints that evaluate an ACL are the Core's own (`_capabilities`).
        self._capabilities = CapabilityEndpoints(self.policies)
        # Response wrapping: the step after the handler, and the sys/wrapping endpoints.
        self.wrapping = ResponseWrapping(backend, self.tokens, clock=clock)
        self.wrapping_engine = WrappingEngine(self.wrapping)
        # sys/rotation: its KV reads and writes come back through this pipeline as the operator.
        self.rotation = RotationEngine(
            router=self.router,
            backend=backend,
            tenant_uid=self.tenants.uid,
            submit=self.handle_as_operator,
            clock=clock,
            settings=rotation,
            events=counters.rotation,
        )
        self._closed = False

    async def start(self) -> None:
        await self.tokens.start()
        await self.leases.start()
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
        await self.database.aclose()  # its connection pools
        self.read_cache.clear()
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
        # The seal gate: sealed, nothing but the seal endpoints, unauthenticated and unaudited
        # as in Vault (no store to check a token against, no audit device loaded).
        sealed = await seal_gate(self.seal, request, now_seconds=self.clock() // 10**9)
        if sealed is not None:
            return sealed
        context = RequestContext(request, None, None, "", request.path, None)
        audited = False
        try:
            # 0. the request path's form, for every surface alike, before anything reads it
            # (so a malformed path costs no token use and reaches no engine).
            check_request_path(request.path)
            # sys/wrapping/lookup never uses a token; unwrap refuses a non-wrapping one.
            request = context.request = await self.wrapping.presented(request)
            public, anonymous = self._tokenless(request, operator=operator)
            # An auth method's login runs as no one, in the namespace it names (a token sent
            # is ignored, as in Vault): steps 1-3 are `login_route`'s.
            login = None if public or anonymous else await self._logins.login_route(request)
            if login is not None:
                principal = None
                tenant, tenant_uid, route = login.tenant, login.tenant_uid, login.route
                context.tenant, context.tenant_uid = tenant, tenant_uid
            else:
                # 1. authenticate (public probes and anonymous listings excepted, as in Vault)
                if public or anonymous:
                    principal = None
                elif operator:
                    principal = Principal.operator()
                else:
                    try:
                        principal = await self.tokens.authenticate(
                            request.token, client_address=request.client_address
                        )
                    except PermissionDeniedError:
                        # An engine's unauthenticated path (PKI's CA, CRL, certificates) runs
                        # as no one when the token does not authenticate (none sent, or not
                        # valid: Vault ignores it there), audited as anonymous.
                        if not await self._unauthenticated(request):
                            raise
                        principal, anonymous = None, True
                context.principal = principal
                # 2. resolve the tenant (the namespace header, or a path prefix that is no
                # mount)
                namespace, path, seen = await self._namespaces.split(request, principal)
                tenant, tenant_uid = await self._namespaces.resolve(
                    principal, namespace, anonymous=anonymous, path=path
                )
                # An anonymous listing runs in the namespace it names but is recorded under no
                # tenant (root sees it): a stranger without a token must not write into a
                # tenant's audit trail, nor learn from it which tenants exist.
                context.tenant, context.tenant_uid = (
                    (None, "") if anonymous else (tenant, tenant_uid)
                )
                # 3. parse the path once
                capabilities = self._capabilities.route(request.operation, path, principal)
                if capabilities is not None:
                    route = capabilities
                else:
                    route = await self._route(
                        request.operation,
                        path,
                        tenant,
                        tenant_uid,
                        seen,
                        wrapped=request.wrap_ttl_seconds is not None,
                    )
            route = root_namespace_checked(route, tenant)
            context.mount, context.path = route.mount, route.acl_path
            _check_escaped_tail(route, request)
            storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
            # 4. authorize: every declaration of the route, here and only here
            acl = await acl_of(self.policies, principal, storage_tenant)
            context.capability, granted, existing = await authorize(
                route,
                acl,
                storage_tenant=storage_tenant,
                principal=principal,
                request=request,
                tenant=tenant,
            )
            grant = await grant_token(
                route, acl, principal=principal, request=request, tenant=tenant
            )
            visible = visible_mounts(route, acl, principal=principal)
            # 5. audit the request — fail closed: if no sink records it, nothing happens.
            # Unauthenticated health probes are not audited, as in Vault. A route that
            # changes nothing (a KV read) may run first: its request entry is written with
            # the response entry, and nothing is answered until both are recorded.
            if not public:
                audited = True
                pure = route.pure is True or (route.pure == "if-exists" and bool(existing))
                if not (
                    pure
                    and request.wrap_ttl_seconds is None
                    and self.audit_broker.defer_request(context)
                ):
                    await self.audit.request(context)
            # 6. execute
            if request.wrap_ttl_seconds is not None and request.operation is Operation.LIST:
                route = self.wrapping.listing(route)
            data = _declared(route, request)
            call = self._call(
                request, data, principal, tenant, tenant_uid, granted, grant, visible, existing
            )
            if principal is not None and route.acl_path in STORE_ROUTES:
                # Only the audit store's own routes get a view of it, opened on the partition
                # of the call's tenant incarnation and closed when the handler is done.
                audit = await open_view(
                    self._audit_queries,
                    tenant=tenant,
                    tenant_uid=tenant_uid,
                    tokens=self.tokens,
                    tenant_uid_lookup=self.tenants.uid,
                    kv_mount=self._secret_storage,
                )
                call = dataclasses.replace(call, audit=audit)
            try:
                response = await route.handler(call)
            finally:
                if call.audit is not None:
                    call.audit.close()
            # Only a login route may ask for a token, and the Core mints it (`engines/auth`).
            await self._logins.issue(response, login, route)
            # A dynamic secret gets its lease here, in the call's tenant, tied to its token.
            if response.secret is not None:
                await self._attach_lease(response, route, storage_tenant, tenant_uid, principal)
            _warn_ignored(response, route, request)
            # Response wrapping: the answer is stored and the caller gets a wrapping token.
            if request.wrap_ttl_seconds is not None:
                response = await self.wrapping.wrap(
                    response,
                    ttl_seconds=request.wrap_ttl_seconds,
                    tenant=tenant,
                    tenant_uid=tenant_uid,
                    creation_path=route.acl_path,
                    operation=request.operation,
                )
            # A use-limited token's last use ends with its request (Vault's "revocation
            # pending"): revoke it now that the request is done, and before answering.
            await self.tokens.revoke_if_used_up(principal)
        except TenantVaultError as error:
            if not (audited and isinstance(error, AuditError)):
                # Denied and invalid requests are audited too: a request entry (if the failure
                # came before it), then the response entry with the error.
                if not audited:
                    await self._audit_unserved(context)
                await self.audit.response(context, None, error)
            # A failed request used up its token too (as in Vault).
            await self.tokens.revoke_if_used_up(context.principal)
            raise
        except Exception:
            # A bug, not a refusal: the caller gets it as it is (HTTP answers 500 with the
            # request id and logs where it happened), and the audit trail still pairs the
            # request entry with a response entry, so no request goes unrecorded.
            if not audited:
                await self._audit_unserved(context)
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

    async def _audit_unserved(self, context: RequestContext) -> None:
        """The request entry of a request that failed before its engine ran: written with
        its response entry where the broker can (nothing ran that an entry must precede)."""
        if not self.audit_broker.defer_request(context):
            await self.audit.request(context)

    async def _attach_lease(
        self,
        response: Response,
        route: Route,
        storage_tenant: str,
        tenant_uid: str,
        principal: Principal | None,
    ) -> None:
        """Register the lease of the dynamic secret a mount's route answered with."""
        table = await self.router.table(storage_tenant, tenant_uid)
        path = f"{route.mount}/"
        mount = table.mounts.get(path)
        engine = self.router.engine(table.entries[path]) if mount is not None else None
        if mount is None or not isinstance(engine, LeasingEngine):
            raise InternalError()  # only a mount's leasing engine issues secrets
        await self.leases.attach(
            response,
            tenant=storage_tenant,
            mount=mount,
            path=route.acl_path,
            token=principal.record if principal is not None else None,
            engine=engine,
        )

    def _tokenless(self, request: Request, *, operator: bool) -> tuple[bool, bool]:
        """Whether the request runs as no one: (public, anonymous).

        Public: the health probes, never authenticated nor audited, as in Vault. Anonymous:
        Vault's mount listing sent without a token (it reads one if sent), audited like any
        request and run in the namespace it names; the route says what no one may see.
        """
        # The path may still start with a namespace (`/v1/acme/sys/health`). Asked on every
        # request: plain calls, no generator per question.
        path = request.path
        bare = path.partition("/")[2]
        public = self.sys.is_public(path) or self.sys.is_public(bare)
        anonymous = not (public or operator) and (
            self.wrapping.is_unauthenticated(path)
            or self.wrapping.is_unauthenticated(bare)
            or (
                not request.token and (self.mounts.is_listing(path) or self.mounts.is_listing(bare))
            )
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
        *,
        wrapped: bool = False,
    ) -> Route:
        head, _, rest = path.partition("/")
        storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
        if head == "sys":
            if rest.startswith(("audit/", "audit-hash/")) or rest == "audit":
                return self.audit_engine.route(operation, rest)
            # Before sys/mounts: its `mounts/auth/<path>/tune` is an auth mount's tune.
            if self.auth_mounts.handles(rest):
                return await self.auth_mounts.route(
                    operation, rest, storage_tenant=storage_tenant, uid=uid
                )
            if self.mounts.handles(rest):
                return await self.mounts.route(
                    operation, rest, storage_tenant=storage_tenant, uid=uid, tenant=tenant
                )
            if self.leases_engine.handles(rest):
                return self.leases_engine.route(operation, rest)
            if self.rotation.handles(rest):
                return self.rotation.route(operation, rest, storage_tenant=storage_tenant, uid=uid)
            if self.wrapping_engine.handles(rest):
                return self.wrapping_engine.route(operation, rest, wrapped=wrapped)
            if self.pki_expiry.handles(rest):
                return self.pki_expiry.route(
                    operation, rest, storage_tenant=storage_tenant, uid=uid
                )
            return self.sys.route(operation, rest, tenant=tenant)
        if head == "auth" and (rest == "token" or rest.startswith("token/")):
            return self.token_engine.route(operation, rest)
        # Other auth methods (`auth/<path>/`) are rows of the same table as secrets engines.
        # Everything else is a mount of the namespace's own table, by longest prefix.
        table = seen if seen is not None and seen.owner == (storage_tenant, uid) else None
        if table is None:
            table = await self.router.table(storage_tenant, uid)
        found = table.match(path)
        if found is None:
            raise NotFoundError(f'no handler for route "{path}". route entry not found.')
        entry, rest = found
        engine = self.router.engine(entry)
        mount = table.mounts[entry.path]
        # A kv v2 route (ours, or a gateway's forwarding one: both are built from the mount,
        # the operation and the path alone) depends on nothing but the table revision, the
        # operation and the path: resolved once, reused from `_routes` while the read cache
        # agrees that this table is the tenant's newest (a request racing a mount change gets
        # a fresh, unmemoized route, as before).
        memoized = (
            engine is self._kv_routes
            and KVType.version(mount) == 2
            and self.read_cache.table_seen(mount.storage.tenant, uid, table.revision)
        )
        if memoized:
            known = self._routes.get(table, operation, path)
            if known is not None:
                return known
        route = engine.route(operation, rest, mount)
        route = self.read_cache.route(
            route,
            operation,
            mount,
            tenant_uid=uid,
            table_revision=table.revision,
            force_no_cache=entry.force_no_cache,
        )
        if is_unauthenticated(engine, operation, rest):
            # The engine declares the path unauthenticated (Vault's PathsSpecial): no token
            # and no capability needed, also for a caller who sent a valid token.
            route = dataclasses.replace(route, public=True)
        if memoized:
            self._routes.put(table, operation, path, route)
        return route

    async def _unauthenticated(self, request: Request) -> bool:
        """Whether `request` reaches a path its mount's engine serves without a token, in
        the namespace its header or path prefix names (the root namespace without either).

        A tenant that does not exist answers as one without such a mount (the caller's 403
        stands), so a caller without a token learns nothing more of which tenants exist.
        """
        try:
            namespace, path, seen = await self._namespaces.split(request, None)
            tenant, uid = await self._namespaces.resolve(None, namespace, anonymous=True)
            if tenant is not None and not uid:
                return False  # no such tenant
            storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
            table = seen if seen is not None and seen.owner == (storage_tenant, uid) else None
            if table is None:
                table = await self.router.table(storage_tenant, uid)
        except TenantVaultError:
            return False  # a malformed or vanished namespace: the refusal stands
        found = table.match(path)
        if found is None:
            return False
        entry, rest = found
        return is_unauthenticated(self.router.engine(entry), request.operation, rest)

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
        existing: object = None,
    ) -> Call:
        """What the handler gets: data, the Core's decisions and views bound to the tenant."""
        storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
        if principal is None:
            # A public probe: no principal, no views, nothing to act for.
            return Call(
                tenant=storage_tenant,
                data=data,
                request_id=request.request_id,
                tenant_uid=tenant_uid,
                visible_mounts=visible,
                client_address=request.client_address,
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
            client_address=request.client_address,
            tokens=self.tokens.bound(tenant=tenant, tenant_uid=tenant_uid, caller=principal),
            policies=TenantPolicies(self.policies, storage_tenant),
            existing=existing,
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


def _check_escaped_tail(route: Route, request: Request) -> None:
    """Refuse a path tail the HTTP layer handed on as data (`OCSP_GET_FIELD`: a `GET
    …/ocsp/<escaped base64>`) unless the route declares it: anywhere else it is the encoded
    separator it looks like, refused as in every path."""
    data = request.data
    if data and OCSP_GET_FIELD in data:
        if route.parameters is None or OCSP_GET_FIELD not in route.parameters:
            raise InvalidPathError("invalid path: encoded '/' or '\\' is not allowed")


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
