"""Renewing a login's token: the issuing auth method is asked again, as Vault does.

When a token an auth mount issued (`TokenRecord.issuer`) is renewed — `auth/token/renew`,
`renew-self`, `renew-accessor` — the token store asks `Renewals.terms` before extending it.
That finds the issuing mount in the token's tenant, asks its engine (`RenewingEngine.renew`)
whether the role still exists and what it allows now, and folds in the mount's current TTLs
(`sys/auth/<path>/tune`). A deleted role refuses the renewal with Vault's error (500); a
lowered role or mount maximum caps it. The token's own ceiling from login time stays a
ceiling too: raising a role's maximum later does not stretch tokens issued before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from tenantvault._exceptions import InternalError, PermissionDeniedError
from tenantvault._go_text import multierror
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines.auth._errors import PlainError

if TYPE_CHECKING:
    from tenantvault._router import Router
    from tenantvault._tokens import TokenRecord
    from tenantvault.engines._protocol import Mount

__all__ = ["RenewTerms", "Renewals", "RenewingEngine", "role_gone"]

# Vault's system default and maximum lease TTL (768h), what a mount's 0 means.
_SYSTEM_MAX_TTL_SECONDS: Final = 768 * 3600


@dataclass(frozen=True, slots=True)
class RenewTerms:
    """What a role allows a renewal now: its token TTL, max TTL and period (seconds, 0 for
    "not set"), as Vault's `pathLoginRenew` answers them."""

    ttl_seconds: int = 0
    max_ttl_seconds: int = 0
    period_seconds: int = 0


@dataclass(frozen=True, slots=True)
class RenewGrant:
    """The role's terms within the mount's limits: how far one renewal may extend a token."""

    ttl_seconds: int  # without an increment: the role's TTL, else the mount's default
    max_ttl_seconds: int  # since the token's creation (> 0)
    period_seconds: int  # > 0: renew to the period, whatever the increment

    def increment(self, requested: int | None) -> int:
        """The TTL this renewal asks for (Vault's `CalculateTTL`)."""
        if self.period_seconds:
            return min(self.period_seconds, self.max_ttl_seconds)
        return requested or self.ttl_seconds

    @property
    def ceiling_seconds(self) -> int:
        """The token's lifetime cap since creation (0: none; a periodic token has none)."""
        return 0 if self.period_seconds else self.max_ttl_seconds


@runtime_checkable
class RenewingEngine(Protocol):
    """An auth method whose tokens can be renewed: every registered auth method is one."""

    async def renew(self, mount: Mount, record: TokenRecord) -> RenewTerms:
        """The role's current terms for renewing `record`; raise to refuse the renewal."""
        ...


def role_gone(name: str) -> PlainError:
    """Vault's refusal when the role that issued a token no longer exists (500); `name` is
    spelled as the method's own message has it (AppRole quotes it, JWT does not)."""
    return PlainError(
        multierror([f"failed to renew entry: role {name} does not exist during renewal"])
    )


class Renewals:
    """The Core's renewal hook (`TokenStore.renewal`): the issuing mount decides."""

    __slots__ = ("_router",)

    def __init__(self, router: Router) -> None:
        self._router = router

    def __repr__(self) -> str:
        return "Renewals()"

    async def grant(self, record: TokenRecord) -> RenewGrant:
        """How far `record` may be renewed now; refuses if its issuer or role is gone."""
        storage_tenant = record.tenant if record.tenant is not None else SYSTEM_TENANT
        table = await self._router.table(storage_tenant, record.tenant_uid)
        entry = next(
            (e for e in table.entries.values() if e.uuid == record.issuer and e.is_auth), None
        )
        if entry is None:
            # The mount was disabled (which revokes its tokens): this token is as good as gone.
            raise PermissionDeniedError()
        engine = self._router.engine(entry)
        if not isinstance(engine, RenewingEngine):
            raise InternalError()  # an auth method that cannot re-check renews nothing
        terms = await engine.renew(table.mounts[entry.path], record)
        mount_max = entry.max_lease_ttl or _SYSTEM_MAX_TTL_SECONDS
        maximum = min(terms.max_ttl_seconds or mount_max, mount_max)
        return RenewGrant(
            ttl_seconds=terms.ttl_seconds or entry.default_lease_ttl or _SYSTEM_MAX_TTL_SECONDS,
            max_ttl_seconds=maximum,
            period_seconds=terms.period_seconds,
        )
