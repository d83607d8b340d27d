"""The database engine's records: connection configs, dynamic roles and static roles.

All of them are records of the mount (`MountStorage`: per tenant and mount, sealed under the
mount's key): `config/<name>`, `role/<name>`, `static-role/<name>`. The admin password and a
static role's current password are stored only there, and no read endpoint returns them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, TypeVar

import orjson

from tenantvault._exceptions import InvalidRequestError
from tenantvault._records import decode_record, encode_record
from tenantvault.engines._protocol import MountStorage

__all__ = [
    "ConnectionConfig",
    "DynamicRole",
    "StaticRole",
    "load",
    "parse_statements",
    "save",
]

CONFIG: Final = "config/"
ROLE: Final = "role/"
STATIC_ROLE: Final = "static-role/"


def parse_statements(value: object, field_name: str) -> list[str]:
    """A statement list as Vault accepts it: a JSON list, a string, a JSON array in a
    string, or base64 of either; empty entries dropped."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            try:
                decoded = base64.b64decode(text, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if decoded:
                text = decoded.strip()
        if text.startswith("["):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise InvalidRequestError(f"invalid value for {field_name}") from None
        else:
            return [text]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item.strip()]
    raise InvalidRequestError(f"invalid value for {field_name}: expected a list of strings")


def parse_names(value: object) -> list[str]:
    """`allowed_roles`: a list, or a comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise InvalidRequestError("invalid value for allowed_roles: expected a list of strings")


@dataclass(slots=True)
class ConnectionConfig:
    """`config/<name>`. `details` is what `connection_details` shows (never the password)."""

    plugin_name: str
    details: dict[str, Any]
    password: str = field(repr=False)
    allowed_roles: list[str] = field(default_factory=list)
    root_rotation_statements: list[str] = field(default_factory=list)
    password_policy: str = ""
    plugin_version: str = ""
    revision: int = field(default=0, repr=False)

    @property
    def username(self) -> str:
        return str(self.details.get("username") or "")

    def allows(self, role: str) -> bool:
        """Whether `role` is in `allowed_roles` (`*` and glob patterns as Vault)."""
        for pattern in self.allowed_roles:
            if pattern == "*" or pattern == role:
                return True
            if "*" in pattern:
                head, _, tail = pattern.partition("*")
                if role.startswith(head) and role.endswith(tail) and len(role) >= len(pattern) - 1:
                    return True
        return False


@dataclass(slots=True)
class DynamicRole:
    """`roles/<name>`."""

    db_name: str
    creation_statements: list[str] = field(default_factory=list)
    revocation_statements: list[str] = field(default_factory=list)
    rollback_statements: list[str] = field(default_factory=list)
    renew_statements: list[str] = field(default_factory=list)
    default_ttl: int = 0
    max_ttl: int = 0
    credential_type: str = "password"
    revision: int = field(default=0, repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "creation_statements": self.creation_statements,
            "credential_type": self.credential_type,
            "db_name": self.db_name,
            "default_ttl": self.default_ttl,
            "max_ttl": self.max_ttl,
            "renew_statements": self.renew_statements,
            "revocation_statements": self.revocation_statements,
            "rollback_statements": self.rollback_statements,
        }


@dataclass(slots=True)
class StaticRole:
    """`static-roles/<name>`: one existing database user whose password the engine rotates.

    `pending` is the password being set (Vault's WAL): a rotation that failed midway is
    retried with the same one, and `claimed_until_ns` is the check-and-set claim that lets
    only one instance (or request) rotate a role at a time.
    """

    db_name: str
    username: str
    rotation_period: int = 0
    rotation_schedule: str = ""
    rotation_window: int = 0
    rotation_statements: list[str] = field(default_factory=list)
    credential_type: str = "password"
    password: str = field(default="", repr=False)
    last_rotation_ns: int = 0
    pending: str = field(default="", repr=False)
    claimed_until_ns: int = 0
    # After a failed rotation: when to try again (Vault re-queues in 10 s, without limit).
    retry_at_ns: int = 0
    last_error: str = ""
    revision: int = field(default=0, repr=False)
    # A schedule's rotation whose window passed unrotated waits for this scheduled time
    # (Vault's NextVaultRotation moved on); 0: the schedule's next time after the last one.
    next_rotation_ns: int = 0


def _stored(value: Any) -> dict[str, Any]:
    raw = asdict(value)
    raw.pop("revision")
    return raw


_T = TypeVar("_T", ConnectionConfig, DynamicRole, StaticRole)


async def load(store: MountStorage, kind: type[_T], key: str) -> _T | None:
    """The record at `key` as `kind`, or None."""
    record = await store.read(key)
    if record is None:
        return None
    raw: Mapping[str, Any] = decode_record(record.value)
    return kind(**raw, revision=record.revision)


async def save(
    store: MountStorage,
    key: str,
    value: ConnectionConfig | DynamicRole | StaticRole,
    *,
    create: bool = False,
) -> None:
    """Store `value` by check-and-set on the revision it was read at (0: new)."""
    expected = 0 if create else value.revision
    value.revision = await store.write(
        key, encode_record(_stored(value)), expected_revision=expected
    )
