"""Which tenant a request runs in: the namespace header or path prefix, against its token."""

from __future__ import annotations

from tenantvault._exceptions import (
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    TaintedNamespaceError,
)
from tenantvault._paths import validate_tenant_id
from tenantvault._request import Request
from tenantvault._router import PROTECTED_PREFIXES, MountTable, Router
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import Principal
from tenantvault.backends._protocol import SYSTEM_TENANT

__all__ = ["Namespaces"]


class Namespaces:
    """Step 2 of the pipeline (resolve the tenant), and the mounts a new tenant starts with."""

    def __init__(self, router: Router, tenants: TenantRegistry) -> None:
        self._router = router
        self._tenants = tenants

    async def split(
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
            table = await self._router.table(SYSTEM_TENANT, "")
            return table.has_first_segment(head), table
        try:
            validate_tenant_id(scope)
        except InvalidPathError:
            return False, None
        uid = await self._tenants.uid(scope)
        if uid is None:
            return None, None
        try:
            table = await self._router.table(scope, uid)
        except NotFoundError:
            return None, None  # deleted meanwhile
        return table.has_first_segment(head), table

    async def resolve(
        self,
        principal: Principal | None,
        namespace: str | None,
        *,
        anonymous: bool = False,
        path: str = "",
    ) -> tuple[str | None, str]:
        """The tenant the request runs in and its incarnation id ('' in the root namespace).

        Without a principal: the root namespace for the public probes, or for an `anonymous`
        request (no token, on a path Vault leaves unauthenticated) the namespace it names.
        """
        if principal is None:
            if not anonymous:
                return None, ""
            try:
                return await self._named(namespace, path)
            except (NotFoundError, TaintedNamespaceError):
                # Without a token, a tenant that does not exist must look like one that lists
                # nothing: no incarnation id, and the listing answers empty. Otherwise anyone
                # could enumerate tenant names.
                return namespace, ""
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
        return await self._named(namespace, path)

    async def _named(self, namespace: str | None, path: str) -> tuple[str | None, str]:
        """The tenant `namespace` names and its incarnation; 404 if there is none, 403 (as
        OpenBao) while it is being deleted."""
        if namespace is None:
            return None, ""
        if "/" in namespace and all(validate_tenant_id(part) for part in namespace.split("/")):
            raise NotFoundError("namespace not found")  # nested: tenants are flat
        validate_tenant_id(namespace)
        found = await self._tenants.state(namespace)
        if found is None:
            raise NotFoundError("namespace not found")
        if found[1]:
            raise TaintedNamespaceError(namespace, path)
        return namespace, found[0]

    async def tenant_created(self, tenant: str, uid: str | None) -> None:
        """Tenant creation: refuse an id that is a root mount's first segment (`uid` None),
        then give the new tenant its own mounts, `secret/` (kv v2) and `transit/`."""
        if uid is None:
            root = await self._router.table(SYSTEM_TENANT, "")
            if root.has_first_segment(tenant):
                existing = next(p for p in root.entries if p.partition("/")[0] == tenant)
                raise InvalidRequestError(
                    f"new namespace conflicts with existing mount: {existing}"
                )
            return
        await self._router.initialize(tenant, self._router.defaults())
