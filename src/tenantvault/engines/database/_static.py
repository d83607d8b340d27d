"""Static roles: one existing database user whose password the engine sets and rotates.

A rotation (`rotate`) is Vault's `setStaticAccount` with a check-and-set claim on the role's
record: (1) store a pending password and a claim that expires (only one writer wins, on any
backend and across instances); (2) set it in the database; (3) store it as the current one
with the rotation time, releasing the claim. A failure after (1) keeps the pending password,
so the retry (10 s later, as Vault, without limit) sets the same one. The schedule is the
role's `rotation_period`, or its `rotation_schedule` (cron, UTC, via croniter) with an
optional `rotation_window`: a scheduled rotation not done within the window (the server was
down, or every attempt failed) waits for the next scheduled time — Vault's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from croniter import croniter

from tenantvault._clock import Clock, format_time
from tenantvault._durations import parse_duration
from tenantvault._exceptions import ConflictError, InvalidRequestError, NotFoundError
from tenantvault._fields import get_str
from tenantvault.engines._protocol import MountStorage
from tenantvault.engines.database._plugin import DatabaseError, DatabasePlugin
from tenantvault.engines.database._records import (
    STATIC_ROLE,
    ConnectionConfig,
    StaticRole,
    load,
    parse_statements,
    save,
)

__all__ = ["RotationBusyError", "StaticRotation"]

logger = logging.getLogger("tenantvault.database")

_NS: Final = 1_000_000_000
_MIN_PERIOD_SECONDS: Final = 5
_MIN_WINDOW_SECONDS: Final = 3600
_RETRY_NS: Final = 10 * _NS
# How long a claim holds if its holder dies mid-rotation (a database call is bounded well
# below this by the pool and connect timeouts).
_CLAIM_NS: Final = 120 * _NS

PluginLookup = Callable[[MountStorage, str], Awaitable[tuple[ConnectionConfig, DatabasePlugin]]]
# A new password for a user of a config (its `password_policy`, else Vault's default).
PasswordSource = Callable[[MountStorage, ConnectionConfig], Awaitable[str]]


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / _NS, UTC)


def _cron_next(schedule: str, after_ns: int) -> int:
    """The schedule's first time strictly after `after_ns` (UTC, whole seconds)."""
    following = croniter(schedule, _utc(after_ns)).get_next(datetime)
    return int(following.timestamp()) * _NS


class RotationBusyError(ConflictError):
    """Another request or instance is rotating this role right now."""


class StaticRotation:
    """Writes, describes and rotates static roles of any database mount."""

    def __init__(
        self, plugin_for: PluginLookup, new_password: PasswordSource, *, clock: Clock
    ) -> None:
        self._plugin_for = plugin_for
        self._new_password = new_password
        self._clock = clock
        self._rotated = 0
        self._failures = 0
        self._skipped = 0

    def health(self) -> dict[str, int]:
        """Scheduled rotations done, failed and skipped (a rotation window passed) since
        start (for `sys/health`; counts only)."""
        return {"rotated": self._rotated, "failures": self._failures, "skipped": self._skipped}

    # -- schedule ----------------------------------------------------------------------------

    @staticmethod
    def scheduled_ns(role: StaticRole) -> int:
        """The role's next scheduled rotation time (retries aside)."""
        if role.rotation_schedule:
            if role.next_rotation_ns:
                return role.next_rotation_ns
            return _cron_next(role.rotation_schedule, role.last_rotation_ns)
        return role.last_rotation_ns + role.rotation_period * _NS

    def next_rotation_ns(self, role: StaticRole) -> int:
        """When the role is next due (a failed rotation: its retry time)."""
        return role.retry_at_ns or self.scheduled_ns(role)

    def _window_missed(self, role: StaticRole, now: int) -> bool:
        """Vault's IsInsideRotationWindow, negated: a schedule with a window whose window
        (from the scheduled time) has passed, because rotations failed or none ran."""
        if not (role.rotation_schedule and role.rotation_window):
            return False
        return now >= self.scheduled_ns(role) + role.rotation_window * _NS

    def _ttl(self, role: StaticRole) -> int:
        remaining = self.next_rotation_ns(role) - self._clock()
        return max(0, round(remaining / _NS)) if not role.pending else 0

    def describe(self, role: StaticRole) -> dict[str, Any]:
        """The `static-roles/<name>` read (no password)."""
        data: dict[str, Any] = {
            "credential_type": role.credential_type,
            "db_name": role.db_name,
            "last_vault_rotation": format_time(role.last_rotation_ns),
            "rotation_statements": role.rotation_statements,
            "username": role.username,
        }
        data.update(self._schedule_fields(role))
        return data

    @staticmethod
    def _schedule_fields(role: StaticRole) -> dict[str, Any]:
        if role.rotation_schedule:
            return {
                "rotation_schedule": role.rotation_schedule,
                "rotation_window": role.rotation_window,
            }
        return {"rotation_period": role.rotation_period}

    def credentials(self, role: StaticRole) -> dict[str, Any]:
        """The `static-creds/<name>` answer."""
        return {
            "last_vault_rotation": format_time(role.last_rotation_ns),
            "password": role.password,
            **self._schedule_fields(role),
            "ttl": self._ttl(role),
            "username": role.username,
        }

    # -- writing -------------------------------------------------------------------------------

    async def write(self, store: MountStorage, name: str, data: Mapping[str, Any]) -> None:
        """Create (and rotate at once, as Vault) or update a static role."""
        key = STATIC_ROLE + name
        existing = await load(store, StaticRole, key)
        role = existing or StaticRole(db_name="", username="")
        role.db_name = get_str(data, "db_name") or role.db_name
        if not role.db_name:
            raise InvalidRequestError("database name is a required field")
        username = get_str(data, "username")
        if existing is not None and username and username != existing.username:
            raise InvalidRequestError("cannot update static account username")
        role.username = username or role.username
        if not role.username:
            raise InvalidRequestError("username is a required field to create a static account")
        self._schedule(role, data, creating=existing is None)
        if "rotation_statements" in data:
            role.rotation_statements = parse_statements(
                data["rotation_statements"], "rotation_statements"
            )
        if existing is not None:
            await save(store, key, role)
            return
        config, _ = await self._plugin_for(store, role.db_name)  # the config must exist
        role.pending = await self._new_password(store, config)
        await self._set(store, key, role, create=True)

    @staticmethod
    def _schedule(role: StaticRole, data: Mapping[str, Any], *, creating: bool) -> None:
        period_raw, schedule = data.get("rotation_period"), get_str(data, "rotation_schedule")
        if period_raw not in (None, "") and schedule:
            raise InvalidRequestError(
                "mutually exclusive rotation fields provided: rotation_period, rotation_schedule"
            )
        if period_raw not in (None, ""):
            period = parse_duration(period_raw, field="rotation_period")
            if period < _MIN_PERIOD_SECONDS:
                raise InvalidRequestError("rotation_period must be 5 seconds or more")
            role.rotation_period, role.rotation_schedule, role.rotation_window = period, "", 0
        elif schedule:
            if not croniter.is_valid(schedule) or len(schedule.split()) != 5:
                raise InvalidRequestError(f"could not parse rotation_schedule: {schedule!r}")
            role.rotation_schedule, role.rotation_period = schedule, 0
            role.next_rotation_ns = 0
        elif creating:
            raise InvalidRequestError("rotation_period is required to create static accounts")
        window_raw = data.get("rotation_window")
        if window_raw not in (None, ""):
            if not role.rotation_schedule:
                raise InvalidRequestError("rotation_window is invalid with use of rotation_period")
            window = parse_duration(window_raw, field="rotation_window")
            if window < _MIN_WINDOW_SECONDS:
                raise InvalidRequestError("rotation_window must be 3600 seconds or more")
            role.rotation_window = window

    # -- rotating ------------------------------------------------------------------------------

    async def rotate(
        self, store: MountStorage, name: str, *, password: str | None = None
    ) -> StaticRole:
        """Rotate now (`rotate-role`, the scheduler, the KV `database` rotator), to
        `password` if given: the new state; `DatabaseError` if the database refused
        (retried in the background), `RotationBusyError` if another rotation holds the
        claim, `NotFoundError` if there is no such role."""
        key = STATIC_ROLE + name
        role = await load(store, StaticRole, key)
        if role is None:
            raise NotFoundError("no static role found for role name")
        now = self._clock()
        if role.claimed_until_ns > now:
            raise RotationBusyError("a rotation of this role is in progress")
        if not (password or role.pending):
            config, _ = await self._plugin_for(store, role.db_name)
            password = await self._new_password(store, config)
        role.pending = password or role.pending
        return await self._set(store, key, role, create=False)

    async def _set(
        self, store: MountStorage, key: str, role: StaticRole, *, create: bool
    ) -> StaticRole:
        now = self._clock()
        role.claimed_until_ns = now + _CLAIM_NS
        try:
            await save(store, key, role, create=create)  # (1) the claim and the WAL
        except ConflictError:
            raise RotationBusyError("a rotation of this role is in progress") from None
        _, plugin = await self._plugin_for(store, role.db_name)
        try:
            await plugin.set_password(
                role.rotation_statements, username=role.username, password=role.pending
            )
        except DatabaseError as error:
            if create:
                await store.delete(key)  # Vault: a static role whose first rotation fails
                raise
            role.claimed_until_ns = 0
            role.retry_at_ns = self._clock() + _RETRY_NS
            role.last_error = error.message[:240]
            await save(store, key, role)
            raise
        role.password, role.pending = role.pending, ""
        role.last_rotation_ns = now
        role.claimed_until_ns = role.retry_at_ns = role.next_rotation_ns = 0
        role.last_error = ""
        await save(store, key, role)  # (3) the new current password
        return role

    async def _skip_to_next_window(
        self, store: MountStorage, name: str, role: StaticRole, now: int
    ) -> None:
        """Vault: "If the credential is not rotated during this window, due to a failure or
        otherwise, it will not be rotated until the next scheduled rotation". A pending
        password (a failed attempt's) stays, so the next window retries the same one."""
        role.next_rotation_ns = _cron_next(role.rotation_schedule, now)
        role.retry_at_ns = 0
        try:
            await save(store, STATIC_ROLE + name, role)
        except ConflictError:
            return  # changed meanwhile (rotated, updated): its new state stands
        self._skipped += 1
        logger.warning("a static role's rotation window passed; waiting for the next one")

    async def rotate_due(self, store: MountStorage) -> int:
        """Rotate every static role of one mount that is due; how many were rotated."""
        now = self._clock()
        done = 0
        for name in await store.list(STATIC_ROLE):
            if name.endswith("/"):
                continue
            role = await load(store, StaticRole, STATIC_ROLE + name)
            if role is None or role.claimed_until_ns > now or self.next_rotation_ns(role) > now:
                continue
            if self._window_missed(role, now):
                await self._skip_to_next_window(store, name, role, now)
                continue
            try:
                await self.rotate(store, name)
            except (DatabaseError, RotationBusyError, NotFoundError) as error:
                self._failures += 1
                logger.warning("scheduled static role rotation failed (%s)", type(error).__name__)
                continue
            self._rotated += 1
            done += 1
        return done
