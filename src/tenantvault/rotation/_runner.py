"""One rotation of one secret: take the lease, run create → set → test → finish, write the
new KV version, release — or record the failure and when to retry.

- **Exactly one at a time**, also across instances: the rotation takes a lease on its record
  by check-and-set (`_record`) and renews it before every phase; a lease lost (expired and
  taken, or the config deleted) stops the rotation before it writes anything.
- **Readers see the current value until finish**: the pending value lives sealed in the
  rotation record, not in a KV version; `finish` writes it through the KV engine with
  `cas` = the version it was built on, the other keys of the current data carried over.
- **A failure changes nothing readable**: the current version stays, the record says
  `failed` with the reason and the time of the next try (exponential backoff with jitter),
  and keeps the pending value, so the next attempt resumes from it (steps are idempotent,
  as AWS's) instead of starting a second rotation.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock
from tenantvault._exceptions import (
    CheckAndSetError,
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._protocol import MountStorage
from tenantvault.rotation import _record
from tenantvault.rotation._record import Rotation
from tenantvault.rotation._rotators import PhaseContext, PhaseError, Rotator
from tenantvault.rotation._schedule import next_rotation_ns
from tenantvault.rotation._secrets import SecretAccess, Submit
from tenantvault.rotation._settings import RotationSettings

__all__ = ["RotationBusyError", "RotationFailedError", "Runner", "is_due"]

logger = logging.getLogger("tenantvault.rotation")

_T = TypeVar("_T")
_NS: Final = 1_000_000_000
# A manual write between our read of the current version and our write moves `cas` on;
# that many fresh tries before the finish step fails (and is retried later).
_FINISH_ATTEMPTS: Final = 5


class RotationBusyError(InvalidRequestError):
    """Another rotation of the secret holds its lease (AWS refuses RotateSecret likewise)."""

    def __init__(self) -> None:
        super().__init__("a rotation of this secret is already in progress")


class RotationFailedError(TenantVaultError):
    """A phase failed: the current value is untouched and the rotation will be retried.
    502, as for any failure of a system we called on the caller's behalf."""

    status = 502


class _LeaseLost(Exception):
    """Our lease is gone (expired and taken over, or the configuration was deleted)."""


def is_due(rotation: Rotation, now_ns: int) -> bool:
    """Whether the scheduler should rotate now: the period or cron tick came, a failed
    rotation's retry time came, or a rotation's instance died holding the lease."""
    if rotation.leased(now_ns):
        return False
    if rotation.state == "failed":
        return rotation.retry_at_ns <= now_ns
    if rotation.state == "rotating":
        return True  # its lease ran out: its instance died mid-rotation
    return rotation.next_rotation_ns <= now_ns


# (event, tenant, failed): "rotated", once per rotation run; tenant None: the root namespace.
RotationEvents = Callable[[str, str | None, bool], None]


class Runner:
    """Runs rotations for every tenant; `instance` names this process in leases."""

    def __init__(
        self,
        *,
        submit: Submit,
        clock: Clock,
        settings: RotationSettings,
        rotators: Mapping[str, Rotator],
        random_fraction: Callable[[], float] = random.random,
        events: RotationEvents | None = None,
    ) -> None:
        """`events` is told of each rotation that succeeded or failed (the metrics)."""
        self._events = events
        self._submit = submit
        self._clock = clock
        self._settings = settings
        self._rotators = rotators
        self._random = random_fraction
        self._instance = secrets.token_hex(6)

    def __repr__(self) -> str:
        return f"<Runner instance={self._instance}>"

    def retry_delay_seconds(self, failures: int) -> float:
        """The pause before retry `failures` (1, 2, ...): doubled each time, capped, jittered."""
        base, cap = self._settings.retry_base_seconds, self._settings.retry_max_seconds
        ceiling = min(cap, base * 2.0 ** min(failures - 1, 32))
        return ceiling * (0.5 + self._random() / 2)

    # -- the record, under our lease -------------------------------------------------------

    async def _acquire(
        self, storage: MountStorage, path: str, owner: str, *, mount: str, if_due: bool
    ) -> Rotation | None:
        async def attempt() -> Rotation | None:
            rotation = await _record.read(storage, path)
            now = self._clock()
            if rotation is None:
                raise NotFoundError("no rotation is configured for this secret")
            if rotation.leased(now):
                raise RotationBusyError()
            if if_due and not is_due(rotation, now):
                return None  # another instance rotated it since the scheduler looked
            rotation.lease_owner = owner
            rotation.lease_until_ns = now + self._settings.lease_seconds * _NS
            rotation.state = "rotating"
            # Where the mount is now (a remount moves its storage, and this record, along).
            rotation.mount = mount
            rotation.pending_id = rotation.pending_id or secrets.token_hex(12)
            await _record.write(storage, rotation)
            return rotation

        return await retry_on_conflict(attempt, what="the rotation record")

    async def _update(
        self, storage: MountStorage, path: str, owner: str, change: Callable[[Rotation], None]
    ) -> Rotation:
        """Apply `change` to the record if we still hold its lease (renewed as we go)."""

        async def attempt() -> Rotation:
            rotation = await _record.read(storage, path)
            now = self._clock()
            if rotation is None or rotation.lease_owner != owner or rotation.lease_until_ns <= now:
                raise _LeaseLost()
            change(rotation)
            if rotation.lease_owner == owner:
                rotation.lease_until_ns = now + self._settings.lease_seconds * _NS
            await _record.write(storage, rotation)
            return rotation

        return await retry_on_conflict(attempt, what="the rotation record")

    # -- one rotation ----------------------------------------------------------------------

    async def rotate(
        self, storage: MountStorage, path: str, *, mount: str, if_due: bool = False
    ) -> int | None:
        """Rotate the secret at `path` of the kv v2 mount at `mount` whose storage this is;
        the new KV version (None with `if_due` when it was not due after all)."""
        owner = f"{self._instance}:{secrets.token_hex(6)}"
        rotation = await self._acquire(storage, path, owner, mount=mount, if_due=if_due)
        if rotation is None:
            return None
        try:
            version, replaced = await self._phases(storage, rotation, owner)
        except _LeaseLost:
            self._event(storage, failed=True)
            raise RotationFailedError(
                "the rotation lost its lease (taken over or deconfigured); nothing was written"
            ) from None
        except (PhaseError, TenantVaultError) as error:
            self._event(storage, failed=True)
            message = _describe(error)
            await self._failed(storage, path, owner, message)
            raise RotationFailedError(message) from None
        except Exception as error:
            self._event(storage, failed=True)
            # A bug: still leave the record failed (and retried), with the type name only.
            await self._failed(storage, path, owner, f"internal error ({type(error).__name__})")
            raise
        await self._succeeded(storage, path, owner, version, replaced)
        self._event(storage, failed=False)
        return version

    def _event(self, storage: MountStorage, *, failed: bool) -> None:
        if self._events is not None:
            tenant = None if storage.tenant == SYSTEM_TENANT else storage.tenant
            self._events("rotated", tenant, failed)

    async def _phases(
        self,
        storage: MountStorage,
        rotation: Rotation,
        owner: str,
    ) -> tuple[int, int]:
        """create → set → test → finish, then the KV write: (new version, version replaced)."""
        rotator = self._rotators[rotation.rotator]
        access = SecretAccess(self._submit, storage.tenant)
        context = PhaseContext(
            tenant="" if storage.tenant == SYSTEM_TENANT else storage.tenant,
            mount=rotation.mount,
            path=rotation.path,
            field=rotation.field,
            rotation_id=rotation.pending_id,
            params=rotation.params,
            secrets=access,
        )
        path = rotation.path
        current = await _step("create", access.current(rotation.mount, path))
        if current is None:
            raise _PhaseFailed("create", "the secret has no readable current version")
        pending = rotation.pending
        if pending is None:
            created = await _step("create", rotator.create(context, current.data))
            await self._update(storage, path, owner, lambda r: setattr(r, "pending", created))
            pending = created
        applied = await _step("set", rotator.set(context, dict(pending)))
        if applied != pending:
            await self._update(storage, path, owner, lambda r: setattr(r, "pending", applied))
            pending = applied
        else:
            await self._update(storage, path, owner, lambda r: None)
        await _step("test", rotator.test(context, pending))
        await self._update(storage, path, owner, lambda r: None)
        await _step("finish", rotator.finish(context))
        await self._update(storage, path, owner, lambda r: None)
        return await _step("finish", self._write(access, rotation, pending))

    async def _write(
        self, access: SecretAccess, rotation: Rotation, pending: Mapping[str, Any]
    ) -> tuple[int, int]:
        """The pending value as the new KV version, built on the current one by `cas`."""
        for _ in range(_FINISH_ATTEMPTS):
            current = await access.current(rotation.mount, rotation.path)
            if current is None:
                raise PhaseError("the secret has no readable current version")
            if all(current.data.get(k) == v for k, v in pending.items()) and pending:
                # Written by an earlier attempt that died before it could say so.
                return current.version, rotation.previous_version
            try:
                version = await access.write(
                    rotation.mount,
                    rotation.path,
                    {**current.data, **pending},
                    cas=current.version,
                )
            except CheckAndSetError:
                continue  # a writer got between our read and our write: build on theirs
            return version, current.version
        raise PhaseError("the secret kept changing while the rotation tried to write it")

    async def _succeeded(
        self, storage: MountStorage, path: str, owner: str, version: int, replaced: int
    ) -> None:
        now = self._clock()
        retired: list[int] = []

        def done(rotation: Rotation) -> None:
            if rotation.previous_version and rotation.previous_version != replaced:
                retired.append(rotation.previous_version)  # AWSPREVIOUS moves on
            rotation.state = "idle"
            rotation.pending = None
            rotation.pending_id = ""
            rotation.last_error = ""
            rotation.failures = 0
            rotation.retry_at_ns = 0
            rotation.rotations += 1
            rotation.last_rotation_ns = now
            rotation.last_version = version
            rotation.next_rotation_ns = next_rotation_ns(
                period_seconds=rotation.period_seconds,
                schedule=rotation.schedule,
                since_ns=now,
            )
            if rotation.grace_seconds and replaced:
                rotation.previous_version = replaced
                rotation.previous_until_ns = now + rotation.grace_seconds * _NS
            else:
                rotation.previous_version = rotation.previous_until_ns = 0
            rotation.lease_owner = ""
            rotation.lease_until_ns = 0

        try:
            rotation = await self._update(storage, path, owner, done)
        except _LeaseLost:
            return  # written, but deconfigured meanwhile: nothing left to record
        access = SecretAccess(self._submit, storage.tenant)
        for old in retired:
            try:
                await access.retire(rotation.mount, path, old)
            except TenantVaultError as error:
                # The rotation is done; an older version left readable is not its failure.
                logger.warning("retiring a superseded version failed (%s)", type(error).__name__)

    async def _failed(self, storage: MountStorage, path: str, owner: str, message: str) -> None:
        now = self._clock()

        def failed(rotation: Rotation) -> None:
            rotation.state = "failed"
            rotation.last_error = message
            rotation.failures += 1
            delay = self.retry_delay_seconds(rotation.failures)
            rotation.retry_at_ns = now + int(delay * _NS)
            rotation.lease_owner = ""
            rotation.lease_until_ns = 0

        try:
            await self._update(storage, path, owner, failed)
        except _LeaseLost:
            pass  # someone else owns the record now; its state is theirs to say


class _PhaseFailed(PhaseError):
    """A step's failure, tagged with the phase it happened in."""

    def __init__(self, phase: str, message: str) -> None:
        super().__init__(message)
        self.phase = phase


async def _step(phase: str, awaitable: Awaitable[_T]) -> _T:
    """Await one step; its failure tagged with the phase it happened in."""
    try:
        return await awaitable
    except _PhaseFailed:
        raise
    except PhaseError as error:
        raise _PhaseFailed(phase, str(error)) from None
    except TenantVaultError as error:
        text = "; ".join(error.errors) or type(error).__name__
        raise _PhaseFailed(phase, text) from None


def _describe(error: BaseException) -> str:
    """The failure as status, audit and log show it: the phase and a safe reason."""
    phase = getattr(error, "phase", "")
    text = str(error) if isinstance(error, PhaseError) else type(error).__name__
    if isinstance(error, TenantVaultError):
        text = "; ".join(error.errors) or type(error).__name__
    return f"{phase} failed: {text}" if phase else text
