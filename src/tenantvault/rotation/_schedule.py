"""When a secret rotates next: a fixed period after the last rotation, or a cron schedule (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from croniter import CroniterBadDateError, croniter

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError

__all__ = ["MIN_PERIOD_SECONDS", "check_schedule", "next_rotation_ns", "parse_timing"]

# Seconds are enough for tests and for hooks that rotate often; AWS's 4 h minimum is a
# product decision we leave to the tenant.
MIN_PERIOD_SECONDS: Final = 1
_NS: Final = 1_000_000_000
# A schedule with no next date (it found none within croniter's search): never due.
_NEVER_NS: Final = 2**62


def check_schedule(expression: str) -> str:
    """A standard 5-field cron expression (UTC), as Vault's `rotation_schedule`; 400 if not."""
    if len(expression) > 128 or len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidRequestError("invalid value for schedule: expected a 5-field cron expression")
    try:
        croniter(expression, datetime.now(UTC)).get_next(datetime)
    except CroniterBadDateError:
        # `0 0 30 2 *`: valid syntax, no such day.
        raise InvalidRequestError("invalid value for schedule: it never fires") from None
    return expression


def parse_timing(data: Any) -> tuple[int, str]:
    """(period seconds, cron schedule) from a config write: exactly one of the two."""
    period, schedule = data.get("period"), data.get("schedule")
    if (period in (None, "")) == (schedule in (None, "")):
        raise InvalidRequestError("exactly one of period and schedule must be given")
    if schedule not in (None, ""):
        if not isinstance(schedule, str):
            raise InvalidRequestError("invalid value for schedule: expected a string")
        return 0, check_schedule(schedule)
    seconds = parse_duration(period, field="period")
    if seconds < MIN_PERIOD_SECONDS:
        raise InvalidRequestError(f"period must be at least {MIN_PERIOD_SECONDS}s")
    return seconds, ""


def next_rotation_ns(*, period_seconds: int, schedule: str, since_ns: int) -> int:
    """The next due time after `since_ns` (the last rotation, or the configuration)."""
    if schedule:
        base = datetime.fromtimestamp(since_ns / _NS, UTC)
        try:
            following: datetime = croniter(schedule, base).get_next(datetime)
        except CroniterBadDateError:
            return _NEVER_NS
        return int(following.timestamp()) * _NS
    return since_ns + period_seconds * _NS
