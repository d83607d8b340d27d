"""The injectable clock: wall time in nanoseconds, and Vault's RFC 3339 rendering of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "format_time", "system_clock"]

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
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"
