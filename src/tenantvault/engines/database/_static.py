"""Static roles: one existing database user whose password the engine sets and rotates.

A rotation (`rotate`) is Vault's `setStaticAccount` with a check-and-set claim on the role's
record: (1) store a pending password and a claim that expires (only one writer wins, on any
backend and across instances); (2) set it in the database; (3) store it as the current one
with the rotation time, releasing the claim. A failure after (1) keeps the pending password,
so the retry (10 s later, as Vault, without limit) sets the same one. The schedule is the
role's `rotation_period`, or its `rotation_schedule` (cron, UTC, via croniter) — Vault's.
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
from tenantvault.engines.database._credentials import generate_password
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


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / _NS, UTC)


class RotationBusyError(ConflictError):
    """Another request or instance is rotating this role right now."""


class StaticRotation:
    """Writes, describes and rotates static roles of any database mount."""

    def __init__(self, plugin_for: PluginLookup, *, clock: Clock) -> None:
        self._plugin_for = plugin_for
        self._clock = clock
        self._rotated = 0
        self._failures = 0

    def health(self) -> dict[str, int]:
        """Scheduled rotations done and failed since start (for `sys/health`; counts only)."""
        return {"rotated": self._rotated, "failures": self._failures}

    # -- schedule ----------------------------------------------------------------------------

    def next_rotation_ns(self, role: StaticRole) -> int:
        """When the role is next due (a failed rotation: its retry time)."""
        if role.retry_at_ns:
            return role.retry_at_ns
        if role.rotation_schedule:
            following = croniter(role.rotation_schedule, _utc(role.last_rotation_ns)).get_next(
                datetime
            )
            return int(following.timestamp()) * _NS
        return role.last_rotation_ns + role.rotation_period * _NS

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
        await self._plugin_for(store, role.db_name)  # the config must exist
        role.pending = generate_password()
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
        role.pending = password or role.pending or generate_password()
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
        role.claimed_until_ns = role.retry_at_ns = 0
        role.last_error = ""
        await save(store, key, role)  # (3) the new current password
        return role

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
            try:
                await self.rotate(store, name)
            except (DatabaseError, RotationBusyError, NotFoundError) as error:
                self._failures += 1
                logger.warning("scheduled static role rotation failed (%s)", type(error).__name__)
                continue
            self._rotated += 1
            done += 1
        return done
