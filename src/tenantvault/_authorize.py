"""Step 4 of the pipeline: check every declaration of a route against the caller's ACL.

The one place that reads an ACL to decide a request ("declare, then check in one place"):
the Core calls these before the request is audited, and hands the handler only the results.
"""

from __future__ import annotations

from typing import NamedTuple

from tenantvault._exceptions import InternalError, InvalidRequestError, PermissionDeniedError
from tenantvault._grants import token_grant
from tenantvault._policy import ACL
from tenantvault._policy_store import PolicyStore
from tenantvault._request import Request
from tenantvault._tokens import Principal
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._route import MountView, Need, RootOnly, Route, TokenGrant

__all__ = [
    "ROOT_ACL",
    "Decision",
    "acl_of",
    "authorize",
    "grant_token",
    "root_namespace_checked",
    "visible_mounts",
]

ROOT_ACL = ACL((), root=True)
# OpenBao's answer to a namespace calling a root-only endpoint (checked against 2.7.2).
_ROOT_ONLY = "operation only available in root namespace"
_ORPHAN = "orphan"  # Route.mints_token of create-orphan (a route kind, not a secret)
_LOGIN = "login"  # Route.mints_token of an auth method's login (engines/auth)


class Decision(NamedTuple):
    """What `authorize` decided: the capability checked (None: no capability applies), the
    optional requirements granted, and what the route's existence check found (None
    without one), for the handler."""

    capability: str | None
    granted: frozenset[Need]
    existing: object = None


_NOTHING: Decision = Decision(None, frozenset())


async def acl_of(policies: PolicyStore, principal: Principal | None, storage_tenant: str) -> ACL:
    """The principal's ACL in its tenant: root's, or its policies' (none: nothing allowed)."""
    if principal is None:
        return ACL(())
    if principal.is_root:
        return ROOT_ACL
    return await policies.acl(storage_tenant, principal.policies)


def root_namespace_checked(route: Route, tenant: str | None) -> Route:
    """Refuse a root-namespace-only route in a tenant (with its endpoint's answer), before
    its path is parsed any further; then the real route."""
    if route.root_namespace_only is not None and tenant is not None:
        if route.root_namespace_only is RootOnly.REFUSE:
            raise InvalidRequestError(_ROOT_ONLY)
        raise PermissionDeniedError()
    return route.resolve() if route.resolve is not None else route


async def authorize(
    route: Route,
    acl: ACL,
    *,
    storage_tenant: str,
    principal: Principal | None,
    request: Request,
    tenant: str | None,
) -> Decision:
    """Check everything `route` declares; the `Decision` (capability, optional requirements
    granted, what the existence check found)."""
    if route.root_namespace_only is not None and tenant is not None:
        raise InternalError()  # root_namespace_checked refused it already
    declares = route.sudo or route.extra or route.mount_access is not None or route.mints_token
    if route.mints_token == _LOGIN:
        # A login runs as no one (the Core routed it without authenticating) and may declare
        # nothing else: with a principal, or with any other requirement, it fails closed.
        other = route.sudo or route.extra or route.mount_access is not None
        if principal is not None or other or route.public or route.lists_mounts is not None:
            raise PermissionDeniedError()
        return _NOTHING
    if route.public:
        # No principal, so nothing is granted: a public route that declares a requirement
        # fails closed rather than running without it.
        if declares or route.lists_mounts is not None:
            raise PermissionDeniedError()
        return _NOTHING
    if principal is None:
        # Only public routes, and the mount listing (which then shows only what is listed
        # unauthenticated), run without a principal; any other route reached unauthenticated
        # is refused, never run as anyone.
        if route.lists_mounts is None or declares:
            raise PermissionDeniedError()
        return _NOTHING
    try:
        return await _check(route, acl, storage_tenant=storage_tenant, request=request)
    except PermissionDeniedError:
        if route.refusal:
            raise PermissionDeniedError(route.refusal) from None
        raise


async def _check(route: Route, acl: ACL, *, storage_tenant: str, request: Request) -> Decision:
    """`authorize` for a caller with a token: the declarations the ACL must grant."""
    capability: str | None = None
    existing: object = None
    if route.mount_access is not None:
        # Vault's hasMountAccess: anything at or under the mount (sys/internal/ui/mounts).
        if not acl.has_access_under(route.mount_access):
            raise PermissionDeniedError()
    elif route.lists_mounts is not None:
        pass  # no capability: visible_mounts filters what the handler shows instead
    else:
        capability = route.capability
        if capability is None:
            if route.exists is None:
                raise PermissionDeniedError()
            existing = await route.exists(storage_tenant)
            capability = "update" if existing else "create"
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
    return Decision(capability, granted, existing)


async def grant_token(
    route: Route,
    acl: ACL,
    *,
    principal: Principal | None,
    request: Request,
    tenant: str | None,
) -> TokenGrant | None:
    """For a token-minting route, the issuing rules (Vault's statuses and messages), with
    the constraints of the token role the route names, if any."""
    if not route.mints_token or route.mints_token == _LOGIN or principal is None:
        return None  # a login's token is minted by the Core from the handler's LoginResult
    role = None
    if route.token_role is not None:
        # The role of the tenant the request runs in (the Core's, never the caller's pick).
        role = await route.token_role(tenant if tenant is not None else SYSTEM_TENANT)
        if role is None:
            raise InvalidRequestError(f"unknown role {route.acl_path.rsplit('/', 1)[-1]}")
    return token_grant(
        request.data or {},
        principal=principal,
        namespace=tenant,
        orphan_route=route.mints_token == _ORPHAN,
        sudo=acl.allows(route.acl_path, "sudo"),
        role=role,
    )


def visible_mounts(route: Route, acl: ACL, *, principal: Principal | None) -> MountView | None:
    """For a route that lists mounts, the ones the caller may see (Vault's hasMountAccess,
    or `listing_visibility: "unauth"`); only the latter without a token."""
    if route.lists_mounts is None:
        return None
    listed = route.lists_mounts
    if principal is None:
        unauthenticated = frozenset(path for path, unauth in listed.items() if unauth)
        return MountView(unauthenticated, detailed=False)
    seen = frozenset(
        path for path, unauth in listed.items() if unauth or acl.has_access_under(path)
    )
    return MountView(seen, detailed=True)
