"""Result models of the Python API: frozen, typed, named as Vault names their fields.

Each is built from a `Response`'s data by the facade that asked for it (`_client.py`). A
`repr` never shows secret material: data, plaintexts, tokens and accessors are left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "BatchResult",
    "DataKey",
    "KVConfig",
    "KeyInfo",
    "KeyMetadata",
    "Secret",
    "TenantInfo",
    "TokenInfo",
    "TokenLookup",
    "VersionInfo",
    "VersionState",
]


def _values(model: type[DataclassInstance], data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a Vault `data` mapping that `model` names, and no others.

    A field with a default may be absent (Vault leaves some out, e.g. a key's `kdf` unless it
    is derived); keys the model does not name are ignored, so a newer server's extra fields
    do not break an older client.
    """
    values: dict[str, Any] = {}
    for model_field in dataclasses.fields(model):
        if model_field.name in data:
            values[model_field.name] = data[model_field.name]
        elif model_field.default is dataclasses.MISSING:
            raise KeyError(model_field.name)
    return values


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version's metadata, as KV v2 reports it after a write or with a read."""

    version: int
    created_time: str
    deletion_time: str
    destroyed: bool
    custom_metadata: dict[str, str] | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> VersionInfo:
        """The model of KV v2's version metadata."""
        return cls(**_values(cls, data))


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret version's data and metadata; `repr` never shows the data."""

    data: dict[str, Any] = field(repr=False)
    metadata: VersionInfo

    @property
    def version(self) -> int:
        """The version number of this secret version."""
        return self.metadata.version


@dataclass(frozen=True, slots=True)
class VersionState:
    """One version's state in a key's metadata (`KeyMetadata.versions`)."""

    created_time: str
    deletion_time: str
    destroyed: bool

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> VersionState:
        """The model of one entry of KV v2 metadata's `versions`."""
        return cls(**_values(cls, data))


@dataclass(frozen=True, slots=True)
class KeyMetadata:
    """A key's metadata: settings, and the state of every version kept."""

    current_version: int
    oldest_version: int
    max_versions: int
    cas_required: bool
    delete_version_after: str
    created_time: str
    updated_time: str
    custom_metadata: dict[str, str] | None
    versions: dict[int, VersionState]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> KeyMetadata:
        """The model of `GET secret/metadata/:path`'s data."""
        values = _values(cls, data)
        values["versions"] = {
            int(number): VersionState.from_data(state) for number, state in data["versions"].items()
        }
        return cls(**values)


@dataclass(frozen=True, slots=True)
class KVConfig:
    """A KV v2 mount's settings (`GET secret/config`)."""

    cas_required: bool
    delete_version_after: str
    max_versions: int
    metadata_cas_required: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> KVConfig:
        """The model of `GET secret/config`'s data."""
        return cls(**_values(cls, data))


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """A tenant as `sys/namespaces/:name` describes it (a Vault namespace)."""

    id: str
    path: str
    custom_metadata: dict[str, str]
    created_time: str = ""
    locked: bool = False
    tainted: bool = False
    uuid: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TenantInfo:
        """The model of `sys/namespaces/:name`'s data."""
        return cls(**_values(cls, data))


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token's `auth` block (create, renew). `token` is the only copy of the plaintext of a
    new token: store it safely."""

    token: str = field(repr=False)
    accessor: str = field(repr=False)
    policies: list[str]
    lease_duration: int
    renewable: bool
    orphan: bool
    num_uses: int

    @classmethod
    def from_auth(cls, auth: Mapping[str, Any]) -> TokenInfo:
        """The model of a response's `auth` block (Vault calls the token `client_token`)."""
        return cls(**_values(cls, {**auth, "token": auth["client_token"]}))


@dataclass(frozen=True, slots=True)
class TokenLookup:
    """What a token lookup reports about a token; never its value unless the caller sent it
    (`id`, empty for lookups by accessor), and `repr` shows neither it nor the accessor."""

    accessor: str = field(repr=False)
    creation_time: int
    creation_ttl: int
    display_name: str
    expire_time: str | None
    explicit_max_ttl: int
    id: str = field(repr=False)
    issue_time: str
    meta: dict[str, str] | None
    namespace_path: str
    num_uses: int
    orphan: bool
    path: str
    period: int | None
    policies: list[str]
    renewable: bool
    ttl: int
    type: str = "service"
    entity_id: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TokenLookup:
        """The model of `auth/token/lookup`'s data."""
        return cls(**_values(cls, data))


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A transit key as `GET transit/keys/:name` describes it: settings and versions, never
    key material. `keys` maps each live version to its creation time (Unix seconds) or, for
    signing keys, to its public key; None for HMAC keys, as Vault leaves it out."""

    name: str
    type: str
    latest_version: int
    min_available_version: int
    min_decryption_version: int
    min_encryption_version: int
    deletion_allowed: bool
    derived: bool
    exportable: bool
    allow_plaintext_backup: bool
    auto_rotate_period: int
    imported_key: bool
    soft_deleted: bool
    supports_encryption: bool
    supports_decryption: bool
    supports_derivation: bool
    supports_signing: bool
    keys: dict[str, Any] | None = None
    key_size: int | None = None
    kdf: str | None = None
    convergent_encryption: bool | None = None
    convergent_encryption_version: int | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> KeyInfo:
        """The model of `GET transit/keys/:name`'s data."""
        return cls(**_values(cls, data))


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One item of a transit batch: its result, or Vault's error message for that item.

    `value` is the ciphertext (encrypt, rewrap) or the plaintext bytes (decrypt).
    """

    value: str | bytes | None = field(repr=False)
    key_version: int | None
    error: str | None
    reference: str

    @property
    def ok(self) -> bool:
        """Whether this item succeeded."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class DataKey:
    """A data key from `datakey/`: its ciphertext, and its plaintext unless wrapped."""

    ciphertext: str
    key_version: int
    plaintext: bytes | None = field(repr=False)
