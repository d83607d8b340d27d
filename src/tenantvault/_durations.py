"""Go-style duration strings ("3h25m19s", "30s") to seconds and back, as Vault uses them."""

from __future__ import annotations

import re

from tenantvault._exceptions import InvalidRequestError

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
# Durations beyond ~292 years overflow Go's int64 nanoseconds; refuse them as Vault would.
_MAX_SECONDS = 9_223_372_036


def parse_duration(value: object, *, field: str) -> int:
    """Whole seconds from an int, a digit string or a Go duration string; 400 on anything else."""
    if isinstance(value, bool):
        raise InvalidRequestError(f"invalid value for {field}: expected a duration")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit() and text.isascii():
            seconds = int(text) if len(text) <= 12 else _MAX_SECONDS + 1
        else:
            if not text or len(text) > 64:
                raise InvalidRequestError(f"invalid value for {field}: expected a duration")
            total = 0.0
            position = 0
            for match in _PART.finditer(text):
                if match.start() != position:
                    break
                total += float(match.group(1)) * _UNITS[match.group(2)]
                position = match.end()
            if position != len(text):
                raise InvalidRequestError(f"invalid value for {field}: expected a duration")
            seconds = int(total)
    else:
        raise InvalidRequestError(f"invalid value for {field}: expected a duration")
    if seconds < 0 or seconds > _MAX_SECONDS:
        raise InvalidRequestError(f"invalid value for {field}: out of range")
    return seconds


def format_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: 0 → '0s', 3600 → '1h0m0s'."""
    if seconds == 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
