"""The rotation record of one secret: its configuration, its status and its lease.

One record per rotated secret, `rotation/<path>` in the storage of the secret's own kv v2
mount (`MountStorage`): sealed under that mount's key and bound to the tenant incarnation
and mount uuid, so a tenant's configuration can only ever name its own mounts, and disabling
the mount (or deleting the tenant) takes the configuration, the sealed pending value and
the webhook secret with it. The KV engine's records live under `config`, `meta/` and
`data/`; `rotation/` is ours.

Every change is a check-and-set on the record's revision (the only atomicity the Backend
promises), which is also how exactly one instance rotates a secret at a time: the
`lease_owner`/`lease_until_ns` pair is taken, renewed and released by check-and-set
writes, and a writer that finds another live lease backs off (`_runner`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import Record
from tenantvault.engines._protocol import MountStorage

__all__ = ["PREFIX", "Rotation", "State", "walk"]

PREFIX: Final = "rotation/"

State = Literal["idle", "rotating", "failed"]


@dataclass(slots=True)
class Rotation:
    """One secret's rotation: configuration first, then status. Holds secrets (the
    rotator's params, the pending value): kept out of `repr`."""

    mount: str  # 'secret/'
    path: str  # 'app/db', mount-relative
    rotator: str
    field: str
    period_seconds: int = 0
    schedule: str = ""
    grace_seconds: int = 0
    params: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    created_ns: int = 0
    # -- status
    state: State = "idle"
    rotations: int = 0
    last_rotation_ns: int = 0
    next_rotation_ns: int = 0
    last_version: int = 0
    last_error: str = ""
    failures: int = 0
    retry_at_ns: int = 0
    # -- the lease: who rotates now, until when (renewed before each phase)
    lease_owner: str = ""
    lease_until_ns: int = 0
    # -- AWSPENDING: the value `create` made, until `finish` wrote it (sealed in this record)
    pending: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    pending_id: str = ""
    # -- AWSPREVIOUS: the version `finish` replaced, readable until its grace ends
    previous_version: int = 0
    previous_until_ns: int = 0
    # The record's revision when read (not stored): what a check-and-set write quotes.
    revision: int = dataclasses.field(default=0, compare=False)

    @property
    def full_path(self) -> str:
        return f"{self.mount}{self.path}"

    def leased(self, now_ns: int) -> bool:
        """Whether some rotation holds the lease right now."""
        return bool(self.lease_owner) and self.lease_until_ns > now_ns

    def encode(self) -> bytes:
        raw = dataclasses.asdict(self)
        raw.pop("revision")
        return encode_record(raw)

    @classmethod
    def decode(cls, record: Record) -> Rotation:
        raw: Mapping[str, Any] = decode_record(record.value)
        names = {item.name for item in dataclasses.fields(cls)}
        rotation = cls(**{k: v for k, v in raw.items() if k in names and k != "revision"})
        rotation.revision = record.revision
        return rotation


def key_of(path: str) -> str:
    return PREFIX + path


async def read(storage: MountStorage, path: str) -> Rotation | None:
    record = await storage.read(key_of(path))
    return None if record is None else Rotation.decode(record)


async def write(storage: MountStorage, rotation: Rotation) -> None:
    """Store `rotation` if its record is still at the revision it was read at (0: new);
    `ConflictError` otherwise. Updates `rotation.revision`."""
    rotation.revision = await storage.write(
        key_of(rotation.path), rotation.encode(), expected_revision=rotation.revision
    )


async def delete(storage: MountStorage, path: str) -> bool:
    return await storage.delete(key_of(path))


async def walk(storage: MountStorage) -> list[str]:
    """Every configured path of the mount (mount-relative), sorted."""
    found: list[str] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        for child in await storage.list(PREFIX + prefix):
            if child.endswith("/"):
                pending.append(prefix + child)
            else:
                found.append(prefix + child)
    return sorted(found)
