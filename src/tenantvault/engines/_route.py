"""What an engine hands the Core for one request (`Route`), and what the Core hands back (`Call`).

A route *declares* everything its handler needs — the ACL path and capability, `sudo`, extra
(path, capability) pairs, root-namespace-only, mount access, whether it mints a token, the
request parameters it reads — and only the Core checks those declarations, before the request
is audited and the handler runs ("declare, then check in one place"). A handler receives a
`Call`: plain data (only the parameters its route declared), the Core's
answers to the optional requirements it declared, and views of the stores already bound to
the call's tenant incarnation. No ACL, no principal, nothing that could check or widen access.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, final

if TYPE_CHECKING:
    from tenantvault._policy_store import TenantPolicies
    from tenantvault._request import Response
    from tenantvault._token_roles import TokenRole
    from tenantvault._tokens import TenantTokens
    from tenantvault.audit._view import AuditView

__all__ = [
    "Call",
    "Caller",
    "MountView",
    "Need",
    "Parameters",
    "RootOnly",
    "Route",
    "TokenGrant",
    "UndeclaredParameterError",
]

# One (ACL path, capability) pair a route needs besides its own.
Need = tuple[str, str]


class RootOnly(enum.Enum):
    """How a root-namespace-only route answers a tenant (each endpoint keeps OpenBao's answer)."""

    DENY = "deny"  # 403 permission denied: sys/audit devices
    REFUSE = "refuse"  # 400 "operation only available in root namespace": sys/audit-hash


class UndeclaredParameterError(LookupError):
    """A handler asked its call's data for a parameter its route did not declare: a bug in
    the route's declaration (raised only when the Core checks handlers, i.e. in tests)."""


@final
class Parameters(Mapping[str, Any]):
    """The request data a handler gets: only the top-level keys its route declared.

    Read-only. With `strict` (the Core's `strict_parameters`, set by the test suites), asking
    for a key the route did not declare raises `UndeclaredParameterError` instead of answering
    "absent", so the suites prove every handler reads only what its route declares.
    """

    __slots__ = ("_data", "_declared", "_strict")

    def __init__(
        self, data: Mapping[str, Any], declared: frozenset[str], *, strict: bool = False
    ) -> None:
        self._data = {key: value for key, value in data.items() if key in declared}
        self._declared = declared
        self._strict = strict

    def _check(self, key: object) -> None:
        if self._strict and key not in self._declared:
            raise UndeclaredParameterError(f"parameter {key!r} is not declared by the route")

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        self._check(key)
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping.get would raise and catch a KeyError for every absent parameter.
        self._check(key)
        return self._data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller's own token, described: for the handlers that act on it (lookup-self,
    renew-self, revoke-self). Data only; `token` is the plaintext the caller sent, which
    lookup-self returns as `id` and renew-self as `client_token`, as Vault does."""

    accessor: str = field(repr=False)
    policies: tuple[str, ...]
    tenant: str | None
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the Core allowed a token-minting route to issue (subset rule and sudo checked)."""

    policies: tuple[str, ...]
    orphan: bool
    period_seconds: int
    meta: Mapping[str, str] | None
    # Set when a token role applies (`auth/token/create/<role>`): its cap on the explicit
    # max TTL (0: none), whether its tokens may be renewable, the CIDR blocks they are bound
    # to, and the `path` they record (create/<role>[/<suffix>]).
    explicit_max_ttl_cap_seconds: int = 0
    renewable: bool = True
    bound_cidrs: tuple[str, ...] = ()
    path: str = ""


@dataclass(frozen=True, slots=True)
class MountView:
    """The mounts a caller may see, as the Core decided them (sys/internal/ui/mounts)."""

    paths: frozenset[str]
    # False when no token was sent: Vault then shows only type, description and options.
    detailed: bool


@dataclass(frozen=True, slots=True)
class Call:
    """Everything a handler may use: the tenant it runs in, the request data, and the
    Core's decisions and tenant-bound views for this one request."""

    tenant: str
    data: Mapping[str, Any] = field(repr=False)
    request_id: str
    # The tenant's incarnation id ('' in the root namespace).
    tenant_uid: str = ""
    # None for public probes and for the in-process operator (no token).
    caller: Caller | None = None
    # The route's `optional` requirements that the caller's policies grant.
    granted: frozenset[Need] = frozenset()
    # Set for routes with `mints_token`: the policies and flags the Core approved.
    grant: TokenGrant | None = None
    # Set for routes with `lists_mounts`: which of the declared mounts the caller may see.
    visible_mounts: MountView | None = None
    # The address the request came from (HTTP: the peer), for CIDR bindings; None in-process.
    client_address: str | None = None
    # Views bound to this call's tenant incarnation (None for public probes).
    tokens: TenantTokens | None = field(default=None, repr=False)
    audit: AuditView | None = field(default=None, repr=False)
    policies: TenantPolicies | None = field(default=None, repr=False)
    # What the route's existence check found (`Route.exists`), handed on so the handler
    # need not look it up again (transit encrypt: the keyring); None without a check.
    existing: object = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Route:
    """One resolved request and what it needs, checked by the Core before the handler runs.

    - `acl_path` is the canonical path the policy is checked against (with a trailing '/'
      for LIST, as Vault does). `capability` is the one needed; when it is None the Core asks
      `exists()` and needs `update` if the target exists (a truthy answer) and `create`
      otherwise; the answer reaches the handler as `Call.existing`.
    - `sudo`: the policy must also grant `sudo` at `acl_path`.
    - `extra`: more (path, capability) pairs the policy must grant (all of them).
    - `optional`: pairs the Core evaluates without refusing; the handler learns which were
      granted from `Call.granted` (transit's create-on-encrypt).
    - `root_namespace_only`: refused in a tenant, with that endpoint's answer; with
      `resolve`, the route is a placeholder and `resolve()` parses the real one afterwards.
    - `mount_access`: instead of a capability, Vault's hasMountAccess on this mount (ending
      in '/'): the policy grants something at or under it (sys/internal/ui/mounts/<path>).
    - `lists_mounts`: instead of a capability, the handler shows only the mounts the caller
      may see. Keys are mount paths as the ACL sees them ('kv/', 'auth/token/'), values
      whether the mount is listed unauthenticated (`listing_visibility: "unauth"`). The Core
      hands the visible ones in `Call.visible_mounts`: with a token those it has any
      capability under (Vault's hasMountAccess) or listed unauthenticated; without one (the
      only route that runs so, sys/internal/ui/mounts) just the latter.
    - `refusal`: the text of the 403 when the Core refuses a caller's token this route
      (Vault words sys/internal/ui/mounts/<path>'s); "permission denied" if empty.
    - `mints_token`: the Core applies the token-issuing rules (use-limited parent, the
      subset rule, sudo for orphans and periodic tokens) and hands over a `TokenGrant`;
      "orphan" for create-orphan, "child" for create (orphan only with `no_parent`).
      "login" is an auth method's login endpoint (`engines/auth`): it runs without a token
      (one sent is ignored) and declares nothing else; its handler answers with
      `Response.login` (what to issue) and the Core mints the token in the mount's tenant.
      With `token_role` (`auth/token/create/<role>`) the role's rules replace the subset
      rule and the sudo requirements (`_grants.token_grant`).
    - `public=True` needs no token and no capability: the unauthenticated probes, and the
      routes of paths an engine declares unauthenticated (`engines/_special`), which the
      Core marks so itself (engines never set it on their own routes).
    - `pure`: the handler changes nothing (it reads stored data and answers): the Core may
      run it before the request entry is recorded, then records the request and response
      entries together (one group commit, not two in a row) before it answers. Never for
      a route with any effect beyond its answer, since a failed audit must leave none.
      "if-exists": pure when the route's existence check found its target (transit encrypt:
      with the key there, no create-on-encrypt can happen). Either way a property of the
      route and the request, never state of the route: routes are reused across requests.
    - `parameters`: the top-level request keys the handler may use. The Core hands it only
      those (`Parameters`) and answers any other with Vault's warning "Endpoint ignored these
      unrecognized parameters: [...]". Policy parameter constraints are still checked on the
      full request data. None: free-form data (a KV v1 write, whose keys are the secret).
    """

    acl_path: str
    capability: str | None
    handler: Callable[[Call], Awaitable[Response]]
    exists: Callable[[str], Awaitable[object]] | None = None
    public: bool = False
    mount: str = ""
    sudo: bool = False
    extra: tuple[Need, ...] = ()
    optional: tuple[Need, ...] = ()
    root_namespace_only: RootOnly | None = None
    mount_access: str | None = None
    mints_token: Literal["", "child", "orphan", "login"] = ""
    lists_mounts: Mapping[str, bool] | None = None
    refusal: str = ""
    parameters: frozenset[str] | None = None
    pure: bool | Literal["if-exists"] = False
    # For `auth/token/create/<role>` (with `mints_token`): loads the role for the storage
    # tenant the Core passes (None: no such role); the Core applies its constraints.
    token_role: Callable[[str], Awaitable[TokenRole | None]] | None = None
    # A root-namespace-only area's real route, parsed only after the Core checked
    # `root_namespace_only`: a tenant gets that answer whatever the path or method, as in
    # OpenBao, and parse errors show only in the root namespace.
    resolve: Callable[[], Route] | None = None
