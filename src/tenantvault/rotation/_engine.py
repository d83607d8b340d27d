"""The `sys/rotation/` endpoints (our extension, documented in the OpenAPI document).

- `sys/rotation/config/<mount>/<path>`: write (`rotator`, `period` or `schedule`, `grace`,
  `field`, `params`), read the status, delete; `LIST sys/rotation/config` lists the
  tenant's configured secrets.
- `sys/rotation/rotate/<mount>/<path>`: rotate now; answers the new KV version, never the
  value. The scheduler sends the same request (with `if_due`) through the Core, so a
  background rotation is authorized and audited in the tenant's trail like a manual one.
- `sys/rotation/expiring`: secrets whose `custom_metadata.expires_at` falls within a window,
  and secrets not rotated for `stale_days`. It shows paths and dates (never values) of every
  kv v2 mount of the tenant, so `read` on it is a tenant-wide metadata view: grant it as such.

Each route declares its capability on its own `sys/rotation/...` path; only the Core checks
it. The mount is resolved in the handler, from the call's own tenant's mount table, and must
be kv v2: a configuration can only name a mount of its own tenant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock, format_time
from tenantvault._durations import format_duration, parse_duration
from tenantvault._exceptions import InvalidRequestError, NotFoundError, UnsupportedOperationError
from tenantvault._fields import get_bool, get_int, get_mapping, get_str
from tenantvault._paths import parse_path
from tenantvault._request import Operation, Response
from tenantvault._router import Router
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Route
from tenantvault.rotation import _record
from tenantvault.rotation._expiry import expiring
from tenantvault.rotation._record import Rotation
from tenantvault.rotation._rotators import DatabaseRotator, RandomRotator, Rotator
from tenantvault.rotation._runner import RotationEvents, Runner
from tenantvault.rotation._schedule import next_rotation_ns, parse_timing
from tenantvault.rotation._scheduler import RotationScheduler
from tenantvault.rotation._secrets import MountReader, Submit
from tenantvault.rotation._settings import RotationSettings
from tenantvault.rotation._webhook import WebhookRotator

__all__ = ["RotationEngine"]

_CONFIG: Final = frozenset({"rotator", "period", "schedule", "grace", "field", "params"})
_ROTATE: Final = frozenset({"if_due"})
_EXPIRING: Final = frozenset({"within", "stale_days"})
_NONE: Final[frozenset[str]] = frozenset()
_MAX_FIELD_LENGTH: Final = 128
_DEFAULT_WITHIN_SECONDS: Final = 30 * 86400


def _ns_time(ns: int) -> str | None:
    return format_time(ns) if ns > 0 else None


class RotationEngine:
    """Serves `sys/rotation/*` over the tenants' kv v2 mounts; owns the rotators."""

    def __init__(
        self,
        *,
        router: Router,
        backend: Backend,
        tenant_uid: Callable[[str], Awaitable[str | None]],
        submit: Submit,
        clock: Clock,
        settings: RotationSettings | None = None,
        events: RotationEvents | None = None,
    ) -> None:
        """`events` is told of each rotation that succeeded or failed (the metrics);
        `tenant_uid` gives a tenant's incarnation id (None: no such tenant)."""
        self.settings = settings if settings is not None else RotationSettings()
        self._router = router
        self._submit = submit
        self._clock = clock
        self.rotators: dict[str, Rotator] = {
            "random": RandomRotator(),
            "webhook": WebhookRotator(self.settings),
            "database": DatabaseRotator(),
        }
        self.runner = Runner(
            submit=submit,
            clock=clock,
            settings=self.settings,
            rotators=self.rotators,
            events=events,
        )
        # The background pass (`run_scheduler`, a service of the server's supervisor).
        self.scheduler = RotationScheduler(
            router=router,
            backend=backend,
            tenant_uid=tenant_uid,
            submit=submit,
            clock=clock,
            settings=self.settings,
        )

    def __repr__(self) -> str:
        return f"<RotationEngine rotators={sorted(self.rotators)}>"

    @staticmethod
    def handles(rest: str) -> bool:
        """Whether `sys/<rest>` is ours."""
        return rest == "rotation" or rest.startswith("rotation/")

    # -- routing ---------------------------------------------------------------------------

    def route(self, operation: Operation, rest: str, *, storage_tenant: str, uid: str) -> Route:
        """Resolve `sys/<rest>` for `operation`, validating the path once."""
        op = operation
        section, _, sub = rest.removeprefix("rotation/").partition("/")
        if rest in ("rotation", "rotation/"):
            raise NotFoundError("unsupported path")
        if section == "config" and op is Operation.LIST and not sub.strip("/"):
            return Route("sys/rotation/config/", "list", self._list, mount="sys", parameters=_NONE)
        if section == "expiring" and not sub:
            if op is not Operation.READ:
                raise UnsupportedOperationError()
            return Route(
                "sys/rotation/expiring", "read", self._expiring, mount="sys", parameters=_EXPIRING
            )
        if section not in ("config", "rotate") or not sub:
            raise NotFoundError("unsupported path")
        target = parse_path(sub).key
        acl = f"sys/rotation/{section}/{target}"

        def bound(
            handler: Callable[[Call, str], Awaitable[Response]],
        ) -> Callable[[Call], Awaitable[Response]]:
            async def run(call: Call) -> Response:
                return await handler(call, target)

            return run

        if section == "rotate":
            if op not in (Operation.UPDATE, Operation.CREATE):
                raise UnsupportedOperationError()
            return Route(acl, "update", bound(self._rotate), mount="sys", parameters=_ROTATE)
        if op is Operation.READ:
            return Route(acl, "read", bound(self._read), mount="sys", parameters=_NONE)
        if op is Operation.DELETE:
            return Route(acl, "delete", bound(self._delete), mount="sys", parameters=_NONE)
        if op in (Operation.UPDATE, Operation.CREATE):

            async def exists(_tenant: str) -> bool:
                table = await self._router.table(storage_tenant, uid)
                found = table.match(target)
                if found is None:
                    return False
                entry, path = found
                mount = table.mounts.get(entry.path)
                return mount is not None and await _record.read(mount.storage, path) is not None

            return Route(
                acl, None, bound(self._write), exists=exists, mount="sys", parameters=_CONFIG
            )
        raise UnsupportedOperationError()

    async def _kv_mount(self, call: Call, target: str) -> tuple[Mount, str]:
        """The kv v2 mount of the call's own tenant serving `target`, and the mount-relative
        path; 400 if `target` is in no kv v2 mount."""
        table = await self._router.table(call.tenant, call.tenant_uid)
        found = table.match(target)
        if found is not None:
            entry, path = found
            mount = table.mounts.get(entry.path)
            if (
                mount is not None
                and not entry.is_auth
                and mount.type == "kv"
                and mount.options.get("version") == "2"
                and path
                and not path.endswith("/")
            ):
                return mount, path
        raise InvalidRequestError(f"{target} is not a secret of a kv v2 mount")

    # -- handlers --------------------------------------------------------------------------

    async def _write(self, call: Call, target: str) -> Response:
        mount, path = await self._kv_mount(call, target)
        data = call.data
        name = get_str(data, "rotator")
        if name not in self.rotators:
            raise InvalidRequestError(f"rotator must be one of: {', '.join(sorted(self.rotators))}")
        field = get_str(data, "field")
        if not field or len(field) > _MAX_FIELD_LENGTH:
            raise InvalidRequestError("field must name the key of the secret's data to rotate")
        period, schedule = parse_timing(data)
        grace = parse_duration(data.get("grace") or 0, field="grace")
        params = self.rotators[name].check(get_mapping(data, "params") or {})
        now = self._clock()
        if call.tenant != SYSTEM_TENANT:
            # Before the record: the scheduler's passes visit only the set's tenants.
            await self.scheduler.holders.add(call.tenant)

        async def attempt() -> None:
            rotation = await _record.read(mount.storage, path)
            if rotation is None:
                rotation = Rotation(
                    mount=mount.path, path=path, rotator=name, field=field, created_ns=now
                )
            elif rotation.pending is not None and (name, field) != (
                rotation.rotator,
                rotation.field,
            ):
                # A pending value belongs to the rotator and field it was made for.
                rotation.pending = None
                rotation.pending_id = ""
            rotation.rotator, rotation.field, rotation.params = name, field, params
            rotation.period_seconds, rotation.schedule = period, schedule
            rotation.grace_seconds = grace
            rotation.next_rotation_ns = next_rotation_ns(
                period_seconds=period,
                schedule=schedule,
                since_ns=rotation.last_rotation_ns or rotation.created_ns,
            )
            await _record.write(mount.storage, rotation)

        await retry_on_conflict(attempt, what="the rotation record")
        return Response.no_content()

    async def _read(self, call: Call, target: str) -> Response:
        mount, path = await self._kv_mount(call, target)
        rotation = await _record.read(mount.storage, path)
        if rotation is None:
            raise NotFoundError()
        rotation.mount = mount.path  # where it is now, whatever the record says
        return Response(data=self._status(rotation))

    def _status(self, rotation: Rotation) -> dict[str, Any]:
        rotator = self.rotators.get(rotation.rotator)
        state = rotation.state
        if state == "rotating" and not rotation.leased(self._clock()):
            state = "failed"  # its instance died mid-rotation; the scheduler resumes it
        return {
            "mount": rotation.mount,
            "path": rotation.path,
            "rotator": rotation.rotator,
            "field": rotation.field,
            "period": format_duration(rotation.period_seconds) if rotation.period_seconds else "",
            "schedule": rotation.schedule,
            "grace": format_duration(rotation.grace_seconds),
            "params": rotator.public(rotation.params) if rotator is not None else {},
            "state": state,
            "rotations": rotation.rotations,
            "last_rotation": _ns_time(rotation.last_rotation_ns),
            "next_rotation": _ns_time(
                rotation.retry_at_ns if rotation.state == "failed" else rotation.next_rotation_ns
            ),
            "last_version": rotation.last_version,
            "last_error": rotation.last_error or None,
            "failures": rotation.failures,
            "pending": rotation.pending is not None,
            "previous_version": rotation.previous_version,
            "previous_until": _ns_time(rotation.previous_until_ns),
        }

    async def _delete(self, call: Call, target: str) -> Response:
        mount, path = await self._kv_mount(call, target)
        await _record.delete(mount.storage, path)
        return Response.no_content()

    async def _list(self, call: Call) -> Response:
        table = await self._router.table(call.tenant, call.tenant_uid)
        keys: list[str] = []
        for mount in _kv2_mounts(table.mounts):
            keys += [mount.path + path for path in await _record.walk(mount.storage)]
        if not keys:
            raise NotFoundError()
        return Response(data={"keys": sorted(keys)})

    async def _rotate(self, call: Call, target: str) -> Response:
        mount, path = await self._kv_mount(call, target)
        if_due = bool(get_bool(call.data, "if_due", default=False))
        version = await self.runner.rotate(mount.storage, path, mount=mount.path, if_due=if_due)
        if version is None:
            return Response.no_content()
        return Response(data={"version": version})

    async def _expiring(self, call: Call) -> Response:
        within = parse_duration(call.data.get("within") or _DEFAULT_WITHIN_SECONDS, field="within")
        stale_days = get_int(call.data, "stale_days", default=0) or 0
        table = await self._router.table(call.tenant, call.tenant_uid)
        # One audited request: the metadata is read from the mounts' engines directly.
        report = await expiring(
            MountReader(self._router, table, call),
            [mount.path for mount in _kv2_mounts(table.mounts)],
            now_ns=self._clock(),
            within_seconds=within,
            stale_days=stale_days,
        )
        return Response(data=report.data, warnings=report.warnings or None)


def _kv2_mounts(mounts: Mapping[str, Mount]) -> list[Mount]:
    return [
        mount
        for path, mount in sorted(mounts.items())
        if not path.startswith("auth/")
        and mount.type == "kv"
        and mount.options.get("version") == "2"
    ]
