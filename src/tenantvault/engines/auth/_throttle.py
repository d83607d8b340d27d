"""Failed-login rate limiting per (mount, role, client address), so credentials cannot be
brute-forced through a login endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from tenantvault._clock import Clock
from tenantvault._exceptions import InvalidRequestError, PermissionDeniedError
from tenantvault.engines.auth._errors import LoginThrottledError

__all__ = [
    "DEFAULT_LOGIN_FAILURES",
    "DEFAULT_LOGIN_WINDOW_SECONDS",
    "LoginThrottle",
]

# Vault's user-lockout defaults: 5 failures within 15 minutes lock out for 15 minutes.
DEFAULT_LOGIN_FAILURES: Final = 5
DEFAULT_LOGIN_WINDOW_SECONDS: Final = 15 * 60
# The table is bounded so that a flood of distinct (role, address) pairs costs bounded memory.
_MAX_KEYS: Final = 65_536
_NS: Final = 1_000_000_000

Key = tuple[str, str, str]


@dataclass(slots=True)
class _Bucket:
    started_ns: int
    failures: int


class LoginThrottle:
    """Counts failed logins per key in fixed windows; refuses further attempts with 429.

    A key is (mount uuid, role, client address). After `failures` failed attempts within
    `window_seconds` of the first one, every attempt with that key — also one with the right
    credential — answers 429 until the window has passed; then the count starts again. Only
    failures count (`InvalidRequestError`, `PermissionDeniedError` raised inside `attempt`);
    a success does not reset the count, so interleaving one good login does not reopen the
    door. The count is per process: N instances behind a load balancer allow up to N times
    the limit (each still bounds an attacker to `failures` guesses per window).
    """

    __slots__ = ("_buckets", "_clock", "_failures", "_window_ns")

    def __init__(
        self,
        *,
        clock: Clock,
        failures: int = DEFAULT_LOGIN_FAILURES,
        window_seconds: int = DEFAULT_LOGIN_WINDOW_SECONDS,
    ) -> None:
        if failures < 1 or window_seconds < 1:
            raise ValueError("login throttle needs failures >= 1 and window_seconds >= 1")
        self._clock = clock
        self._failures = failures
        self._window_ns = window_seconds * _NS
        self._buckets: dict[Key, _Bucket] = {}

    def __repr__(self) -> str:
        return f"LoginThrottle(failures={self._failures}, window_ns={self._window_ns})"

    def _current(self, key: Key, now: int) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None and now - bucket.started_ns >= self._window_ns:
            del self._buckets[key]
            return None
        return bucket

    def check(self, key: Key) -> None:
        """Refuse (429) if `key` used up its failures in the current window."""
        bucket = self._current(key, self._clock())
        if bucket is not None and bucket.failures >= self._failures:
            raise LoginThrottledError()

    def failed(self, key: Key) -> None:
        """Count one failed attempt for `key`."""
        now = self._clock()
        bucket = self._current(key, now)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._evict(now)
            self._buckets[key] = _Bucket(now, 1)
        else:
            bucket.failures += 1

    def _evict(self, now: int) -> None:
        expired = [k for k, b in self._buckets.items() if now - b.started_ns >= self._window_ns]
        for key in expired:
            del self._buckets[key]
        while len(self._buckets) >= _MAX_KEYS:
            # Oldest first (dicts keep insertion order): the bucket closest to expiring anyway.
            del self._buckets[next(iter(self._buckets))]

    @asynccontextmanager
    async def attempt(self, key: Key) -> AsyncIterator[None]:
        """Run one login attempt for `key`: refused if throttled, counted if it fails."""
        self.check(key)
        try:
            yield
        except (InvalidRequestError, PermissionDeniedError):
            self.failed(key)
            raise
