"""The `kv` and `transit` engine types in gateway mode: a tenant's `secret/` (KV v2) and
`transit/` mounts are served by the upstream, every other mount by the embedded engine.

Registered in the mount table under the embedded types' names (`Gateway.engines`), so mount
tables, `sys/mounts` and the Core see the same types in every mode. Each route is the
embedded engine's route — same ACL path, capability, parameters and path validation — with
its handler forwarding upstream (`_forward`). Mounts of the root namespace, other paths and
KV v1 stay embedded: their records live behind the `Backend` protocol as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from tenantvault._exceptions import (
    CheckAndSetError,
    DecryptionError,
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._fields import get_int
from tenantvault._records import decode_record
from tenantvault._request import Operation, Response
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Route
from tenantvault.engines.kv import KVEngine
from tenantvault.engines.kv import _data_from as data_from
from tenantvault.engines.kv_v1 import KVType
from tenantvault.engines.transit import TransitEngine

# The embedded engines' own input checks, reused so both modes refuse the same input the
# same way (one helper per idea; they would be better exported by their packages).
from tenantvault.engines.transit._engine import _crypt_items as crypt_items
from tenantvault.engines.transit._engine import _refuse_nonce as refuse_nonce
from tenantvault.upstream._client import UpstreamResponse
from tenantvault.upstream._tenancy import Placement, PrefixTenancy
from tenantvault.upstream.engines._forward import MERGE_PATCH, Send, forwarded, raise_for
from tenantvault.upstream.engines._gateway import Gateway

__all__ = ["UpstreamKV", "UpstreamTransit"]

# The embedded KV engine's record of a mount's settings (see `engines/kv.py`), which the
# prefix strategy keeps too: the shared upstream mount has one config for every tenant.
_CONFIG_KEY: Final = "config"
# Mount settings that would have to change the shared upstream mount: refused there.
_NOT_EMULATED: Final = ("max_versions", "delete_version_after")
_WRITES: Final = frozenset({Operation.CREATE, Operation.UPDATE, Operation.PATCH})
# Transit sections that take `batch_input` (and so `partial_failure_response_code`).
_BATCHES: Final = frozenset({"encrypt", "decrypt", "rewrap", "hmac", "sign", "verify"})
# How OpenBao words a ciphertext that does not open (the embedded keyring's texts too).
_DECRYPTION_FAILURES: Final = ("invalid ciphertext", "cipher: message authentication failed")
# KV sections whose writes can be repeated without a second effect (same versions again).
_KV_IDEMPOTENT: Final = frozenset({"delete", "undelete", "destroy"})
# Transit sections that change nothing upstream (create-on-encrypt makes the same key twice
# at most once), so a retry after a lost connection is safe.
_TRANSIT_IDEMPOTENT: Final = frozenset(
    {"encrypt", "decrypt", "rewrap", "hmac", "sign", "verify", "datakey", "random", "hash"}
)


def _tenant_of(mount: Mount, path: str) -> str | None:
    """The tenant whose `path` mount this is, if the upstream serves it."""
    if mount.path != path or mount.storage.tenant == SYSTEM_TENANT:
        return None
    return mount.storage.tenant


def _pinned(mount: Mount, target: str, path: str) -> str | None:
    """Why a tenant's mount cannot move to `target` in gateway mode, or None."""
    if mount.storage.tenant == SYSTEM_TENANT or path not in (mount.path, target):
        return None
    return f"cannot remount {path} of a tenant: the upstream serves it at that path"


def _sender(gateway: Gateway, tenant: str, placement: Placement) -> Send:
    async def send(
        method: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, str] | None,
        idempotent: bool | None,
    ) -> UpstreamResponse:
        return await gateway.send(
            tenant,
            method,
            placement,
            json=body,
            params=query,
            idempotent=idempotent,
            headers=MERGE_PATCH if method == "PATCH" else None,
        )

    return send


def _check_kv_input(
    kv: KVEngine, section: str, operation: Operation, data: Mapping[str, Any]
) -> None:
    """The embedded engine's refusals the upstream would not make (P-5: OpenBao reads
    `cas: true` as cas=1 and "1" or 1.0 as 1; custom metadata values that are no strings
    it turns into strings), with the embedded engine's own checks and texts."""
    if section == "data":
        data_from(data)
        options = data.get("options")
        if isinstance(options, Mapping):
            get_int(options, "cas", strict=True)
    elif section == "metadata":
        get_int(data, "metadata_cas", strict=True)
        kv._metadata_changes(data, patch=operation is Operation.PATCH)


def _partial_failure_code(data: dict[str, Any]) -> list[str]:
    """A `partial_failure_response_code` outside 200-599 never goes upstream (OpenBao drops
    the connection trying to answer with it); as embedded, the answer keeps 400 and warns."""
    raw = data.get("partial_failure_response_code")
    if raw is None:
        return []
    code = get_int(data, "partial_failure_response_code", minimum=-(2**53)) or 0
    if 200 <= code <= 599:
        return []
    del data["partial_failure_response_code"]
    return [
        "invalid HTTP response code override from partial_failure_response_code, reverting to 400"
    ]


def _check_transit_input(section: str, data: Mapping[str, Any]) -> None:
    """The embedded engine's refusals the upstream would not make: a caller-chosen nonce
    (CVE-2023-4680; OpenBao still takes one for convergent keys) and malformed batches."""
    if section == "datakey":
        refuse_nonce(data)
    elif section == "encrypt":
        refuse_nonce(data)
        crypt_items(data, "plaintext", missing="missing plaintext to encrypt", empty_ok=True)
    elif section in ("decrypt", "rewrap"):
        crypt_items(
            data, "ciphertext", missing="missing ciphertext to decrypt", rewrap=section == "rewrap"
        )


async def _check_mount_cas(mount: Mount, section: str, data: Mapping[str, Any]) -> None:
    """The mount's `cas_required` / `metadata_cas_required` (prefix strategy), checked as
    the embedded engine checks them, before the write goes upstream; the key's own flags
    are the upstream's to check."""
    record = await mount.storage.read(_CONFIG_KEY)
    config = decode_record(record.value) if record is not None else {}
    if section == "data" and config.get("cas_required"):
        options = data.get("options")
        if not isinstance(options, Mapping) or options.get("cas") is None:
            raise CheckAndSetError("check-and-set parameter required for this call")
    if section == "metadata" and config.get("metadata_cas_required"):
        if data.get("metadata_cas") is None:
            raise CheckAndSetError("metadata check-and-set parameter required for this call")


class UpstreamKV:
    """The `kv` type: tenants' `secret/` (v2) upstream, the rest by the embedded `KVType`."""

    type: Final = "kv"

    def __init__(self, embedded: KVType, gateway: Gateway) -> None:
        self._embedded = embedded
        self._gateway = gateway

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        """The embedded type's options (the mount table is the same in every mode)."""
        return self._embedded.check_options(options)

    def _tenant(self, mount: Mount) -> str | None:
        if KVType.version(mount) != 2:
            return None
        return _tenant_of(mount, "secret/")

    def refuse_remount(self, mount: Mount, target: str) -> str | None:
        """A tenant's upstream-served `secret/` stays where the upstream keeps it; no other
        mount may take its place."""
        return _pinned(mount, target, "secret/")

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        """The embedded route, forwarded upstream when this is a tenant's `secret/` (v2)."""
        inner = self._embedded.route(operation, path, mount)
        tenant = self._tenant(mount)
        if tenant is None:
            return inner
        gateway = self._gateway
        section, _, sub = path.partition("/")
        emulated = isinstance(gateway.tenancy, PrefixTenancy)
        if emulated and section == "config":
            return self._emulated_config(inner, operation)
        placement = gateway.tenancy.kv(tenant, path)

        async def exists() -> bool:
            # Whether the key has metadata: Vault's existence check for data and metadata.
            target = gateway.tenancy.kv(tenant, f"metadata/{sub}")
            response = await gateway.send(tenant, "GET", target)
            if response.status == 404:
                return False
            raise_for(response)
            return True

        async def before(call: Call) -> None:
            _check_kv_input(self._embedded.v2, section, operation, call.data)
            if emulated:
                await _check_mount_cas(mount, section, call.data)

        return forwarded(
            inner,
            operation,
            _sender(gateway, tenant, placement),
            exists=exists,
            idempotent=True if section in _KV_IDEMPOTENT else None,
            before=before if operation in _WRITES else None,
        )

    @staticmethod
    def _emulated_config(inner: Route, operation: Operation) -> Route:
        """The prefix strategy's mount config: kept in tenantvault's records (the embedded
        route), `cas_required` and `metadata_cas_required` enforced before forwarding; the
        settings the shared upstream mount would have to hold are refused."""
        if operation is Operation.READ:
            return inner

        async def handler(call: Call) -> Response:
            for name in _NOT_EMULATED:
                value = call.data.get(name)
                if value not in (None, 0, "", "0", "0s"):
                    raise InvalidRequestError(
                        f"{name} cannot be set on the kv mount here: the upstream keeps every "
                        "tenant's secrets in one shared mount (prefix tenancy); set it per "
                        "secret with secret/metadata/<path>"
                    )
            return await inner.handler(call)

        return replace(inner, handler=handler)

    async def destroy(self, mount: Mount) -> None:
        """Mount disabled: its upstream data goes too, then the embedded engine's caches."""
        tenant = self._tenant(mount)
        if tenant is not None:
            await self._gateway.wipe_kv(tenant)
        await self._embedded.destroy(mount)


def _transit_errors(
    response: UpstreamResponse, section: str, upstream_path: str, tenant_path: str
) -> UpstreamResponse:
    """An upstream transit refusal as the embedded engine words it: no text names the key
    by its upstream name (prefix strategy)."""
    upstream_name = _key_segment(upstream_path.split("/")[1:])
    name = _key_segment(tenant_path.split("/"))
    if response.ok or response.body is None or not upstream_name or upstream_name == name:
        return response
    body = dict(response.body)
    body["errors"] = [text.replace(upstream_name, name) for text in response.errors]
    return UpstreamResponse(response.status, body, response.headers)


def _decryption_error(section: str, error: TenantVaultError) -> TenantVaultError:
    """A ciphertext that does not open is the one opaque `DecryptionError`, as embedded."""
    if section in ("decrypt", "rewrap") and isinstance(error, InvalidRequestError):
        if error.message.startswith(_DECRYPTION_FAILURES):
            return DecryptionError(error.message)
    return error


def _key_segment(segments: list[str]) -> str:
    """The key name in a transit path's segments (after `datakey/<kind>/` or the section)."""
    if len(segments) >= 3 and segments[0] == "datakey":
        return segments[2]
    return segments[1] if len(segments) >= 2 else ""


class UpstreamTransit:
    """The `transit` type: tenants' `transit/` upstream, the rest by the embedded engine."""

    type: Final = "transit"

    def __init__(self, embedded: TransitEngine, gateway: Gateway) -> None:
        self._embedded = embedded
        self._gateway = gateway

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        """The embedded type's options (the mount table is the same in every mode)."""
        return self._embedded.check_options(options)

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        """The embedded route, forwarded upstream when this is a tenant's `transit/`."""
        inner = self._embedded.route(operation, path, mount)
        tenant = _tenant_of(mount, "transit/")
        if tenant is None:
            return inner
        gateway = self._gateway
        tenancy = gateway.tenancy
        rest = path.rstrip("/")
        segments = rest.split("/")
        section = segments[0]
        if section == "keys" and len(segments) == 1:
            return self._list_route(inner, tenant)
        placement = tenancy.transit(tenant, rest)
        forward = _sender(gateway, tenant, placement)
        known: dict[str, bool] = {}

        async def exists() -> bool:
            key = tenancy.transit(tenant, f"keys/{segments[1]}")
            response = await gateway.send(tenant, "GET", key)
            if response.status != 404:
                raise_for(response)
            known["exists"] = response.status != 404
            return known["exists"]

        async def before(call: Call) -> None:
            _check_transit_input(section, call.data)
            # Create-on-encrypt only for callers the ACL grants `create` (as embedded); the
            # upstream token could create the key, so the Core's decision is enforced here.
            if section != "encrypt" or not inner.optional or inner.optional[0] in call.granted:
                return
            if not known.get("exists", False) and not await exists():
                raise InvalidRequestError("encryption key not found")

        def adjust(response: Response) -> Response:
            data = response.data
            if data is not None and isinstance(data.get("name"), str):
                data["name"] = tenancy.transit_name(tenant, data["name"]) or data["name"]
            return response

        async def send(
            method: str,
            body: Mapping[str, Any] | None,
            query: Mapping[str, str] | None,
            idempotent: bool | None,
        ) -> UpstreamResponse:
            response = await forward(method, body, query, idempotent)
            return _transit_errors(response, section, placement.path, rest)

        def translate(error: TenantVaultError) -> TenantVaultError:
            return _decryption_error(section, error)

        return forwarded(
            inner,
            operation,
            send,
            exists=exists if section == "encrypt" else None,
            idempotent=True if section in _TRANSIT_IDEMPOTENT else None,
            adjust=adjust if isinstance(tenancy, PrefixTenancy) else None,
            before=before,
            translate=translate,
            prepare=_partial_failure_code if section in _BATCHES else None,
        )

    def _list_route(self, inner: Route, tenant: str) -> Route:
        """`LIST transit/keys`: in the prefix strategy the shared mount's listing, which no
        tenant token may read, filtered to the tenant's names by tenantvault's own token."""
        gateway = self._gateway
        tenancy = gateway.tenancy

        async def handler(call: Call) -> Response:
            if isinstance(tenancy, PrefixTenancy):
                names = [
                    name
                    for name in await gateway.list_shared_keys(tenancy)
                    if tenancy.transit_name(tenant, name) is not None
                ]
                keys = [tenancy.transit_name(tenant, name) for name in names]
            else:
                placement = tenancy.transit(tenant, "keys")
                response = await gateway.send(tenant, "LIST", placement)
                if response.status == 404:
                    raise NotFoundError()
                raise_for(response)
                keys = response.data.get("keys") or []
            if not keys:
                raise NotFoundError()
            return Response(data={"keys": keys})

        return replace(inner, handler=handler)

    def refuse_remount(self, mount: Mount, target: str) -> str | None:
        """A tenant's upstream-served `transit/` stays where the upstream keeps it."""
        return _pinned(mount, target, "transit/")

    async def destroy(self, mount: Mount) -> None:
        """Mount disabled: its upstream keys go too, then the embedded engine's caches."""
        tenant = _tenant_of(mount, "transit/")
        if tenant is not None:
            await self._gateway.wipe_transit(tenant)
        await self._embedded.destroy(mount)
