"""The `Backend` Protocol: the narrow set of storage verbs every backend offers, and its contract.

The contract is shaped by the weakest backend we support, a remote Vault/OpenBao:

- Storage is a map of records per tenant and mount: `(tenant, mount, key) -> Record`.
  A record is opaque bytes plus a `revision` that changes on every write and is never reused
  for a key, not even after the key is deleted and written again (no ABA on check-and-set).
- The only atomicity is **per key**: `write` and `delete` take an `expected_revision` and
  raise `ConflictError` if the record moved on. There are no transactions across keys, so
  engines order their writes so that a crash between two of them leaves garbage, never a lie
  (KV: version data first, then the metadata record that makes it visible).
- Any call may raise `BackendUnavailableError` (transient; nothing happened or the call was a
  read) or `BackendTimeoutError` (outcome unknown). Engines retry only what is idempotent.
- A write that returned has been made durable (the embedded store commits with fsync).
- Tenants are created and destroyed explicitly. Every call names its tenant; nothing travels
  in ambient state. Deleting a tenant makes its data unrecoverable and is final: a tenant
  created again under the same id starts empty.
- Keys are canonical strings built by engines from validated paths; `list` returns the
  immediate children of a prefix (folders end in '/'), sorted.
- `SYSTEM_TENANT` holds operator-level records (root tokens); no tenant id can equal it.

The contract test suite in `tests/contract/` is the executable form of this text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_TENANT", "Backend", "Record", "RevisionPeek", "revision_peek"]

# Tenant ids match [a-z0-9][a-z0-9-]*, so an underscore can never collide with one.
SYSTEM_TENANT = "_system"


@dataclass(frozen=True, slots=True)
class Record:
    """One stored value and the revision to quote when changing it."""

    value: bytes
    revision: int

    def __repr__(self) -> str:
        # Values are plaintext secrets at this layer: never let them reach a log via repr.
        return f"Record(revision={self.revision}, value=<{len(self.value)} bytes>)"


@runtime_checkable
class Backend(Protocol):
    """Storage verbs; policy, audit, caching and retries live above, in the Core."""

    @property
    def name(self) -> str:
        """A short label for errors and health output, e.g. 'sqlite' or 'memory'."""
        ...

    async def create_tenant(self, tenant: str) -> None:
        """Create an empty tenant; `ConflictError` if it exists."""
        ...

    async def delete_tenant(self, tenant: str) -> None:
        """Destroy a tenant and all its records irrecoverably; `NotFoundError` if absent."""
        ...

    async def list_tenants(self) -> list[str]:
        """All tenant ids, sorted (never `SYSTEM_TENANT`)."""
        ...

    async def has_tenant(self, tenant: str) -> bool:
        """Whether the tenant exists."""
        ...

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        """The record at `key`, or None. `NotFoundError` if the tenant does not exist."""
        ...

    async def write(
        self, tenant: str, mount: str, key: str, value: bytes, *, expected_revision: int | None
    ) -> int:
        """Store `value` and return the new revision.

        `expected_revision`: None writes unconditionally, 0 only if the key is absent, N only
        if the record is at revision N; otherwise `ConflictError` and nothing changes.
        """
        ...

    async def delete(
        self, tenant: str, mount: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        """Remove `key`; return whether it existed. `ConflictError` on a revision mismatch."""
        ...

    async def list(self, tenant: str, mount: str, prefix: str) -> list[str]:
        """Immediate children of `prefix` ('' for the root; otherwise ending in '/'), sorted."""
        ...

    async def aclose(self) -> None:
        """Release resources; idempotent. Later calls raise `ClosedError`."""
        ...


@runtime_checkable
class RevisionPeek(Protocol):
    """A backend that can tell a key's committed revision without reading its value.

    The embedded store knows it from its exact record cache; gateway mode from its record
    cache while an entry is fresh (what `read` would answer with, within the same staleness
    bound, without opening the sealed value again). A caller that keeps a decoding of the
    record at that revision (the token store, the policy store, the mount table) uses it as
    is instead of reading and decrypting the value on every request; revisions are never
    reused (no ABA), so an equal revision is the same value.
    """

    def committed_revision(self, tenant: str, mount: str, key: str) -> int | None:
        """The revision `read` of `key` would return now, if known with no I/O (0: known to
        be absent); None if unknown (then the caller reads). `ClosedError` once closed."""
        ...


def _never_known(tenant: str, mount: str, key: str) -> int | None:
    return None


def revision_peek(backend: Backend) -> Callable[[str, str, str], int | None]:
    """`backend.committed_revision` if the backend has one, else a peek that never knows
    (every caller then reads, as before). Resolved once, when the caller is built."""
    if isinstance(backend, RevisionPeek):
        return backend.committed_revision
    return _never_known
