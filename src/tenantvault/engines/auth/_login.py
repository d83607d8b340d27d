"""What a login route asks the Core to issue (`LoginResult`), and how the Core mints it.

An auth method's login handler decides *who* logs in and answers with a `Response` whose
`login` is a `LoginResult`: policies, TTLs, use count, period, CIDR binding, metadata,
display name. It never sees a token store. The Core (`mint_login`) then applies the mount's
TTL limits and mints an orphan token in the tenant the request was routed to — the tenant
whose mount table holds the auth mount — so no role of one tenant can log anyone into
another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tenantvault._exceptions import InternalError, InvalidRequestError

if TYPE_CHECKING:
    from tenantvault._router import MountEntry
    from tenantvault._tokens import TokenStore

__all__ = ["LoginResult", "TokenType", "display_name", "mint_login"]

TokenType = Literal["default", "service", "batch"]

# Vault's system default and maximum lease TTL (768h), what a mount's 0 means.
_SYSTEM_MAX_TTL_SECONDS = 768 * 3600


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The identity a login established and what the token for it may do.

    Every duration is in seconds, 0 meaning "the mount's (or the system's) value". The Core
    adds `default` to `policies` unless `no_default_policy`. `metadata` becomes the token's
    `meta` and `auth.metadata` (audited HMAC'd, like every string of an audit entry).
    `token_type` "batch" is issued as a service token (tenantvault has no batch tokens).
    `display_name` is the method's own part (JWT: the user claim; AppRole: none): the Core
    puts the mount in front of it, as Vault does (`display_name`).
    """

    policies: tuple[str, ...]
    display_name: str
    metadata: Mapping[str, str] = field(default_factory=dict, repr=False)
    no_default_policy: bool = False
    ttl_seconds: int = 0
    max_ttl_seconds: int = 0
    explicit_max_ttl_seconds: int = 0
    period_seconds: int = 0
    num_uses: int = 0
    bound_cidrs: tuple[str, ...] = ()
    token_type: TokenType = "default"  # noqa: S105 -- a token type, not a credential
    renewable: bool = True


def display_name(tenant: str | None, mount: MountEntry, user: str) -> str:
    """Vault's display name of a login's token: the mount point the login came through,
    dashed, then the method's part. 'auth/approle/' gives 'approle'; in namespace 'acme' the
    mount point is 'acme/auth/approle/' and Vault's 'auth/' trim does not apply there:
    'acme-auth-approle' (checked against OpenBao 2.7)."""
    point = mount.path if tenant is None else f"{tenant}/{mount.path}"
    return (point.removeprefix("auth/").replace("/", "-") + user).removesuffix("-")


def _lifetime(result: LoginResult, mount: MountEntry) -> tuple[int, int]:
    """(ttl, explicit max ttl) of the token, as Vault's CalculateTTL for a login."""
    mount_max = mount.max_lease_ttl or _SYSTEM_MAX_TTL_SECONDS
    mount_default = mount.default_lease_ttl or _SYSTEM_MAX_TTL_SECONDS
    maximum = min(result.max_ttl_seconds or mount_max, mount_max)
    if result.explicit_max_ttl_seconds:
        maximum = min(maximum, result.explicit_max_ttl_seconds)
    if result.period_seconds:
        # A periodic token renews to its period forever, capped only by an explicit max.
        ttl = result.period_seconds
        if result.explicit_max_ttl_seconds:
            ttl = min(ttl, result.explicit_max_ttl_seconds)
        return ttl, result.explicit_max_ttl_seconds
    ttl = min(result.ttl_seconds or mount_default, maximum)
    # The store caps renewals with the explicit max; a role's max TTL (or the mount's, when
    # lower than the system's) is that cap here.
    cap = maximum if maximum < _SYSTEM_MAX_TTL_SECONDS else 0
    return ttl, cap


async def mint_login(
    tokens: TokenStore,
    result: LoginResult,
    *,
    tenant: str | None,
    tenant_uid: str,
    mount: MountEntry,
    path: str,
) -> dict[str, Any]:
    """Mint the token a login earned at `path` ('auth/approle/login'), in `tenant` (None: the
    root namespace); returns Vault's `auth` block."""
    if not mount.path.startswith("auth/"):
        raise InternalError()  # only an auth mount's login route gets here
    policies = [p for p in result.policies if p]
    if not result.no_default_policy and "default" not in policies:
        policies.append("default")
    if "root" in policies:
        # An auth method never hands out root (Vault's text and status).
        raise InvalidRequestError("auth methods cannot create root tokens")
    ttl, cap = _lifetime(result, mount)
    plaintext, record = await tokens.create(
        tenant=tenant,
        tenant_uid=tenant_uid,
        policies=policies,
        parent=None,
        orphan=True,
        ttl_seconds=ttl,
        explicit_max_ttl_seconds=cap,
        period_seconds=result.period_seconds,
        renewable=result.renewable,
        num_uses=result.num_uses,
        meta=dict(result.metadata) or None,
        display_name=display_name(tenant, mount, result.display_name),
        path=path,
        bound_cidrs=result.bound_cidrs,
        issuer=mount.uuid,
    )
    return {
        "client_token": plaintext,
        "accessor": record.accessor,
        "policies": sorted(record.policies),
        "token_policies": sorted(record.policies),
        "metadata": dict(result.metadata) or None,
        "lease_duration": record.ttl_seconds,
        "renewable": record.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": True,
        "mfa_requirement": None,
        "num_uses": record.num_uses,
    }
