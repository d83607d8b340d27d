"""The gateway: each tenant's place upstream, made and removed with the tenant, and the one
path by which tenant requests reach the upstream (always with the tenant's scoped token).

With the tenant (`tenant_created`, before tenantvault records it, so an unreachable
upstream refuses the creation and leaves nothing behind): the `namespace` strategy creates
the namespace `<root>/<tenant>` with KV v2 at `secret/` and transit at `transit/`; both
strategies write the tenant's upstream policy and token role and mint its scoped token. With
the tenant's deletion (`tenant_deleted`, before tenantvault forgets it): the policy goes
first — from then on no instance's token of the tenant reaches anything — then the data
(the namespace, or every secret under the tenant's prefix and every key with its name
prefix).

tenantvault's own upstream token does the provisioning; see the README for its policy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from tenantvault._exceptions import (
    BackendUnavailableError,
    BadGatewayError,
    InvalidRequestError,
)
from tenantvault.upstream._client import (
    RawResponse,
    UpstreamClient,
    UpstreamResponse,
    wait_for_kv_mount,
)
from tenantvault.upstream._open import UpstreamGateway
from tenantvault.upstream._tenancy import (
    NamespaceTenancy,
    Placement,
    PrefixTenancy,
    Strategy,
    Tenancy,
)
from tenantvault.upstream.engines._scoped import DEFAULT_TOKEN_PERIOD_SECONDS, ScopedTokens

__all__ = ["Gateway"]

logger = logging.getLogger("tenantvault.upstream.gateway")

_IN_USE: Final = "path is already in use"
# A namespace deleted a moment ago may still be going away upstream (OpenBao deletes in the
# background): creating it again is retried this often, this far apart.
_NAMESPACE_ATTEMPTS: Final = 50
_NAMESPACE_PAUSE_SECONDS: Final = 0.1

_Sent = TypeVar("_Sent", UpstreamResponse, RawResponse)


class Gateway:
    """Tenant data in an upstream Vault/OpenBao, laid out by `tenancy`."""

    def __init__(
        self,
        client: UpstreamClient,
        tenancy: Tenancy,
        service_token: Callable[[], str],
        *,
        token_period_seconds: int = DEFAULT_TOKEN_PERIOD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        """`on_refused` is told when the upstream refuses tenantvault's own token."""
        self._on_refused = on_refused
        self.client = client
        self.tenancy = tenancy
        self._service_token = service_token
        self.tokens = ScopedTokens(
            client, tenancy, service_token, period_seconds=token_period_seconds, clock=clock
        )
        self._ready = False

    @classmethod
    def from_upstream(cls, upstream: UpstreamGateway) -> Gateway:
        """The gateway over a vault backend's client, own token and resolved layout."""
        tenancy: Tenancy
        if upstream.strategy == Strategy.NAMESPACE:
            tenancy = NamespaceTenancy("/".join(filter(None, (upstream.namespace, upstream.root))))
        else:
            tenancy = PrefixTenancy(
                upstream.root, kv_mount=upstream.kv_mount, namespace=upstream.namespace or ""
            )
        auth = upstream.auth
        return cls(upstream.client, tenancy, lambda: auth.token, on_refused=auth.refused)

    def __repr__(self) -> str:
        return f"Gateway({self.tenancy.strategy.value}, root={self.tenancy.root!r})"

    # -- tenant requests ---------------------------------------------------------------------

    async def send(
        self,
        tenant: str,
        method: str,
        placement: Placement,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """One tenant request upstream with the tenant's scoped token; a refused token is
        replaced once (revoked or expired upstream), a second refusal is the answer."""

        def call(token: str) -> Awaitable[UpstreamResponse]:
            return self.client.request(
                method,
                placement.path,
                token=token,
                namespace=placement.namespace or None,
                json=json,
                params=params,
                idempotent=idempotent,
                headers=headers,
            )

        return await self._as_tenant(tenant, call)

    async def send_raw(
        self,
        tenant: str,
        method: str,
        placement: Placement,
        *,
        content: bytes | None = None,
        content_type: str | None = None,
        idempotent: bool | None = None,
    ) -> RawResponse:
        """`send` for an endpoint that speaks bytes (`UpstreamClient.send_raw`)."""

        def call(token: str) -> Awaitable[RawResponse]:
            return self.client.send_raw(
                method,
                placement.path,
                token=token,
                namespace=placement.namespace or None,
                content=content,
                content_type=content_type,
                idempotent=idempotent,
            )

        return await self._as_tenant(tenant, call)

    async def _as_tenant(self, tenant: str, call: Callable[[str], Awaitable[_Sent]]) -> _Sent:
        """`call` with the tenant's scoped token, replaced once if the upstream refuses it."""
        token = await self.tokens.get(tenant)
        for last in (False, True):
            response = await call(token)
            if response.status != 403 or last:
                break
            token = await self.tokens.replace(tenant, token)
        if response.status == 403:
            # The upstream refused the tenant's own token for the tenant's own place: a
            # mapping or policy bug, or an operator's change upstream. Never widened here.
            logger.warning("upstream refused a tenant-scoped token (tenant %s)", tenant)
        return response

    # -- provisioning --------------------------------------------------------------------------

    async def _admin(
        self,
        method: str,
        path: str,
        *,
        namespace: str = "",
        json: Mapping[str, Any] | None = None,
        tolerate: tuple[int, ...] = (),
    ) -> UpstreamResponse:
        """A call with tenantvault's own token; a 4xx other than `tolerate` raises 502.

        A refusal of tenantvault's own request is no fault of the caller's: the upstream
        policy of tenantvault's token lacks something (README), or the token was revoked —
        then the auth service is told at once, to renew or log in again.
        """
        response = await self.client.request(
            method, path, token=self._service_token(), namespace=namespace or None, json=json
        )
        if response.ok or response.status in tolerate:
            return response
        if response.status == 403 and self._on_refused is not None:
            self._on_refused()
        logger.warning(
            "upstream refused tenantvault's own %s %s (%d)", method, path, response.status
        )
        raise BadGatewayError(
            f"the upstream refused tenantvault's own request ({response.status}); "
            "check the upstream policy of tenantvault's token"
        )

    async def _mount(
        self,
        namespace: str,
        path: str,
        kind: str,
        options: dict[str, str],
        *,
        shared: bool = False,
    ) -> None:
        """Enable a mount unless it exists. A `shared` mount (prefix strategy) may be the
        operator's to manage: a policy that does not let us create it is fine then."""
        response = await self._admin(
            "POST",
            f"sys/mounts/{path}",
            namespace=namespace,
            json={"type": kind, "options": options},
            tolerate=(400, 403) if shared else (400,),
        )
        if response.status == 400 and not any(_IN_USE in text for text in response.errors):
            response.raise_for_status()
        if kind == "kv" and response.ok:
            # Just enabled: OpenBao upgrades a new KV v2 mount for a moment; serve after it.
            await wait_for_kv_mount(
                lambda: self._admin(
                    "GET", f"{path}/config", namespace=namespace, tolerate=(400, 403, 404)
                )
            )

    async def start(self) -> None:
        """The root namespace (namespace strategy) or the shared mounts (prefix strategy)."""
        if self._ready:
            return
        tenancy = self.tenancy
        if isinstance(tenancy, NamespaceTenancy):
            parent = ""
            for segment in tenancy.root.split("/"):
                await self._create_namespace(parent, segment)
                parent = f"{parent}/{segment}" if parent else segment
        else:
            namespace = tenancy.operator_namespace
            await self._mount(namespace, tenancy.kv_mount, "kv", {"version": "2"}, shared=True)
            await self._mount(namespace, tenancy.transit_mount, "transit", {}, shared=True)
        self._ready = True

    async def _create_namespace(self, parent: str, name: str) -> None:
        path = f"{parent}/{name}" if parent else name
        exists = await self._admin(
            "GET", f"sys/namespaces/{name}", namespace=parent, tolerate=(404,)
        )
        if exists.ok:
            return
        for _ in range(_NAMESPACE_ATTEMPTS):
            created = await self._admin(
                "POST", f"sys/namespaces/{name}", namespace=parent, tolerate=(400,)
            )
            if created.ok:
                return
            await asyncio.sleep(_NAMESPACE_PAUSE_SECONDS)
        raise BackendUnavailableError(f"upstream namespace {path} could not be created")

    def on_create(
        self, inner: Callable[[str, str | None], Awaitable[None]]
    ) -> Callable[[str, str | None], Awaitable[None]]:
        """The tenant-creation hook (`TenantRegistry.on_create`): `inner`'s checks first,
        then the tenant's place upstream, before tenantvault records the tenant."""

        async def hook(tenant: str, uid: str | None) -> None:
            await inner(tenant, uid)
            if uid is None:
                await self.tenant_created(tenant)

        return hook

    async def tenant_created(self, tenant: str) -> None:
        """Give `tenant` its place upstream (idempotent: a retry after a failure finishes)."""
        await self.start()
        tenancy = self.tenancy
        namespace = tenancy.token_namespace(tenant)
        if isinstance(tenancy, NamespaceTenancy):
            await self._create_namespace(tenancy.root, namespace.rpartition("/")[2])
            await self._mount(namespace, tenancy.kv_mount, "kv", {"version": "2"})
            await self._mount(namespace, tenancy.transit_mount, "transit", {})
        name = tenancy.policy_name(tenant)
        await self._admin(
            "PUT",
            f"sys/policies/acl/{name}",
            namespace=namespace,
            json={"policy": tenancy.policy(tenant)},
        )
        await self._admin(
            "POST",
            f"auth/token/roles/{name}",
            namespace=namespace,
            json=self.tokens.role_settings(tenant),
        )
        await self.tokens.get(tenant)

    async def tenant_deleted(self, tenant: str) -> None:
        """Remove everything of `tenant` upstream: its access first, then its data."""
        await self.start()
        tenancy = self.tenancy
        namespace = tenancy.token_namespace(tenant)
        name = tenancy.policy_name(tenant)
        await self._admin("DELETE", f"sys/policies/acl/{name}", namespace=namespace)
        self.tokens.forget(tenant)
        if isinstance(tenancy, NamespaceTenancy):
            await self._delete_namespace(tenancy.root, namespace.rpartition("/")[2])
            return
        await self._admin("DELETE", f"auth/token/roles/{name}", namespace=namespace)
        await self.wipe_kv(tenant)
        await self.wipe_transit(tenant)

    async def _delete_namespace(self, parent: str, name: str) -> None:
        # OpenBao deletes a namespace in the background: wait until it is gone, so that a
        # tenant created again under the same id starts in a new, empty namespace.
        await self._admin("DELETE", f"sys/namespaces/{name}", namespace=parent)
        for _ in range(_NAMESPACE_ATTEMPTS):
            gone = await self._admin(
                "GET", f"sys/namespaces/{name}", namespace=parent, tolerate=(404,)
            )
            if gone.status == 404:
                return
            await asyncio.sleep(_NAMESPACE_PAUSE_SECONDS)
        raise BackendUnavailableError(f"upstream namespace {parent}/{name} is still deleting")

    # -- a tenant's upstream-served mounts (`_passthrough`, namespace strategy) --------------

    async def enable_mount(self, tenant: str, path: str, body: Mapping[str, Any]) -> None:
        """Enable a mount in the tenant's namespace; the upstream's refusal of the request
        (unknown type, bad options, path in use) is the caller's 400, with its text."""
        namespace = self.tenancy.token_namespace(tenant)
        # The tenant's policy again: a tenant made before upstream mounts existed gets the
        # policy that reaches them (idempotent, one write).
        await self._admin(
            "PUT",
            f"sys/policies/acl/{self.tenancy.policy_name(tenant)}",
            namespace=namespace,
            json={"policy": self.tenancy.policy(tenant)},
        )
        response = await self._admin(
            "POST",
            f"sys/mounts/{path.rstrip('/')}",
            namespace=namespace,
            json=body,
            tolerate=(400,),
        )
        if response.status == 400:
            errors = list(response.errors) or ["invalid request"]
            raise InvalidRequestError(errors[0], errors=errors)

    async def disable_mount(self, tenant: str, path: str) -> None:
        """Disable a mount in the tenant's namespace (its upstream data goes with it)."""
        await self._admin(
            "DELETE",
            f"sys/mounts/{path.rstrip('/')}",
            namespace=self.tenancy.token_namespace(tenant),
        )

    async def tune_mount(self, tenant: str, path: str, body: Mapping[str, Any]) -> None:
        """Tune a mount in the tenant's namespace; a refusal is the caller's 400."""
        response = await self._admin(
            "POST",
            f"sys/mounts/{path.rstrip('/')}/tune",
            namespace=self.tenancy.token_namespace(tenant),
            json=body,
            tolerate=(400,),
        )
        if response.status == 400:
            errors = list(response.errors) or ["invalid request"]
            raise InvalidRequestError(errors[0], errors=errors)

    # -- wiping a mount's data (mount disable, tenant deletion) ------------------------------

    async def wipe_kv(self, tenant: str) -> None:
        """Destroy every secret of the tenant's upstream `secret/` data."""
        tenancy = self.tenancy
        if isinstance(tenancy, NamespaceTenancy):
            await self._remount(tenant, tenancy.kv_mount, "kv", {"version": "2"})
            return
        await self._wipe_prefix(tenancy, tenant)

    async def wipe_transit(self, tenant: str) -> None:
        """Destroy every transit key of the tenant upstream."""
        tenancy = self.tenancy
        if isinstance(tenancy, NamespaceTenancy):
            await self._remount(tenant, tenancy.transit_mount, "transit", {})
            return
        namespace = tenancy.operator_namespace
        names = await self.list_shared_keys(tenancy)
        prefix = tenancy.key_prefix(tenant)
        for upstream_name in (name for name in names if name.startswith(prefix)):
            path = f"{tenancy.transit_mount}/keys/{upstream_name}"
            await self._admin(
                "POST", f"{path}/config", namespace=namespace, json={"deletion_allowed": True}
            )
            await self._admin("DELETE", path, namespace=namespace)

    async def list_shared_keys(self, tenancy: PrefixTenancy) -> list[str]:
        """Every key name of the shared transit mount (prefix strategy), read with
        tenantvault's own token: no tenant token may list the keys of other tenants."""
        return await self.client.list(
            f"{tenancy.transit_mount}/keys",
            token=self._service_token(),
            namespace=tenancy.operator_namespace or None,
        )

    async def _remount(self, tenant: str, path: str, kind: str, options: dict[str, str]) -> None:
        """Disable and enable a mount in the tenant's namespace: its data is gone."""
        namespace = self.tenancy.token_namespace(tenant)
        await self._admin("DELETE", f"sys/mounts/{path}", namespace=namespace)
        await self._mount(namespace, path, kind, options)

    async def _wipe_prefix(self, tenancy: PrefixTenancy, tenant: str) -> None:
        namespace = tenancy.operator_namespace
        token = self._service_token()
        base = f"{tenancy.kv_mount}/metadata/{tenancy.kv_base(tenant)}/"
        pending = [""]
        while pending:
            folder = pending.pop()
            for child in await self.client.list(base + folder, token=token, namespace=namespace):
                if child.endswith("/"):
                    pending.append(folder + child)
                else:
                    await self.client.delete(
                        base + folder + child, token=token, namespace=namespace
                    )
