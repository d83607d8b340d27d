"""What every auth method type is built with (`_registry.AUTH_METHODS`)."""

from __future__ import annotations

from dataclasses import dataclass

from tenantvault._clock import Clock
from tenantvault.engines.auth._throttle import (
    DEFAULT_LOGIN_FAILURES,
    DEFAULT_LOGIN_WINDOW_SECONDS,
)

__all__ = ["AuthSettings"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The Core's clock and the failed-login limit: `login_failures` failures per (mount,
    role, client address) within `login_window_seconds`, then 429 until the window passed.
    The count is per process (`LoginThrottle`): N server processes allow N times as many.
    `jwks_allow`: the URL prefixes a jwt mount's `jwks_url` may be under (`jwt/_egress`;
    none: any URL that reaches only public addresses)."""

    clock: Clock
    login_failures: int = DEFAULT_LOGIN_FAILURES
    login_window_seconds: int = DEFAULT_LOGIN_WINDOW_SECONDS
    jwks_allow: tuple[str, ...] = ()
