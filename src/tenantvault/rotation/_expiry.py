"""Expiry for API keys: secrets whose `custom_metadata.expires_at` (RFC 3339) falls within a
window, and secrets whose current version is older than N days (not rotated)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from tenantvault._clock import format_time, parse_time

__all__ = ["EXPIRES_AT", "Report", "expiring"]

EXPIRES_AT: Final = "expires_at"
_NS: Final = 1_000_000_000
# One listing reads every secret's metadata; past this many it stops and says so.
_MAX_SECRETS: Final = 10_000


class MetadataSource(Protocol):
    """Where the listing reads (`MountReader`: each mount's engine, in the caller's tenant)."""

    async def keys(self, mount: str, directory: str = "") -> list[str]: ...

    async def metadata(self, mount: str, path: str) -> Mapping[str, Any] | None: ...


@dataclass(slots=True)
class Report:
    """What `sys/rotation/expiring` answers."""

    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _current_created(metadata: Mapping[str, Any]) -> int | None:
    version = str(metadata.get("current_version", 0))
    created = (metadata.get("versions") or {}).get(version, {}).get("created_time")
    return parse_time(created) if isinstance(created, str) and created else None


async def expiring(
    access: MetadataSource,
    mounts: Iterable[str],
    *,
    now_ns: int,
    within_seconds: int,
    stale_days: int,
) -> Report:
    """Walk every secret of `mounts` (kv v2, the caller's tenant) and sort out the expiring
    and the stale ones, soonest and oldest first."""
    report = Report()
    soon: list[dict[str, Any]] = []
    stale: list[dict[str, Any]] = []
    horizon = now_ns + within_seconds * _NS
    stale_before = now_ns - stale_days * 86400 * _NS
    seen = 0
    for mount in mounts:
        for path in await access.keys(mount):
            seen += 1
            if seen > _MAX_SECRETS:
                report.warnings.append(f"stopped after {_MAX_SECRETS} secrets")
                break
            metadata = await access.metadata(mount, path)
            if metadata is None:
                continue  # deleted meanwhile
            full = mount + path
            custom = metadata.get("custom_metadata") or {}
            raw = custom.get(EXPIRES_AT)
            if isinstance(raw, str):
                expires = parse_time(raw)
                if expires is None:
                    report.warnings.append(
                        f"custom_metadata.{EXPIRES_AT} of {full} is not an RFC 3339 time"
                    )
                elif expires <= horizon:
                    soon.append(
                        {
                            "path": full,
                            EXPIRES_AT: format_time(expires),
                            "expired": expires <= now_ns,
                            "_at": expires,
                        }
                    )
            if stale_days:
                created = _current_created(metadata)
                if created is not None and created <= stale_before:
                    stale.append(
                        {
                            "path": full,
                            "current_version": metadata.get("current_version", 0),
                            "last_rotation": format_time(created),
                            "age_days": (now_ns - created) // (86400 * _NS),
                            "_at": created,
                        }
                    )
        else:
            continue
        break
    soon.sort(key=lambda item: (item["_at"], item["path"]))
    stale.sort(key=lambda item: (item["_at"], item["path"]))
    for item in (*soon, *stale):
        del item["_at"]
    report.data = {"expiring": soon, "stale": stale}
    return report
