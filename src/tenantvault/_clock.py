"""The injectable clock: wall time in nanoseconds, and Vault's RFC 3339 rendering of it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

__all__ = ["Clock", "format_time", "parse_time", "system_clock"]

# The fraction of a second, taken apart by hand: `datetime` keeps microseconds only, and a
# float timestamp times 1e9 is off by up to a few hundred nanoseconds either way.
_FRACTION: Final = re.compile(r"(?<=:\d\d)[.,](\d+)")

Clock = Callable[[], int]
"""Returns the current wall time in nanoseconds since the epoch (UTC)."""


def system_clock() -> int:
    """The wall clock: nanoseconds since the epoch (UTC)."""
    return time.time_ns()


def format_time(ns: int) -> str:
    """RFC 3339 with nanoseconds, as Vault prints times: 2018-03-22T02:24:06.945319214Z."""
    if ns <= 0:
        return ""
    seconds, nanos = divmod(ns, 1_000_000_000)
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{nanos:09d}Z"
    )


def parse_time(text: str) -> int | None:
    """Nanoseconds since the epoch for an RFC 3339 time with an offset (or Z), exactly
    (format_time's output parses back to the same integer); None if it is not one."""
    fraction = _FRACTION.search(text)
    digits = fraction.group(1) if fraction else ""
    whole = (text[: fraction.start()] + text[fraction.end() :] if fraction else text).upper()
    try:
        moment = datetime.fromisoformat(whole)
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in whole or len(digits) > 9:
        return None  # RFC 3339 requires the date, the time and the offset
    seconds = int(moment.astimezone(UTC).timestamp())  # whole seconds: exact in a float
    return seconds * 1_000_000_000 + int(digits.ljust(9, "0") or "0")
