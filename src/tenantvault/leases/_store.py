"""Lease records in each tenant's own space, changed only by check-and-set.

A tenant's leases live in its backend space under storage mount `leases` (no mount can take
that name: mounts store under `mount/<uuid>`), sealed like every record of the space:

- `lease/<lease id>`              the lease (its id is `<mount>/creds/<role>/<random>`, so
                                  listing `lease/<prefix>` is `LIST sys/leases/lookup/<prefix>`)
- `count`                         how many leases the tenant holds (the lease quota)

and, in the space of the token that created a lease (the tenant's, or the root namespace's
for a root token acting in the tenant):

- `token/<token hash>/<digest>`   → (tenant, lease id): the leases to revoke with the token
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

from tenantvault._exceptions import ConflictError, NotFoundError
from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import Backend

__all__ = ["MOUNT", "Lease", "LeaseStore"]

MOUNT: Final = "leases"
_LEASE: Final = "lease/"
_TOKEN: Final = "token/"  # noqa: S105 -- a storage prefix, not a credential
_COUNT: Final = "count"


@dataclass(slots=True)
class Lease:
    """One lease as stored. `internal` is the engine's data to renew or revoke the secret."""

    id: str
    path: str
    mount: str
    mount_uuid: str
    issue_ns: int
    expire_ns: int
    renewable: bool
    internal: dict[str, Any] = field(repr=False)
    last_renewal_ns: int = 0
    # Where the creating token's index entry is ('' when no token created it).
    token_space: str = ""
    token_hash: str = field(default="", repr=False)
    # Failed revocations so far, when the next is due (0: at expiry), and the last error.
    attempts: int = 0
    next_attempt_ns: int = 0
    revoke_error: str = ""
    irrevocable: bool = False
    revision: int = field(default=0, repr=False)
    # When the creating token expires, as last seen (0: no token, or one that never expires):
    # a lease dies with its token (Vault revokes a token's leases when its TTL runs out).
    token_expire_ns: int = 0

    @property
    def due_ns(self) -> int:
        """When the expiration service should (next) try to revoke it: at its expiry or its
        token's, whichever comes first; after a failed attempt, at the retry."""
        if self.next_attempt_ns:
            return self.next_attempt_ns
        if self.token_expire_ns:
            return min(self.expire_ns, self.token_expire_ns)
        return self.expire_ns

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "mount": self.mount,
            "mount_uuid": self.mount_uuid,
            "issue_ns": self.issue_ns,
            "expire_ns": self.expire_ns,
            "renewable": self.renewable,
            "internal": self.internal,
            "last_renewal_ns": self.last_renewal_ns,
            "token_space": self.token_space,
            "token_hash": self.token_hash,
            "attempts": self.attempts,
            "next_attempt_ns": self.next_attempt_ns,
            "revoke_error": self.revoke_error,
            "irrevocable": self.irrevocable,
            "token_expire_ns": self.token_expire_ns,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], revision: int) -> Lease:
        return cls(**raw, revision=revision)


def _digest(lease_id: str) -> str:
    return hashlib.sha256(lease_id.encode()).hexdigest()[:32]


class LeaseStore:
    """The storage verbs of leases; every call names the tenant space it acts in."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def read(self, tenant: str, lease_id: str) -> Lease | None:
        try:
            record = await self._backend.read(tenant, MOUNT, _LEASE + lease_id)
        except NotFoundError:
            return None  # the tenant is gone, and its leases with it
        if record is None:
            return None
        return Lease.from_json(decode_record(record.value), record.revision)

    async def create(self, tenant: str, lease: Lease) -> None:
        lease.revision = await self._backend.write(
            tenant, MOUNT, _LEASE + lease.id, encode_record(lease.to_json()), expected_revision=0
        )

    async def save(self, tenant: str, lease: Lease) -> None:
        """Store a changed lease; `ConflictError` if it changed meanwhile."""
        lease.revision = await self._backend.write(
            tenant,
            MOUNT,
            _LEASE + lease.id,
            encode_record(lease.to_json()),
            expected_revision=lease.revision,
        )

    async def remove(self, tenant: str, lease: Lease) -> bool:
        """Delete the lease as read; False if another writer changed or removed it first."""
        try:
            return await self._backend.delete(
                tenant, MOUNT, _LEASE + lease.id, expected_revision=lease.revision
            )
        except (ConflictError, NotFoundError):
            return False

    async def children(self, tenant: str, prefix: str) -> list[str]:
        try:
            return await self._backend.list(tenant, MOUNT, _LEASE + prefix)
        except NotFoundError:
            return []

    async def walk(self, tenant: str, prefix: str = "") -> list[str]:
        """Every lease id under `prefix` (a folder path ending in '/', or '')."""
        found: list[str] = []
        pending = [prefix]
        while pending:
            folder = pending.pop()
            for child in await self.children(tenant, folder):
                if child.endswith("/"):
                    pending.append(folder + child)
                else:
                    found.append(folder + child)
        return sorted(found)

    # -- the creating token's index ---------------------------------------------------------

    async def link(self, space: str, token_hash: str, tenant: str, lease_id: str) -> None:
        key = f"{_TOKEN}{token_hash}/{_digest(lease_id)}"
        value = encode_record({"tenant": tenant, "id": lease_id})
        await self._backend.write(space, MOUNT, key, value, expected_revision=None)

    async def unlink(self, space: str, token_hash: str, lease_id: str) -> None:
        try:
            await self._backend.delete(space, MOUNT, f"{_TOKEN}{token_hash}/{_digest(lease_id)}")
        except NotFoundError:
            pass

    async def indexed_tokens(self, space: str) -> list[str]:
        """The hashes of the tokens that have lease index entries in `space`."""
        try:
            folders = await self._backend.list(space, MOUNT, _TOKEN)
        except NotFoundError:
            return []
        return [folder.rstrip("/") for folder in folders]

    async def linked(self, space: str, token_hash: str) -> list[tuple[str, str]]:
        """The (tenant, lease id) pairs a token created."""
        found = []
        prefix = f"{_TOKEN}{token_hash}/"
        try:
            children = await self._backend.list(space, MOUNT, prefix)
        except NotFoundError:
            return []
        for child in children:
            record = await self._backend.read(space, MOUNT, prefix + child)
            if record is not None:
                raw = decode_record(record.value)
                found.append((str(raw["tenant"]), str(raw["id"])))
        return found

    # -- the quota counter -----------------------------------------------------------------

    async def count(self, tenant: str) -> tuple[int, int]:
        """(count, revision) of the tenant's lease counter."""
        record = await self._backend.read(tenant, MOUNT, _COUNT)
        if record is None:
            return 0, 0
        return int(decode_record(record.value)["n"]), record.revision

    async def set_count(self, tenant: str, value: int, *, revision: int) -> None:
        await self._backend.write(
            tenant, MOUNT, _COUNT, encode_record({"n": max(value, 0)}), expected_revision=revision
        )
