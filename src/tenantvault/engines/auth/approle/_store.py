"""AppRole records in one mount's storage: roles, the role-id index, secret-ids (stored only
as keyed hashes) and their accessor index.

Layout (every value sealed under the mount's key by `MountStorage`):

- `salt`                                  the mount's HMAC key (32 random bytes)
- `role/<name>`                           a role (names lower-cased, as Vault)
- `role_id/<hmac(role_id)>`               role-id → role name (one role per role-id)
- `secret_id/<hmac(name)>/<hmac(secret)>` a secret-id's entry; the secret-id itself is never
                                          stored, only its HMAC under the mount's key
- `accessor/<hmac(accessor)>`             accessor → (role, hmac of the secret-id)

A secret-id's use count is changed only by check-and-set (`consume`), so of N concurrent
logins exactly `num_uses` succeed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from tenantvault._cas import retry_on_conflict
from tenantvault._exceptions import ConflictError
from tenantvault._records import decode_record, encode_record
from tenantvault.engines._protocol import MountStorage
from tenantvault.engines.auth.approle._role import Role

__all__ = ["AppRoleStore", "SecretIdEntry"]

_SALT: Final = "salt"
# Enough for every racing login to win once (each lost race means another one won).
_ATTEMPTS: Final = 256


@dataclass(slots=True)
class SecretIdEntry:
    """What is stored for one secret-id (never the secret-id itself)."""

    accessor: str = field(repr=False)
    num_uses: int
    ttl: int
    creation_ns: int
    expiration_ns: int  # 0: never
    last_updated_ns: int
    metadata: dict[str, str] = field(default_factory=dict, repr=False)
    cidr_list: list[str] = field(default_factory=list)
    token_bound_cidrs: list[str] = field(default_factory=list)

    def is_expired(self, now_ns: int) -> bool:
        return bool(self.expiration_ns) and self.expiration_ns <= now_ns

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SecretIdEntry:
        return cls(**raw)


class AppRoleStore:
    """The records of one AppRole mount, over its `MountStorage`."""

    __slots__ = ("_key", "_storage")

    def __init__(self, storage: MountStorage, key: bytes) -> None:
        self._storage = storage
        self._key = key

    def __repr__(self) -> str:
        return f"AppRoleStore({self._storage!r})"

    @classmethod
    async def open(cls, storage: MountStorage) -> AppRoleStore:
        """The store of a mount, creating its HMAC key on first use."""
        record = await storage.read(_SALT)
        if record is None:
            key = secrets.token_bytes(32)
            try:
                await storage.write(_SALT, key, expected_revision=0)
            except ConflictError:
                record = await storage.read(_SALT)
            else:
                return cls(storage, key)
        if record is None:
            raise ConflictError("approle key vanished")
        return cls(storage, record.value)

    @staticmethod
    async def has_role(storage: MountStorage, name: str) -> bool:
        """Whether the mount has role `name` (reads only: the ACL's create/update check)."""
        return await storage.read(f"role/{name}") is not None

    def hmac(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    # -- roles -----------------------------------------------------------------------------

    async def role(self, name: str) -> tuple[Role | None, int]:
        record = await self._storage.read(f"role/{name}")
        if record is None:
            return None, 0
        return Role.from_json(decode_record(record.value)), record.revision

    async def existing(self, name: str, *, missing: Exception) -> Role:
        """The role `name`, or `missing` raised (each endpoint has its own answer)."""
        role, _ = await self.role(name)
        if role is None:
            raise missing
        return role

    async def role_names(self) -> list[str]:
        return sorted(await self._storage.list("role/"))

    async def role_by_role_id(self, role_id: str) -> Role | None:
        index = await self._storage.read(f"role_id/{self.hmac(role_id)}")
        if index is None:
            return None
        role, _ = await self.role(decode_record(index.value)["name"])
        # An index entry left behind by a role-id change or a crash names no role.
        if role is None or not hmac.compare_digest(role.role_id, role_id):
            return None
        return role

    async def claim_role_id(self, role_id: str, name: str) -> bool:
        """Point `role_id` at `name`; False if another role holds it."""
        key = f"role_id/{self.hmac(role_id)}"
        current = await self._storage.read(key)
        if current is not None:
            holder = decode_record(current.value)["name"]
            if holder == name:
                return True
            other, _ = await self.role(holder)
            if other is not None and other.role_id == role_id:
                return False
        value = encode_record({"name": name})
        try:
            await self._storage.write(
                key, value, expected_revision=current.revision if current else 0
            )
        except ConflictError:
            return False
        return True

    async def release_role_id(self, role_id: str, name: str) -> None:
        key = f"role_id/{self.hmac(role_id)}"
        current = await self._storage.read(key)
        if current is not None and decode_record(current.value)["name"] == name:
            await self._storage.delete(key, expected_revision=current.revision)

    async def save_role(self, role: Role, revision: int) -> None:
        await self._storage.write(
            f"role/{role.name}", encode_record(role.to_json()), expected_revision=revision
        )

    async def delete_role(self, role: Role) -> None:
        for accessor in await self.accessors(role.name):
            await self.destroy_by_accessor(role.name, accessor)
        await self._storage.delete(f"role/{role.name}")
        await self.release_role_id(role.role_id, role.name)

    # -- secret-ids ------------------------------------------------------------------------

    def _secret_key(self, role: str, secret_id: str) -> str:
        return f"secret_id/{self.hmac(role)}/{self.hmac(secret_id)}"

    async def add_secret_id(self, role: str, secret_id: str, entry: SecretIdEntry) -> bool:
        """Store a new secret-id; False if the role already has this one."""
        key = self._secret_key(role, secret_id)
        index = encode_record({"role": role, "secret": key})
        await self._storage.write(
            f"accessor/{self.hmac(entry.accessor)}", index, expected_revision=0
        )
        try:
            await self._storage.write(key, encode_record(asdict(entry)), expected_revision=0)
        except ConflictError:
            await self._storage.delete(f"accessor/{self.hmac(entry.accessor)}")
            return False
        return True

    async def secret_id(self, role: str, secret_id: str) -> SecretIdEntry | None:
        record = await self._storage.read(self._secret_key(role, secret_id))
        return SecretIdEntry.from_json(decode_record(record.value)) if record else None

    async def _by_accessor(self, role: str, accessor: str) -> tuple[str, SecretIdEntry] | None:
        index = await self._storage.read(f"accessor/{self.hmac(accessor)}")
        if index is None:
            return None
        target = decode_record(index.value)
        if target["role"] != role:
            return None
        record = await self._storage.read(target["secret"])
        if record is None:
            return None
        return target["secret"], SecretIdEntry.from_json(decode_record(record.value))

    async def secret_id_by_accessor(self, role: str, accessor: str) -> SecretIdEntry | None:
        found = await self._by_accessor(role, accessor)
        return found[1] if found else None

    async def accessors(self, role: str) -> list[str]:
        """The accessors of a role's secret-ids (what LIST secret-id shows)."""
        result = []
        prefix = f"secret_id/{self.hmac(role)}/"
        for key in await self._storage.list(prefix):
            record = await self._storage.read(prefix + key)
            if record is not None:
                result.append(decode_record(record.value)["accessor"])
        return sorted(result)

    async def destroy(self, role: str, secret_id: str) -> None:
        key = self._secret_key(role, secret_id)
        entry = await self.secret_id(role, secret_id)
        await self._storage.delete(key)
        if entry is not None:
            await self._storage.delete(f"accessor/{self.hmac(entry.accessor)}")

    async def destroy_by_accessor(self, role: str, accessor: str) -> bool:
        found = await self._by_accessor(role, accessor)
        if found is None:
            return False
        await self._storage.delete(found[0])
        await self._storage.delete(f"accessor/{self.hmac(accessor)}")
        return True

    async def consume(self, role: str, secret_id: str, now_ns: int) -> SecretIdEntry | None:
        """Take one use of a secret-id by check-and-set; its entry as it was, or None if it
        is unknown, used up or expired (an expired one is deleted)."""
        key = self._secret_key(role, secret_id)

        async def attempt() -> SecretIdEntry | None:
            record = await self._storage.read(key)
            if record is None:
                return None
            entry = SecretIdEntry.from_json(decode_record(record.value))
            accessor_key = f"accessor/{self.hmac(entry.accessor)}"
            if entry.is_expired(now_ns):
                # Stricter than Vault (which lets tidy remove it within a minute).
                await self._storage.delete(key, expected_revision=record.revision)
                await self._storage.delete(accessor_key)
                return None
            if entry.num_uses == 0:
                return entry  # unlimited: nothing to write
            if entry.num_uses == 1:
                # The last use: gone, and this login still succeeds (as Vault).
                if not await self._storage.delete(key, expected_revision=record.revision):
                    raise ConflictError("secret-id changed")
                await self._storage.delete(accessor_key)
                return entry
            used = SecretIdEntry.from_json({**asdict(entry), "num_uses": entry.num_uses - 1})
            used.last_updated_ns = now_ns
            await self._storage.write(
                key, encode_record(asdict(used)), expected_revision=record.revision
            )
            return entry

        return await retry_on_conflict(attempt, what="this secret-id", attempts=_ATTEMPTS)

    async def tidy(self, now_ns: int) -> int:
        """Delete expired secret-ids and dangling accessors; returns how many went."""
        removed = 0
        for role_dir in await self._storage.list("secret_id/"):
            prefix = f"secret_id/{role_dir}"
            for key in await self._storage.list(prefix):
                record = await self._storage.read(prefix + key)
                if record is None:
                    continue
                entry = SecretIdEntry.from_json(decode_record(record.value))
                if entry.is_expired(now_ns):
                    await self._storage.delete(prefix + key, expected_revision=record.revision)
                    await self._storage.delete(f"accessor/{self.hmac(entry.accessor)}")
                    removed += 1
        for key in await self._storage.list("accessor/"):
            index = await self._storage.read(f"accessor/{key}")
            if (
                index is not None
                and await self._storage.read(decode_record(index.value)["secret"]) is None
            ):
                await self._storage.delete(f"accessor/{key}")
                removed += 1
        return removed
