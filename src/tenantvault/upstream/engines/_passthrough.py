"""Upstream engines per tenant (namespace strategy): any secrets engine type tenantvault does
not implement (totp, ssh, aws, …) is mounted in the tenant's upstream namespace and served by
the upstream, through tenantvault's authorization and audit.

- Enabling a mount of such a type in a tenant enables it upstream first (same path, type,
  description, options and TTLs; tenantvault's own upstream token does it), then records it
  in the tenant's mount table; disabling disables it upstream; tuning tunes it upstream.
- Every request under the mount goes upstream with the tenant's scoped token, whose upstream
  policy reaches only the tenant's namespace (`NamespaceTenancy.policy`).
- Authorization is Vault's by operation, with the ACL path the request path: read, list,
  delete, patch; a write (POST/PUT) needs `create` and `update` both — Vault asks for one of
  them according to the upstream engine's existence check, which tenantvault cannot see, so
  requiring both is never wider than Vault. Parameters are free-form (the upstream checks
  them).
- Types tenantvault implements (kv, transit, pki, database) stay tenantvault's own engines
  (their records in the upstream KV, sealed); only a tenant's `secret/` and `transit/` are
  the upstream's own (`_types`). Upstream auth methods are not offered: a login must produce
  a tenantvault token, so approle and jwt stay tenantvault's (`Router.check_auth_type`).
- The prefix strategy has no per-tenant place for an upstream mount: such types are refused
  there with 400 and the reason.
- Leases: an upstream dynamic secret (ssh OTP creds, cloud creds, …) becomes a tenantvault
  lease of the tenant (`Response.secret`), which keeps the upstream lease id in its internal
  data — never shown to the client; `sys/leases/renew|revoke` through tenantvault (and the
  revocation of the token that made it, and expiry) renew or revoke the upstream lease with
  the tenant's token, in the tenant's namespace only.
- Not passed on: an upstream answer's `auth` (no upstream auth methods, see above) and raw
  (non-JSON) answers. Root-protected (sudo) paths of upstream engines are refused by the
  upstream itself: the tenant's upstream token has no `sudo`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenantvault._exceptions import InvalidRequestError
from tenantvault._request import LeasedSecret, Operation, Response
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Route
from tenantvault.leases._ttl import LeaseTTL
from tenantvault.upstream._client import UpstreamResponse
from tenantvault.upstream._tenancy import NamespaceTenancy, Placement
from tenantvault.upstream.engines._forward import (
    METHODS,
    answer,
    raise_for,
    send_as_is,
)
from tenantvault.upstream.engines._gateway import Gateway

__all__ = ["PassthroughEngine", "leased_secret"]

_CAPABILITY: Final[Mapping[Operation, str]] = {
    Operation.READ: "read",
    Operation.LIST: "list",
    Operation.DELETE: "delete",
    Operation.PATCH: "patch",
    Operation.CREATE: "update",
    Operation.UPDATE: "update",
}
# The internal lease data naming the upstream lease (`LeasedSecret.internal`).
_UPSTREAM_LEASE: Final = "upstream_lease_id"
# OpenBao's answer to revoking a lease it no longer has (expired there first): done.
_GONE: Final = "invalid lease"
# The tune fields sent upstream as given (the rest of a tune is tenantvault's own).
_TUNED_UPSTREAM: Final = ("default_lease_ttl", "max_lease_ttl", "description", "options")


def leased_secret(response: UpstreamResponse) -> LeasedSecret | None:
    """The lease of an upstream dynamic secret, to become the tenant's tenantvault lease."""
    body = response.body or {}
    lease_id = body.get("lease_id")
    if not isinstance(lease_id, str) or not lease_id:
        return None
    duration = body.get("lease_duration")
    return LeasedSecret(
        internal={_UPSTREAM_LEASE: lease_id},
        ttl_seconds=duration if isinstance(duration, int) and duration > 0 else 0,
        renewable=body.get("renewable") is True,
    )


class PassthroughEngine:
    """The engine of every mount type the upstream serves (`Router`'s fallback type)."""

    type: Final = "upstream"

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def accepts(self, kind: str) -> None:
        """Refuse `kind` unless the upstream can serve it per tenant (namespace strategy)."""
        if not isinstance(self._gateway.tenancy, NamespaceTenancy):
            raise InvalidRequestError(
                f'cannot enable a mount of type "{kind}": with the prefix tenancy strategy '
                "the upstream keeps every tenant in shared mounts, so only kv and transit "
                "mounts (and tenantvault's own engine types) are possible; use the namespace "
                "strategy for the upstream's other engines"
            )

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        """Options are the upstream engine's to check: passed on as given."""
        return {str(name): str(value) for name, value in options.items()}

    @staticmethod
    def _tenant(mount: Mount) -> str:
        tenant = mount.storage.tenant
        if tenant == SYSTEM_TENANT:
            # Never enabled there (`provision`); a table edited behind our back fails closed.
            raise InvalidRequestError(f"no upstream place for {mount.path} in the root namespace")
        return tenant

    def _placement(self, tenant: str, path: str) -> Placement:
        return Placement(self._gateway.tenancy.token_namespace(tenant), path)

    async def provision(self, storage_tenant: str, path: str, body: Mapping[str, Any]) -> None:
        """Enable the mount at `path` in the tenant's upstream namespace (`body`: Vault's
        `sys/mounts` enable body)."""
        kind = str(body.get("type", ""))
        self.accepts(kind)
        if storage_tenant == SYSTEM_TENANT:
            raise InvalidRequestError(
                f'cannot enable a mount of type "{kind}" in the root namespace: the upstream '
                "serves its engines to tenants only (in each tenant's upstream namespace)"
            )
        await self._gateway.enable_mount(storage_tenant, path, body)

    async def unprovision(self, storage_tenant: str, path: str) -> None:
        """Undo `provision` (the mount table refused the new entry)."""
        await self._gateway.disable_mount(storage_tenant, path)

    async def tune(self, mount: Mount, data: Mapping[str, Any]) -> None:
        """Tune the upstream mount with the fields of `data` the upstream keeps."""
        body = {name: data[name] for name in _TUNED_UPSTREAM if data.get(name) is not None}
        if body:
            await self._gateway.tune_mount(self._tenant(mount), mount.path, body)

    def refuse_remount(self, mount: Mount, target: str) -> str | None:
        """An upstream mount stays where the upstream has it."""
        return f"cannot remount {mount.path}: the upstream serves it at that path"

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        """The request forwarded as is to the same path of the tenant's upstream namespace."""
        tenant = self._tenant(mount)
        full = f"{mount.path}{path}"
        acl = full.rstrip("/") + "/" if operation is Operation.LIST else full
        placement = self._placement(tenant, full)
        method = METHODS[operation]
        gateway = self._gateway

        async def handler(call: Call) -> Response:
            response = await send_as_is(gateway, tenant, method, placement, call.data)
            result = answer(response)
            result.secret = leased_secret(response)
            return result

        # A write: both create and update (see the module docstring).
        writes = operation in (Operation.CREATE, Operation.UPDATE)
        return Route(
            acl,
            _CAPABILITY[operation],
            handler,
            mount=mount.name,
            extra=((acl, "create"),) if writes else (),
            parameters=None,
        )

    # -- leases of upstream dynamic secrets (`LeasingEngine`) ---------------------------------

    async def _leases(self, mount: Mount, action: str, body: dict[str, Any]) -> UpstreamResponse:
        tenant = self._tenant(mount)
        placement = self._placement(tenant, f"sys/leases/{action}")
        return await self._gateway.send(tenant, "PUT", placement, json=body)

    async def revoke_secret(self, mount: Mount, internal: Mapping[str, Any]) -> None:
        """Revoke the upstream lease; one the upstream no longer has is revoked already."""
        response = await self._leases(mount, "revoke", {"lease_id": internal[_UPSTREAM_LEASE]})
        if response.status == 400 and any(_GONE in text for text in response.errors):
            return
        raise_for(response)

    async def renew_secret(
        self,
        mount: Mount,
        internal: Mapping[str, Any],
        *,
        increment_seconds: int,
        issued_ns: int,
        now_ns: int,
    ) -> LeaseTTL:
        """Renew the upstream lease; its answer (within the upstream's maximum) is the TTL."""
        body: dict[str, Any] = {"lease_id": internal[_UPSTREAM_LEASE]}
        if increment_seconds:
            body["increment"] = increment_seconds
        response = await self._leases(mount, "renew", body)
        raise_for(response)
        answered = response.body or {}
        duration = answered.get("lease_duration")
        warnings = answered.get("warnings")
        return LeaseTTL(
            ttl_seconds=duration if isinstance(duration, int) else 0,
            max_ttl_seconds=0,
            warnings=tuple(w for w in warnings if isinstance(w, str))
            if isinstance(warnings, list)
            else (),
        )

    async def destroy(self, mount: Mount) -> None:
        """The mount was disabled in tenantvault: disable it upstream, its data with it."""
        await self._gateway.disable_mount(self._tenant(mount), mount.path)
