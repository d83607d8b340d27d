"""Go-style duration strings ("3h25m19s", "30s") to seconds and back, as Vault uses them.

The one duration grammar of the project is Vault's `ParseDurationSecond`
(go-secure-stdlib/parseutil): a number is seconds, a bare `<n>d` counts days, anything else
is a Go `time.ParseDuration` string (units ns, us/µs, ms, s, m, h; fractions allowed; no
sign, no `d` inside a compound). `duration_seconds` is that grammar; the parsers below add
what their callers need (whole seconds and a range for API fields, a `timedelta` for
policies).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Final

from tenantvault._exceptions import InvalidRequestError

__all__ = ["duration_seconds", "format_duration", "parse_duration", "parse_timedelta"]

_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # MICRO SIGN, as Go accepts it
    "\u03bcs": 1e-6,  # GREEK SMALL LETTER MU, likewise
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_SECONDS: Final = re.compile(r"[0-9]+\Z")
_DAYS: Final = re.compile(r"([0-9]+)d\Z")
# Longer input is no duration anyone meant; refusing it bounds the work per request.
_MAX_TEXT: Final = 64
# Durations beyond ~292 years overflow Go's int64 nanoseconds; refuse them as Vault would.
_MAX_SECONDS: Final = 9_223_372_036


def duration_seconds(value: object) -> float | None:
    """Seconds from a number or a duration string ("300", "72h", "1h30m", "7d"), else None.

    No range check: negative and infinite numbers come back as they are, for the caller to
    refuse in its own words.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        return None
    if _SECONDS.match(value):
        return float(value)
    days = _DAYS.match(value)
    if days:
        return float(days.group(1)) * 86400
    total = 0.0
    position = 0
    while position < len(value):
        part = _PART.match(value, position)
        if part is None:
            return None
        total += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    return total


def parse_duration(value: object, *, field: str) -> int:
    """Whole seconds from an int, a digit string or a duration string; 400 on anything else.

    Fractions of a second are dropped (as Vault does); a JSON float is refused, because
    every field parsed here documents whole seconds.
    """
    if isinstance(value, float):
        raise InvalidRequestError(f"invalid value for {field}: expected a duration")
    seconds = duration_seconds(value.strip() if isinstance(value, str) else value)
    if seconds is None:
        raise InvalidRequestError(f"invalid value for {field}: expected a duration")
    if not 0 <= seconds <= _MAX_SECONDS:
        raise InvalidRequestError(f"invalid value for {field}: out of range")
    return int(seconds)


def parse_timedelta(value: object) -> timedelta | None:
    """A non-negative `timedelta` (fractions kept) from the same forms, else None.

    Raises `OverflowError` for a duration `timedelta` cannot hold, so that the caller can
    say "out of range" rather than "not a duration".
    """
    seconds = duration_seconds(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return timedelta(seconds=seconds)


def format_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: 0 → '0s', 3600 → '1h0m0s'."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"
