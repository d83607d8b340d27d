"""Tenant-scoped upstream tokens: one per tenant and instance, created, cached and renewed.

Every tenant request goes upstream with a token whose upstream policy reaches only that
tenant's namespace or prefix (`Tenancy.policy`), so a bug in our mapping cannot cross
tenants: the upstream itself refuses. Tokens come from the tenant's token role (orphan,
periodic, that one policy), minted by tenantvault's own upstream token; orphans, so that a
new login of tenantvault's own token does not revoke them with it.

A token is renewed (`auth/token/renew-self`) once 2/3 of its period has passed and replaced
by a new one when renewal fails or the upstream refuses it (revoked by an operator, or the
role changed). Concurrent requests of one tenant share one creation or renewal (single
flight); no lock is held across the network call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from tenantvault._exceptions import BackendUnavailableError, BadGatewayError, TenantVaultError
from tenantvault.upstream._client import UpstreamClient
from tenantvault.upstream._tenancy import Tenancy

__all__ = ["DEFAULT_TOKEN_PERIOD_SECONDS", "ScopedTokens"]

DEFAULT_TOKEN_PERIOD_SECONDS: Final = 3600
_RENEW_AT: Final = 2 / 3


@dataclass(slots=True)
class _Held:
    token: str = field(repr=False)
    issued: float
    period: float


class ScopedTokens:
    """The cache of tenant-scoped upstream tokens of this instance."""

    def __init__(
        self,
        client: UpstreamClient,
        tenancy: Tenancy,
        service_token: Callable[[], str],
        *,
        period_seconds: int = DEFAULT_TOKEN_PERIOD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._tenancy = tenancy
        self._service_token = service_token
        self._period = period_seconds
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._pending: dict[str, asyncio.Task[_Held]] = {}

    def __repr__(self) -> str:
        return f"ScopedTokens(tenants={len(self._held)})"

    def role(self, tenant: str) -> str:
        """The name of the tenant's upstream token role (its policy's name)."""
        return self._tenancy.policy_name(tenant)

    def role_settings(self, tenant: str) -> dict[str, object]:
        """The upstream token role: orphan, periodic, exactly the tenant's policy."""
        return {
            "allowed_policies": [self.role(tenant)],
            "orphan": True,
            "renewable": True,
            "token_period": f"{self._period}s",
            "token_no_default_policy": True,
            "token_type": "service",
        }

    async def get(self, tenant: str) -> str:
        """The tenant's current token, created or renewed first if needed."""
        held = self._held.get(tenant)
        if held is not None and self._clock() - held.issued < held.period * _RENEW_AT:
            return held.token
        return (await self._single_flight(tenant, held)).token

    async def replace(self, tenant: str, refused: str) -> str:
        """A new token after the upstream refused `refused` (unless another call already
        replaced it)."""
        held = self._held.get(tenant)
        if held is not None and held.token != refused:
            return held.token
        self._held.pop(tenant, None)
        return (await self._single_flight(tenant, None)).token

    def forget(self, tenant: str) -> None:
        """Drop the tenant's token (the tenant is gone; its upstream policy went first)."""
        self._held.pop(tenant, None)

    async def _single_flight(self, tenant: str, held: _Held | None) -> _Held:
        task = self._pending.get(tenant)
        if task is None:
            task = asyncio.ensure_future(self._refresh(tenant, held))
            self._pending[tenant] = task
            task.add_done_callback(lambda _: self._pending.pop(tenant, None))
        # shield: one caller giving up must not cancel the refresh the others wait for.
        return await asyncio.shield(task)

    async def _refresh(self, tenant: str, held: _Held | None) -> _Held:
        fresh: _Held | None = None
        if held is not None:
            fresh = await self._renew(tenant, held)
        if fresh is None:
            fresh = await self._create(tenant)
        self._held[tenant] = fresh
        return fresh

    async def _renew(self, tenant: str, held: _Held) -> _Held | None:
        started = self._clock()
        try:
            body = await self._client.write(
                "auth/token/renew-self",
                {},
                token=held.token,
                namespace=self._tenancy.token_namespace(tenant) or None,
                idempotent=True,
            )
        except TenantVaultError:
            return None  # a new token instead (the old one expires on its own)
        period = _lease_seconds(body)
        return _Held(held.token, started, period) if period else None

    async def _create(self, tenant: str) -> _Held:
        started = self._clock()
        response = await self._client.request(
            "POST",
            f"auth/token/create/{self.role(tenant)}",
            token=self._service_token(),
            namespace=self._tenancy.token_namespace(tenant) or None,
            json={"display_name": f"tenantvault-{tenant}"},
        )
        if not response.ok:
            # Not the caller's fault: tenantvault's own upstream policy or the tenant's role.
            raise BadGatewayError(
                f"the upstream refused a token for tenant {tenant} ({response.status}); "
                "check the upstream policy of tenantvault's token"
            )
        body = response.body
        auth = (body or {}).get("auth")
        token = auth.get("client_token") if isinstance(auth, dict) else None
        period = _lease_seconds(body)
        if not isinstance(token, str) or not token or not period:
            raise BackendUnavailableError("upstream did not issue a tenant token")
        return _Held(token, started, period)


def _lease_seconds(body: object) -> float:
    auth = body.get("auth") if isinstance(body, dict) else None
    lease = auth.get("lease_duration") if isinstance(auth, dict) else None
    return float(lease) if isinstance(lease, int) and lease > 0 else 0.0
