"""The async Python API: `tenantvault.open(url)` and typed helpers that all go through the Core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tenantvault import _b64
from tenantvault._clock import Clock, system_clock
from tenantvault._core import Core
from tenantvault._exceptions import ClosedError, ConfigurationError, NotFoundError
from tenantvault._models import (
    BatchResult,
    DataKey,
    KeyInfo,
    KeyMetadata,
    KVConfig,
    Secret,
    TenantInfo,
    TokenInfo,
    TokenLookup,
    VersionInfo,
)
from tenantvault._remote import RemoteTransport, is_remote_url
from tenantvault._request import Operation, Request, Response
from tenantvault._wrapping import WrapInfo, parse_wrap_ttl
from tenantvault.audit import AuditBroker
from tenantvault.backends import Backend, open_backend

__all__ = ["KV", "Policies", "Tenant", "TenantVault", "Tokens", "Transit", "Wrapping", "open"]


_Send = Callable[[Request], Awaitable[Response]]


class _Caller:
    """Sends requests through the Core as one principal (a token, or the operator).

    It holds one bound entry point of the Core and never the Core itself: `Core.handle` for a
    token, `Core.handle_as_operator` only in the handle that opened the store. So no attribute
    of a `with_token` handle, or of anything it holds, leads to the Core, its stores, its
    backend or the operator's entry point; the line is drawn in `tests/unit/test_client_privacy.py`.
    """

    __slots__ = ("_operator", "_send", "_token")

    def __init__(self, send: _Send, token: str | None, *, operator: bool) -> None:
        self._send = send
        self._token = token
        self._operator = operator

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'operator' if self._operator else 'token'}>"

    async def call(
        self,
        operation: Operation,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        namespace: str | None = None,
        wrap_ttl: str | int | None = None,
    ) -> Response:
        """Send one request as this caller's principal; `wrap_ttl` asks for its response
        wrapped ("5m" or seconds, as X-Vault-Wrap-TTL)."""
        return await self._send(
            Request(
                operation=operation,
                path=path,
                data=data,
                token=self._token,
                namespace=namespace,
                client_address="python",
                wrap_ttl_seconds=parse_wrap_ttl(wrap_ttl),
            )
        )


def _mount_prefix(mount: str) -> str:
    return mount.strip("/") + "/"


class _AtMount:
    """A facade over one mount of one tenant: each call goes to `<mount>/<path>` there."""

    def __init__(self, caller: _Caller, tenant: str | None, mount: str) -> None:
        self._caller = caller
        self._tenant = tenant
        self._mount = _mount_prefix(mount)

    async def _call(
        self, operation: Operation, path: str, data: Mapping[str, Any] | None = None
    ) -> Response:
        return await self._caller.call(
            operation, f"{self._mount}{path}", data, namespace=self._tenant
        )


class KV(_AtMount):
    """KV v2 at a mount of one tenant (`secret/` for `tenant.kv`)."""

    async def put(
        self,
        path: str,
        data: Mapping[str, Any],
        *,
        cas: int | None = None,
    ) -> VersionInfo:
        """Write a new version; `cas=0` only creates, `cas=N` only if N is the current version."""
        return await self._new_version(Operation.UPDATE, path, data, cas)

    async def _new_version(
        self, operation: Operation, path: str, data: Mapping[str, Any], cas: int | None
    ) -> VersionInfo:
        body: dict[str, Any] = {"data": dict(data)}
        if cas is not None:
            body["options"] = {"cas": cas}
        response = await self._call(operation, f"data/{path}", body)
        return VersionInfo.from_data(response.data or {})

    async def get(self, path: str, *, version: int = 0) -> Secret:
        """The latest version, or `version`; `NotFoundError` if absent, deleted or destroyed."""
        response = await self._call(
            Operation.READ, f"data/{path}", {"version": str(version)} if version else None
        )
        data = response.data or {}
        return Secret(data=data["data"], metadata=VersionInfo.from_data(data["metadata"]))

    async def patch(
        self,
        path: str,
        data: Mapping[str, Any],
        *,
        cas: int | None = None,
    ) -> VersionInfo:
        """Merge `data` into the latest version (JSON merge patch: None removes a field)."""
        return await self._new_version(Operation.PATCH, path, data, cas)

    async def subkeys(self, path: str, *, version: int = 0, depth: int = 0) -> dict[str, Any]:
        """The secret's keys without its values (`depth` 0: every level)."""
        # Sent only when set, and as the strings of a query, so that a policy's parameter
        # constraints judge this call exactly as they judge the same HTTP request.
        query = {name: str(value) for name, value in (("version", version), ("depth", depth))}
        response = await self._call(
            Operation.READ,
            f"subkeys/{path}",
            {name: value for name, value in query.items() if value != "0"} or None,
        )
        return dict((response.data or {})["subkeys"] or {})

    async def delete(self, path: str, *, versions: list[int] | None = None) -> None:
        """Soft-delete the latest version, or the given `versions` (undelete can restore)."""
        if versions is None:
            await self._call(Operation.DELETE, f"data/{path}")
        else:
            await self._call(Operation.UPDATE, f"delete/{path}", {"versions": versions})

    async def undelete(self, path: str, *, versions: list[int]) -> None:
        """Restore soft-deleted `versions` (not destroyed ones)."""
        await self._call(Operation.UPDATE, f"undelete/{path}", {"versions": versions})

    async def destroy(self, path: str, *, versions: list[int]) -> None:
        """Remove the data of `versions` for good."""
        await self._call(Operation.UPDATE, f"destroy/{path}", {"versions": versions})

    async def list(self, path: str = "") -> list[str]:
        """Keys directly under `path`; folders end in '/'. Empty list if there are none."""
        directory = path if not path or path.endswith("/") else path + "/"
        try:
            response = await self._call(Operation.LIST, f"metadata/{directory}")
        except NotFoundError:
            return []
        return list((response.data or {})["keys"])

    async def metadata(self, path: str) -> KeyMetadata:
        """The key's metadata and the state of each version; `NotFoundError` if absent."""
        response = await self._call(Operation.READ, f"metadata/{path}")
        return KeyMetadata.from_data(response.data or {})

    async def write_metadata(
        self,
        path: str,
        *,
        max_versions: int | None = None,
        cas_required: bool | None = None,
        delete_version_after: str | int | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Set the given settings of the key; `custom_metadata` replaces its whole map."""
        await self._call(
            Operation.UPDATE,
            f"metadata/{path}",
            _settings(max_versions, cas_required, delete_version_after, custom_metadata),
        )

    async def patch_metadata(
        self,
        path: str,
        *,
        max_versions: int | None = None,
        cas_required: bool | None = None,
        delete_version_after: str | int | None = None,
        custom_metadata: Mapping[str, str | None] | None = None,
    ) -> None:
        """Change only the given settings (`custom_metadata` merges; None removes a key)."""
        await self._call(
            Operation.PATCH,
            f"metadata/{path}",
            _settings(max_versions, cas_required, delete_version_after, custom_metadata),
        )

    async def delete_metadata(self, path: str) -> None:
        """Delete the key with all its versions."""
        await self._call(Operation.DELETE, f"metadata/{path}")

    async def config(self) -> KVConfig:
        """The mount's settings (versions kept, check-and-set required, deletion delay)."""
        return KVConfig.from_data((await self._call(Operation.READ, "config")).data or {})

    async def configure(
        self,
        *,
        max_versions: int | None = None,
        cas_required: bool | None = None,
        delete_version_after: str | int | None = None,
    ) -> None:
        """Set the mount's defaults for every key (versions kept, cas, deletion delay)."""
        await self._call(
            Operation.UPDATE,
            "config",
            _settings(max_versions, cas_required, delete_version_after, None),
        )


def _settings(
    max_versions: int | None,
    cas_required: bool | None,
    delete_version_after: str | int | None,
    custom_metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if max_versions is not None:
        body["max_versions"] = max_versions
    if cas_required is not None:
        body["cas_required"] = cas_required
    if delete_version_after is not None:
        body["delete_version_after"] = delete_version_after
    if custom_metadata is not None:
        body["custom_metadata"] = dict(custom_metadata)
    return body


class Policies:
    """ACL policies of one tenant (or of the root namespace)."""

    def __init__(self, caller: _Caller, tenant: str | None) -> None:
        self._caller = caller
        self._tenant = tenant

    async def write(self, name: str, policy: str) -> None:
        """Create or replace the policy `name` (HCL or JSON)."""
        await self._caller.call(
            Operation.UPDATE, f"sys/policies/acl/{name}", {"policy": policy}, namespace=self._tenant
        )

    async def read(self, name: str) -> str:
        """The policy's text as written; `NotFoundError` if there is none."""
        response = await self._caller.call(
            Operation.READ, f"sys/policies/acl/{name}", namespace=self._tenant
        )
        return str((response.data or {})["policy"])

    async def list(self) -> list[str]:
        """The names of the policies here."""
        response = await self._caller.call(
            Operation.LIST, "sys/policies/acl", namespace=self._tenant
        )
        return list((response.data or {})["keys"])

    async def delete(self, name: str) -> None:
        """Delete the policy `name`."""
        await self._caller.call(
            Operation.DELETE, f"sys/policies/acl/{name}", namespace=self._tenant
        )


class Tokens:
    """Tokens of one tenant (or of the root namespace)."""

    def __init__(self, caller: _Caller, tenant: str | None) -> None:
        self._caller = caller
        self._tenant = tenant

    async def create(
        self,
        *,
        policies: list[str] | None = None,
        ttl: str | int | None = None,
        explicit_max_ttl: str | int | None = None,
        renewable: bool = True,
        num_uses: int = 0,
        meta: Mapping[str, str] | None = None,
        orphan: bool = False,
        no_default_policy: bool = False,
        display_name: str | None = None,
    ) -> TokenInfo:
        """A new token in this tenant: a child of the caller's token, unless `orphan`."""
        body: dict[str, Any] = {
            "renewable": renewable,
            "num_uses": num_uses,
            "no_default_policy": no_default_policy,
        }
        for name, value in (
            ("policies", policies),
            ("ttl", ttl),
            ("explicit_max_ttl", explicit_max_ttl),
            ("display_name", display_name),
        ):
            if value is not None:
                body[name] = value
        if meta is not None:
            body["meta"] = dict(meta)
        path = "auth/token/create-orphan" if orphan else "auth/token/create"
        response = await self._caller.call(Operation.UPDATE, path, body, namespace=self._tenant)
        return TokenInfo.from_auth(response.auth or {})

    async def lookup(self, token: str) -> TokenLookup:
        """What the server knows about `token` (its TTL, policies, metadata…)."""
        response = await self._caller.call(
            Operation.UPDATE, "auth/token/lookup", {"token": token}, namespace=self._tenant
        )
        return TokenLookup.from_data(response.data or {})

    async def lookup_accessor(self, accessor: str) -> TokenLookup:
        """Look a token up by its accessor; `id` stays empty (the accessor never reveals it)."""
        response = await self._caller.call(
            Operation.UPDATE,
            "auth/token/lookup-accessor",
            {"accessor": accessor},
            namespace=self._tenant,
        )
        return TokenLookup.from_data(response.data or {})

    async def renew(self, token: str, *, increment: str | int | None = None) -> TokenInfo:
        """Extend `token`'s lease (by `increment`, or its TTL); the renewed `auth` block."""
        body: dict[str, Any] = {"token": token}
        if increment is not None:
            body["increment"] = increment
        response = await self._caller.call(
            Operation.UPDATE, "auth/token/renew", body, namespace=self._tenant
        )
        return TokenInfo.from_auth(response.auth or {})

    async def revoke(self, token: str) -> None:
        """Revoke `token` and every token created from it."""
        await self._caller.call(
            Operation.UPDATE, "auth/token/revoke", {"token": token}, namespace=self._tenant
        )

    async def revoke_accessor(self, accessor: str) -> None:
        """Revoke the token with this accessor, and its children."""
        await self._caller.call(
            Operation.UPDATE,
            "auth/token/revoke-accessor",
            {"accessor": accessor},
            namespace=self._tenant,
        )


class Transit(_AtMount):
    """Transit (encryption as a service) at a mount of one tenant (`transit/` for
    `tenant.transit`).

    Bytes in, bytes out: this class does the base64 that Vault's API needs. Ciphertexts are
    Vault's `vault:v<N>:...` strings.
    """

    async def _write(self, path: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return dict((await self._call(Operation.UPDATE, path, data)).data or {})

    # -- keys ------------------------------------------------------------------------------

    async def create_key(
        self,
        name: str,
        *,
        key_type: str | None = None,
        derived: bool | None = None,
        convergent_encryption: bool | None = None,
        auto_rotate_period: str | int | None = None,
        key_size: int | None = None,
    ) -> KeyInfo:
        """Create the key (an existing key is returned unchanged); its description.

        Unset options take the server's defaults (`aes256-gcm96`, not derived) and are not
        sent, so a policy's parameter constraints see what HTTP would send.
        """
        options = {
            "type": key_type,
            "derived": derived,
            "convergent_encryption": convergent_encryption,
            "auto_rotate_period": auto_rotate_period,
            "key_size": key_size,
        }
        body = {option: value for option, value in options.items() if value is not None}
        return KeyInfo.from_data(await self._write(f"keys/{name}", body))

    async def read_key(self, name: str) -> KeyInfo:
        """The key's description (versions, settings; never key material)."""
        return KeyInfo.from_data((await self._call(Operation.READ, f"keys/{name}")).data or {})

    async def list_keys(self) -> list[str]:
        """The transit keys' names; empty if there are none."""
        try:
            response = await self._call(Operation.LIST, "keys")
        except NotFoundError:
            return []
        return list((response.data or {})["keys"])

    async def configure_key(
        self,
        name: str,
        *,
        min_decryption_version: int | None = None,
        min_encryption_version: int | None = None,
        deletion_allowed: bool | None = None,
        auto_rotate_period: str | int | None = None,
    ) -> KeyInfo:
        """Change the key's settings (unset ones are kept); its description afterwards."""
        body = {
            field_name: value
            for field_name, value in (
                ("min_decryption_version", min_decryption_version),
                ("min_encryption_version", min_encryption_version),
                ("deletion_allowed", deletion_allowed),
                ("auto_rotate_period", auto_rotate_period),
            )
            if value is not None
        }
        return KeyInfo.from_data(await self._write(f"keys/{name}/config", body))

    async def rotate_key(self, name: str) -> KeyInfo:
        """Add a new key version; new encryptions use it, older ciphertexts still decrypt."""
        return KeyInfo.from_data(await self._write(f"keys/{name}/rotate", {}))

    async def delete_key(self, name: str) -> None:
        """Delete the key for good (only once `deletion_allowed` is set)."""
        await self._call(Operation.DELETE, f"keys/{name}")

    # -- data ------------------------------------------------------------------------------

    @staticmethod
    def _options(
        context: bytes | None, associated_data: bytes | None, key_version: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if context is not None:
            body["context"] = _b64.encode(context)
        if associated_data is not None:
            body["associated_data"] = _b64.encode(associated_data)
        if key_version is not None:
            body["key_version"] = key_version
        return body

    async def encrypt(
        self,
        name: str,
        plaintext: bytes,
        *,
        context: bytes | None = None,
        associated_data: bytes | None = None,
        key_version: int | None = None,
    ) -> str:
        """`vault:v<N>:...`; creates the key first if it is missing and the caller may."""
        body = {
            "plaintext": _b64.encode(plaintext),
            **self._options(context, associated_data, key_version),
        }
        return str((await self._write(f"encrypt/{name}", body))["ciphertext"])

    async def decrypt(
        self,
        name: str,
        ciphertext: str,
        *,
        context: bytes | None = None,
        associated_data: bytes | None = None,
    ) -> bytes:
        """The plaintext; `DecryptionError` (400) for anything that cannot be opened."""
        body = {"ciphertext": ciphertext, **self._options(context, associated_data, None)}
        return _b64.decode((await self._write(f"decrypt/{name}", body))["plaintext"])

    async def rewrap(
        self,
        name: str,
        ciphertext: str,
        *,
        context: bytes | None = None,
        key_version: int | None = None,
    ) -> str:
        """The same plaintext under the latest (or `key_version`) version; never revealed."""
        body = {"ciphertext": ciphertext, **self._options(context, None, key_version)}
        return str((await self._write(f"rewrap/{name}", body))["ciphertext"])

    async def _batch(
        self, path: str, items: list[dict[str, Any]], *, decode: bool
    ) -> list[BatchResult]:
        response = await self._call(Operation.UPDATE, path, {"batch_input": items})
        results: list[BatchResult] = []
        for item in (response.data or {})["batch_results"]:
            error = item.get("error") or None
            value: str | bytes | None = None
            if error is None:
                value = _b64.decode(item["plaintext"]) if decode else item["ciphertext"]
            results.append(
                BatchResult(
                    value=value,
                    key_version=item.get("key_version"),
                    error=error,
                    reference=item.get("reference", ""),
                )
            )
        return results

    async def encrypt_batch(
        self,
        name: str,
        plaintexts: Sequence[bytes],
        *,
        contexts: Sequence[bytes] | None = None,
    ) -> list[BatchResult]:
        """Encrypt many in one request; results in input order, failures per item."""
        items: list[dict[str, Any]] = [{"plaintext": _b64.encode(p)} for p in plaintexts]
        for item, context in zip(items, contexts or [b""] * len(items), strict=True):
            if contexts is not None:
                item["context"] = _b64.encode(context)
        return await self._batch(f"encrypt/{name}", items, decode=False)

    async def decrypt_batch(
        self,
        name: str,
        ciphertexts: Sequence[str],
        *,
        contexts: Sequence[bytes] | None = None,
    ) -> list[BatchResult]:
        """Decrypt many in one request; `value` holds the plaintext bytes of each success."""
        items: list[dict[str, Any]] = [{"ciphertext": c} for c in ciphertexts]
        for item, context in zip(items, contexts or [b""] * len(items), strict=True):
            if contexts is not None:
                item["context"] = _b64.encode(context)
        return await self._batch(f"decrypt/{name}", items, decode=True)

    async def datakey(
        self, name: str, *, bits: int = 256, wrapped: bool = False, context: bytes | None = None
    ) -> DataKey:
        """A fresh random key of `bits` (128, 256, 512), encrypted under `name`."""
        kind = "wrapped" if wrapped else "plaintext"
        body = {"bits": bits, **self._options(context, None, None)}
        data = await self._write(f"datakey/{kind}/{name}", body)
        plaintext = data.get("plaintext")
        return DataKey(
            ciphertext=data["ciphertext"],
            key_version=data["key_version"],
            plaintext=_b64.decode(plaintext) if plaintext is not None else None,
        )

    async def hmac(
        self,
        name: str,
        data: bytes,
        *,
        algorithm: str = "sha2-256",
        key_version: int | None = None,
    ) -> str:
        """The HMAC `vault:v<N>:...` of `data` under the key (`algorithm`: sha2-256…)."""
        body = {
            "input": _b64.encode(data),
            "algorithm": algorithm,
            **self._options(None, None, key_version),
        }
        return str((await self._write(f"hmac/{name}", body))["hmac"])

    async def verify_hmac(
        self, name: str, data: bytes, hmac: str, *, algorithm: str = "sha2-256"
    ) -> bool:
        """Whether `hmac` is `data`'s HMAC under the key."""
        body = {"input": _b64.encode(data), "hmac": hmac, "algorithm": algorithm}
        return bool((await self._write(f"verify/{name}", body))["valid"])

    async def sign(
        self,
        name: str,
        data: bytes,
        *,
        context: bytes | None = None,
        key_version: int | None = None,
    ) -> str:
        """An Ed25519 signature `vault:v<N>:...` of `data`."""
        body = {"input": _b64.encode(data), **self._options(context, None, key_version)}
        return str((await self._write(f"sign/{name}", body))["signature"])

    async def verify(
        self, name: str, data: bytes, signature: str, *, context: bytes | None = None
    ) -> bool:
        """Whether `signature` is a valid signature of `data` under the key."""
        body = {
            "input": _b64.encode(data),
            "signature": signature,
            **self._options(context, None, None),
        }
        return bool((await self._write(f"verify/{name}", body))["valid"])

    async def random(self, size: int = 32) -> bytes:
        """`size` random bytes from the server's CSPRNG."""
        data = await self._write("random", {"bytes": size})
        return _b64.decode(data["random_bytes"])


@dataclass(frozen=True, slots=True)
class MountInfo:
    """One secrets engine mount, as `sys/mounts` describes it."""

    path: str
    type: str
    description: str
    accessor: str
    uuid: str
    options: dict[str, str]
    default_lease_ttl: int
    max_lease_ttl: int

    @classmethod
    def from_data(cls, path: str, data: Mapping[str, Any]) -> MountInfo:
        config = data.get("config") or {}
        return cls(
            path=path,
            type=data["type"],
            description=data.get("description", ""),
            accessor=data.get("accessor", ""),
            uuid=data.get("uuid", ""),
            options=dict(data.get("options") or {}),
            default_lease_ttl=int(config.get("default_lease_ttl", 0)),
            max_lease_ttl=int(config.get("max_lease_ttl", 0)),
        )


class Mounts:
    """The tenant's mount table (`sys/mounts`): `bao secrets enable|disable|list|tune`."""

    def __init__(self, caller: _Caller, tenant: str | None) -> None:
        self._caller = caller
        self._tenant = tenant

    async def _call(
        self, operation: Operation, path: str, data: Mapping[str, Any] | None = None
    ) -> Response:
        return await self._caller.call(operation, path, data, namespace=self._tenant)

    async def list(self) -> dict[str, MountInfo]:
        """Every mount by path ('secret/', …), `sys/` included as Vault lists it."""
        data = (await self._call(Operation.READ, "sys/mounts")).data or {}
        return {path: MountInfo.from_data(path, info) for path, info in data.items()}

    async def read(self, path: str) -> MountInfo:
        prefix = _mount_prefix(path)
        data = (await self._call(Operation.READ, f"sys/mounts/{prefix[:-1]}")).data or {}
        return MountInfo.from_data(prefix, data)

    async def enable(
        self,
        path: str,
        engine_type: str,
        *,
        description: str = "",
        version: int | None = None,
        default_lease_ttl: str | int | None = None,
        max_lease_ttl: str | int | None = None,
    ) -> None:
        """Mount `engine_type` ('kv', 'kv-v2', 'transit') at `path`; `version` for kv."""
        body: dict[str, Any] = {"type": engine_type, "description": description}
        if version is not None:
            body["options"] = {"version": str(version)}
        config = {
            name: value
            for name, value in (
                ("default_lease_ttl", default_lease_ttl),
                ("max_lease_ttl", max_lease_ttl),
            )
            if value is not None
        }
        if config:
            body["config"] = config
        await self._call(Operation.UPDATE, f"sys/mounts/{_mount_prefix(path)[:-1]}", body)

    async def disable(self, path: str) -> None:
        """Unmount `path`: its data and its key are destroyed, irrecoverably."""
        await self._call(Operation.DELETE, f"sys/mounts/{_mount_prefix(path)[:-1]}")

    async def tune(
        self,
        path: str,
        *,
        description: str | None = None,
        default_lease_ttl: str | int | None = None,
        max_lease_ttl: str | int | None = None,
        version: int | None = None,
    ) -> Sequence[str]:
        """Change a mount's settings; `version=2` upgrades kv v1 (`bao kv enable-versioning`).
        Returns Vault's warnings (the upgrade has one)."""
        body: dict[str, Any] = {}
        for name, value in (
            ("description", description),
            ("default_lease_ttl", default_lease_ttl),
            ("max_lease_ttl", max_lease_ttl),
        ):
            if value is not None:
                body[name] = value
        if version is not None:
            body["options"] = {"version": str(version)}
        response = await self._call(
            Operation.UPDATE, f"sys/mounts/{_mount_prefix(path)[:-1]}/tune", body
        )
        return list(response.warnings or [])


class KVv1(_AtMount):
    """KV v1 (one unversioned value per path) at a mount (`Tenant.kv1_at`)."""

    async def put(self, path: str, data: Mapping[str, Any]) -> None:
        await self._call(Operation.UPDATE, path, data)

    async def get(self, path: str) -> dict[str, Any]:
        return dict((await self._call(Operation.READ, path)).data or {})

    async def delete(self, path: str) -> None:
        await self._call(Operation.DELETE, path)

    async def list(self, path: str = "") -> list[str]:
        """The keys under `path` ('' for the mount root); [] if there are none."""
        try:
            response = await self._call(Operation.LIST, path)
        except NotFoundError:
            return []
        return list((response.data or {}).get("keys", []))


class Wrapping:
    """Response wrapping in one tenant: wrap data, look up, unwrap and rewrap tokens.

    Any other call can be wrapped too: `TenantVault.request(..., wrap_ttl="5m")`.
    """

    def __init__(self, caller: _Caller, tenant: str | None) -> None:
        self._caller = caller
        self._tenant = tenant

    async def wrap(self, data: Mapping[str, Any], *, ttl: str | int) -> WrapInfo:
        """Wrap `data` in a single-use token that lives `ttl` ("5m", or seconds)."""
        response = await self._caller.call(
            Operation.UPDATE, "sys/wrapping/wrap", data, namespace=self._tenant, wrap_ttl=ttl
        )
        return WrapInfo.from_data(response.wrap_info or {})

    async def lookup(self, token: str) -> dict[str, Any]:
        """A wrapping token's creation_path, creation_time and creation_ttl (not its use)."""
        response = await self._caller.call(
            Operation.UPDATE, "sys/wrapping/lookup", {"token": token}, namespace=self._tenant
        )
        return dict(response.data or {})

    async def unwrap(self, token: str | None = None) -> Response:
        """The response wrapped in `token`, once; the token is used up. Without `token` (or
        with the handle's own token) the handle's token is the wrapping token: the tool
        server's `tv.with_token(wrapping_token)`."""
        # Vault's rule: never the same token as credential and in the body (the credential's
        # use would leave the body's lookup nothing), so the handle's own goes only once.
        own = token is None or token == self._caller._token
        return await self._caller.call(
            Operation.UPDATE,
            "sys/wrapping/unwrap",
            None if own else {"token": token},
            namespace=self._tenant,
        )

    async def rewrap(self, token: str) -> WrapInfo:
        """The same wrapped response under a new token; `token` is used up."""
        response = await self._caller.call(
            Operation.UPDATE, "sys/wrapping/rewrap", {"token": token}, namespace=self._tenant
        )
        return WrapInfo.from_data(response.wrap_info or {})


class Tenant:
    """One tenant's secrets space, seen by one principal."""

    def __init__(self, caller: _Caller, tenant: str | None) -> None:
        self.id = tenant
        self.kv = KV(caller, tenant, "secret")
        self.transit = Transit(caller, tenant, "transit")
        self.policies = Policies(caller, tenant)
        self.tokens = Tokens(caller, tenant)
        self.wrapping = Wrapping(caller, tenant)

    def __repr__(self) -> str:
        return f"<Tenant {self.id!r}>"

    # Mounts other than `secret/` and `transit/` (issue 9): the same helpers at any path.

    @property
    def mounts(self) -> Mounts:
        """This namespace's mount table: list, read, enable, disable, tune."""
        return Mounts(self.kv._caller, self.id)

    def kv_at(self, mount: str) -> KV:
        """KV v2 at `mount` (e.g. 'apps/kv'); `tenant.kv` is `kv_at('secret')`."""
        return KV(self.kv._caller, self.id, mount)

    def kv1_at(self, mount: str) -> KVv1:
        """KV v1 at `mount`."""
        return KVv1(self.kv._caller, self.id, mount)

    def transit_at(self, mount: str) -> Transit:
        """Transit at `mount`; `tenant.transit` is `transit_at('transit')`."""
        return Transit(self.kv._caller, self.id, mount)


class TenantVault:
    """An open tenantvault: one Core over one Backend, used as one principal.

    The handle `open()` returns acts as the operator and owns the Core (`tenantvault.testing`
    reaches it for tests). A `with_token` handle holds only the Core's `handle` entry point:
    nothing it holds leads to the Core, a store, the backend or the operator's entry point.
    """

    def __init__(self, core: Core, *, owns_core: bool = True) -> None:
        """The operator's handle on a started `core` (`open()` builds one for you)."""
        self._core: Core | None = core
        self._backend_name = core.backend.name
        self._handle: _Send = core.handle
        self._caller = _Caller(core.handle_as_operator, None, operator=True)
        self._owns_core = owns_core
        self._closed = False
        self._on_close: Callable[[], Awaitable[None]] | None = None

    @classmethod
    def _scoped(
        cls,
        handle: _Send,
        token: str,
        backend_name: str,
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> TenantVault:
        """A handle acting as the holder of `token` that holds no Core (see `with_token`);
        `on_close` is what its `aclose()` releases (the remote transport of `open("https://…")`).
        """
        scoped = cls.__new__(cls)
        scoped._core = None
        scoped._backend_name = backend_name
        scoped._handle = handle
        scoped._caller = _Caller(handle, token, operator=False)
        scoped._owns_core = False
        scoped._closed = False
        scoped._on_close = on_close
        return scoped

    def __repr__(self) -> str:
        return f"<TenantVault backend={self._backend_name}>"

    async def __aenter__(self) -> TenantVault:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the handle; the handle `open()` returned also closes the Core and backend."""
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            await self._on_close()
        if self._owns_core and self._core is not None:
            await self._core.aclose()
            await self._core.backend.aclose()

    def _check(self) -> None:
        if self._closed:
            raise ClosedError("tenantvault is closed")

    def tenant(self, tenant: str) -> Tenant:
        """A tenant's space. With a tenant token, only its own tenant answers (others: 403)."""
        self._check()
        return Tenant(self._caller, tenant)

    @property
    def root(self) -> Tenant:
        """The root namespace (tokens and policies that live outside every tenant)."""
        return Tenant(self._caller, None)

    def with_token(self, token: str) -> TenantVault:
        """Act as the holder of `token`, with exactly the checks any HTTP caller gets."""
        self._check()
        return TenantVault._scoped(self._handle, token, self._backend_name)

    async def create_tenant(
        self, tenant: str, *, custom_metadata: Mapping[str, str] | None = None
    ) -> TenantInfo:
        """Create a tenant (an existing one is returned unchanged); its description."""
        body = {"custom_metadata": dict(custom_metadata)} if custom_metadata else None
        response = await self._caller.call(Operation.UPDATE, f"sys/namespaces/{tenant}", body)
        return TenantInfo.from_data(response.data or {})

    async def read_tenant(self, tenant: str) -> TenantInfo:
        """A tenant's description; `NotFoundError` if there is no such tenant."""
        response = await self._caller.call(Operation.READ, f"sys/namespaces/{tenant}")
        return TenantInfo.from_data(response.data or {})

    async def list_tenants(self) -> list[str]:
        """The tenants' names; empty if there are none."""
        try:
            response = await self._caller.call(Operation.LIST, "sys/namespaces")
        except NotFoundError:
            return []
        return [key.rstrip("/") for key in (response.data or {})["keys"]]

    async def delete_tenant(self, tenant: str) -> None:
        """Delete a tenant: revoke its tokens and destroy its data (unrecoverable)."""
        await self._caller.call(Operation.DELETE, f"sys/namespaces/{tenant}")

    async def request(
        self,
        operation: Operation | str,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        namespace: str | None = None,
        wrap_ttl: str | int | None = None,
    ) -> Response:
        """Any Vault API request by path, e.g. `request("read", "secret/config", namespace=t)`.

        With `wrap_ttl` ("5m", or seconds) the response comes back wrapped: its `wrap_info`
        holds a single-use token that `Tenant.wrapping.unwrap` turns back into it.
        """
        self._check()
        return await self._caller.call(
            Operation(operation), path, data, namespace=namespace, wrap_ttl=wrap_ttl
        )


def _open_remote(url: str, token: str | None) -> TenantVault:
    """A handle on a server: every call goes over HTTP as the holder of `token`."""
    if not token:
        raise ConfigurationError("a server URL needs token= (the token to act as)")
    transport = RemoteTransport(url)
    return TenantVault._scoped(transport.send, token, "http", on_close=transport.aclose)


class _Opening:
    """What `open()` returns: await it for a `TenantVault`, or use it with `async with`."""

    def __init__(
        self,
        url: str,
        *,
        master_key: bytes | None,
        master_key_file: Path | None,
        allow_insecure_permissions: bool,
        clock: Clock,
        audit: AuditBroker | None,
        audit_dir: Path | None,
        token: str | None = None,
    ) -> None:
        self._url = url
        self._token = token
        self._audit_dir = audit_dir
        self._master_key = master_key
        self._master_key_file = master_key_file
        self._allow_insecure_permissions = allow_insecure_permissions
        self._clock = clock
        self._audit = audit
        self._opened: TenantVault | None = None

    def __repr__(self) -> str:
        return f"<tenantvault.open {self._url.split(':', 1)[0]}://…>"

    async def _open(self) -> TenantVault:
        if is_remote_url(self._url):
            return _open_remote(self._url, self._token)
        if self._token is not None:
            raise ConfigurationError("token= is for a server (http:// or https://) only")
        backend: Backend = await open_backend(
            self._url,
            master_key=self._master_key,
            master_key_file=self._master_key_file,
            allow_insecure_permissions=self._allow_insecure_permissions,
        )
        audit = self._audit
        if audit is None:
            audit = AuditBroker(backend, clock=self._clock, file_dir=self._audit_dir)
        gateway = None
        if self._url.startswith("vault+"):
            # Imported only for a vault backend: the embedded ones load no upstream code.
            from tenantvault.upstream.engines import gateway_for

            gateway = gateway_for(backend)
        core = Core(backend, clock=self._clock, audit=audit, gateway=gateway)
        try:
            await core.start()
        except BaseException:
            await backend.aclose()
            raise
        return TenantVault(core)

    def __await__(self) -> Generator[Any, None, TenantVault]:
        return self._open().__await__()

    async def __aenter__(self) -> TenantVault:
        self._opened = await self._open()
        return self._opened

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._opened is not None:
            await self._opened.aclose()


def open(
    url: str = "memory://",
    *,
    master_key: bytes | None = None,
    master_key_file: Path | None = None,
    allow_insecure_permissions: bool = False,
    clock: Clock = system_clock,
    audit: AuditBroker | None = None,
    audit_dir: Path | None = None,
    token: str | None = None,
) -> _Opening:
    """Open a tenantvault on `url` (`memory://`, `sqlite:///data/dir`), or connect to a server
    (`https://tv.example:8200`, `http://` for loopback only) as the holder of `token`: the same
    API over the Vault HTTP protocol.

    Use `async with tenantvault.open(url) as tv:` (closed on exit) or `tv = await open(url)`.
    The embedded store refuses to open if group or others can use its data directory, master
    key file or database files; `allow_insecure_permissions=True` logs a warning instead.
    `audit_dir` is where `sys/audit/<name>` may create audit files (None: nowhere).
    """
    return _Opening(
        url,
        master_key=master_key,
        master_key_file=master_key_file,
        allow_insecure_permissions=allow_insecure_permissions,
        clock=clock,
        audit=audit,
        audit_dir=audit_dir,
        token=token,
    )
