"""The choke point: authenticate → resolve tenant → parse path → authorize → audit → engine.

Every request from every surface (Python API, HTTP, CLI) passes through `Core.handle`; no other
code path reaches an engine or a backend. Tenant isolation is enforced here, once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from tenantvault._audit_hook import AuditHook, Refusal, RequestContext
from tenantvault._clock import Clock, system_clock
from tenantvault._exceptions import (
    AuditError,
    ClosedError,
    InternalError,
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    TenantVaultError,
)
from tenantvault._grants import token_grant
from tenantvault._observe import RequestObserver, handled_outcome, notify, refused_outcome
from tenantvault._paths import validate_tenant_id
from tenantvault._policy import ACL
from tenantvault._policy_store import PolicyStore, TenantPolicies
from tenantvault._request import Operation, Request, Response
from tenantvault._router import PROTECTED_PREFIXES, MountTable, Router
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import Principal, TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._view import AuditView
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines._route import Call, Caller, Need, RootOnly, Route, TokenGrant
from tenantvault.engines.audit import AuditEngine
from tenantvault.engines.kv import KVEngine
from tenantvault.engines.kv_v1 import KVType
from tenantvault.engines.sys import SysEngine
from tenantvault.engines.sys_mounts import MountsEngine
from tenantvault.engines.token import TokenEngine
from tenantvault.engines.transit import TransitEngine

__all__ = ["AuditHook", "Core", "RequestContext"]

_ROOT_ACL = ACL((), root=True)
# OpenBao's answer to a namespace calling a root-only endpoint (checked against 2.7.2).
_ROOT_ONLY = "operation only available in root namespace"
_CAPABILITIES = frozenset(
    {"sys/capabilities", "sys/capabilities-self", "sys/capabilities-accessor"}
)
_MAX_CAPABILITY_PATHS = 256
_ORPHAN = "orphan"  # Route.mints_token of create-orphan (a route kind, not a secret)


class Core:
    """Owns the engines and stores over one Backend, and serves `Request`s."""

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
        self.tenants.on_create(self._tenant_created)
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
            public = self.sys.is_public(request.path) or self.sys.is_public(
                request.path.partition("/")[2]
            )
            # 1. authenticate (public probes excepted, as in Vault)
            if public:
                principal = None
            elif operator:
                principal = Principal.operator()
            else:
                principal = await self.tokens.authenticate(request.token)
            context.principal = principal
            # 2. resolve the tenant (the namespace header, or a path prefix that is no mount)
            namespace, path, seen = await self._split_namespace(request, principal)
            tenant, context.tenant_uid = await self._resolve_tenant(principal, namespace)
            context.tenant = tenant
            # 3. parse the path once
            route = self._own_route(request.operation, path, principal) or await self._route(
                request.operation, path, tenant, context.tenant_uid, seen
            )
            route = _root_namespace_checked(route, tenant)
            context.mount, context.path = route.mount, route.acl_path
            storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
            # 4. authorize: every declaration of the route, here and only here
            acl = await self._acl(principal, storage_tenant)
            context.capability, granted = await self._authorize(
                route, acl, storage_tenant, principal, request, tenant
            )
            grant = self._token_grant(route, acl, principal, request, tenant)
            # 5. audit the request — fail closed: if no sink records it, nothing happens.
            # Unauthenticated health probes are not audited, as in Vault.
            if not public:
                audited = True
                await self.audit.request(context)
            # 6. execute
            response = await route.handler(
                self._call(request, principal, tenant, context.tenant_uid, granted, grant)
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

    async def _split_namespace(
        self, request: Request, principal: Principal | None
    ) -> tuple[str | None, str, MountTable | None]:
        """The namespace (header or path prefix), the namespace-relative path, and the mount
        table read to decide (the router reuses it instead of reading it again).

        The first segment stays in the path if it is sys/, auth/ or another protected prefix,
        or a mount of the table it is routed in (the header's tenant, else the token's, else
        the root namespace's); otherwise it names a tenant (`/v1/acme/secret/...`), below the
        header's if there is one. A mount path and a tenant id never share a first segment
        (mount enable and tenant creation both refuse it), so this reading is unambiguous.
        """
        namespace = request.namespace.strip("/") if request.namespace else None
        path = request.path
        head, _, rest = path.partition("/")
        if not head or f"{head}/" in PROTECTED_PREFIXES:
            return namespace or None, path, None
        scope = namespace or (principal.tenant if principal is not None else None)
        if namespace is None and head == scope:
            return head, rest, None  # the path-prefix form, repeating the token's own tenant
        is_mount, table = await self._is_mount_head(scope, head)
        if is_mount is not False:
            # A mount, or a tenant that does not exist (404 later).
            return namespace or None, path, table
        # A namespace below the header's: tenants are flat, so it never exists (a token of
        # another tenant gets 403 for it, the root token Vault's 404).
        return (f"{namespace}/{head}" if namespace else head), rest, None

    async def _is_mount_head(
        self, scope: str | None, head: str
    ) -> tuple[bool | None, MountTable | None]:
        """Whether `head` is the first segment of a mount in `scope`'s table (None: root),
        None if `scope` names no tenant; and the table read."""
        if scope is None:
            table = await self.router.table(SYSTEM_TENANT, "")
            return table.has_first_segment(head), table
        try:
            validate_tenant_id(scope)
        except InvalidPathError:
            return False, None
        uid = await self.tenants.uid(scope)
        if uid is None:
            return None, None
        try:
            table = await self.router.table(scope, uid)
        except NotFoundError:
            return None, None  # deleted meanwhile
        return table.has_first_segment(head), table

    async def _tenant_created(self, tenant: str, uid: str | None) -> None:
        """Tenant creation: refuse an id that is a root mount's first segment (`uid` None),
        then give the new tenant its own mounts, `secret/` (kv v2) and `transit/`."""
        if uid is None:
            root = await self.router.table(SYSTEM_TENANT, "")
            if root.has_first_segment(tenant):
                existing = next(p for p in root.entries if p.partition("/")[0] == tenant)
                raise InvalidRequestError(
                    f"new namespace conflicts with existing mount: {existing}"
                )
            return
        await self.router.initialize(tenant, self.router.defaults())

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
        await self.router.initialize(
            SYSTEM_TENANT,
            {
                "secret/": self.router.new_entry(
                    "secret/",
                    "kv",
                    description="key/value secret storage",
                    options={"version": "2"},
                )
            },
        )

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
        if "/" in namespace and all(validate_tenant_id(part) for part in namespace.split("/")):
            raise NotFoundError("namespace not found")  # nested: tenants are flat
        validate_tenant_id(namespace)
        uid = await self.tenants.uid(namespace)
        if uid is None:
            raise NotFoundError("namespace not found")
        return namespace, uid

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
        tenant: str | None,
    ) -> tuple[str | None, frozenset[Need]]:
        """Check everything `route` declares; returns the capability checked and the optional
        requirements granted."""
        if route.root_namespace_only is not None and tenant is not None:
            raise InternalError()  # _root_namespace_checked refused it already
        if route.public:
            # No principal, so nothing is granted: a public route that declares a requirement
            # fails closed rather than running without it.
            if route.sudo or route.extra or route.mount_access is not None or route.mints_token:
                raise PermissionDeniedError()
            return None, frozenset()
        if principal is None:
            # Only public routes run without a principal; a route that says otherwise while
            # being reached unauthenticated is refused, never run as anyone.
            raise PermissionDeniedError()
        capability: str | None = None
        if route.mount_access is not None:
            # Vault's hasMountAccess: anything at or under the mount (sys/internal/ui/mounts).
            if not acl.has_access_under(route.mount_access):
                raise PermissionDeniedError()
        else:
            capability = route.capability
            if capability is None:
                if route.exists is None:
                    raise PermissionDeniedError()
                capability = "update" if await route.exists(storage_tenant) else "create"
            # The policy checks the request's parameters too (Vault's allowed, denied and
            # required parameters).
            if not acl.permits(
                route.acl_path, capability, operation=request.operation, data=request.data
            ):
                raise PermissionDeniedError()
        if route.sudo and not acl.allows(route.acl_path, "sudo"):
            raise PermissionDeniedError()
        for path, needed in route.extra:
            if not acl.allows(path, needed):
                raise PermissionDeniedError()
        granted = frozenset(need for need in route.optional if acl.allows(*need))
        return capability, granted

    @staticmethod
    def _token_grant(
        route: Route,
        acl: ACL,
        principal: Principal | None,
        request: Request,
        tenant: str | None,
    ) -> TokenGrant | None:
        """For a token-minting route, the issuing rules (Vault's statuses and messages)."""
        if not route.mints_token or principal is None:
            return None
        return token_grant(
            request.data or {},
            principal=principal,
            namespace=tenant,
            orphan_route=route.mints_token == _ORPHAN,
            sudo=acl.allows(route.acl_path, "sudo"),
        )

    def _call(
        self,
        request: Request,
        principal: Principal | None,
        tenant: str | None,
        tenant_uid: str,
        granted: frozenset[Need],
        grant: TokenGrant | None,
    ) -> Call:
        """What the handler gets: data, the Core's decisions and views bound to the tenant."""
        storage_tenant = tenant if tenant is not None else SYSTEM_TENANT
        data = request.data or {}
        if principal is None:
            # A public probe: no principal, no views, nothing to act for.
            return Call(tenant=storage_tenant, data=data, request_id=request.request_id)
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

    # -- answered by the Core itself: it alone holds the ACL ------------------------------

    def _own_route(
        self, operation: Operation, path: str, principal: Principal | None
    ) -> Route | None:
        """`sys/capabilities`, `-self` and `-accessor`: the Core's own routes."""
        if path not in _CAPABILITIES or operation not in (Operation.UPDATE, Operation.CREATE):
            return None

        async def handler(call: Call) -> Response:
            if path == "sys/capabilities-self":
                # Authentication made this very principal; the operator is root.
                acl = await self._acl(principal, call.tenant)
            else:
                acl = await self._token_acl(call, by_accessor=path.endswith("-accessor"))
            return _capabilities(acl, call.data)

        return Route(path, "update", handler, mount="sys")

    async def _token_acl(self, call: Call, *, by_accessor: bool) -> ACL:
        """The ACL of the token named in the request, looked up in the call's own tenant."""
        if call.tokens is None:
            raise InternalError()
        if by_accessor:
            accessor = call.data.get("accessor")
            found = (
                await call.tokens.lookup_accessor(accessor) if isinstance(accessor, str) else None
            )
            if found is None:
                raise InvalidRequestError("invalid accessor")
        else:
            token = call.data.get("token")
            found = await call.tokens.lookup(token) if isinstance(token, str) else None
            if found is None:
                raise InvalidRequestError("invalid token")
        if "root" in found.policies:
            return _ROOT_ACL
        return await self.policies.acl(call.tenant, tuple(found.policies))

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


def _root_namespace_checked(route: Route, tenant: str | None) -> Route:
    """Refuse a root-namespace-only route in a tenant (with its endpoint's answer), before
    its path is parsed any further; then the real route."""
    if route.root_namespace_only is not None and tenant is not None:
        if route.root_namespace_only is RootOnly.REFUSE:
            raise InvalidRequestError(_ROOT_ONLY)
        raise PermissionDeniedError()
    return route.resolve() if route.resolve is not None else route


def _capabilities(acl: ACL, data: Mapping[str, Any]) -> Response:
    """Vault's sys/capabilities answer: each path's capabilities, sorted ('deny' if none)."""
    paths: list[str] = []
    raw = data.get("paths", data.get("path"))
    if isinstance(raw, str):
        paths = [p for p in raw.split(",") if p]
    elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        paths = list(raw)
    if not paths:
        raise InvalidRequestError("paths must be supplied")
    if len(paths) > _MAX_CAPABILITY_PATHS:
        raise InvalidRequestError("too many paths")
    answer: dict[str, Any] = {
        path: sorted(acl.capabilities(path.lstrip("/"), listing=True)) for path in paths
    }
    if len(paths) == 1:
        answer["capabilities"] = answer[paths[0]]
    # Vault repeats the answer at the top level of the envelope.
    return Response(data=answer, top_level=dict(answer))
