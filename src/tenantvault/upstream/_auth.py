"""tenantvault's own upstream credential: a token or an AppRole login, renewed by a service.

`UpstreamAuth` holds the current token for tenantvault's own calls (its records, creating
tenant namespaces and tenant-scoped tokens). Its `run()` is a supervised service
(`tenantvault.services`): it renews the token at ~2/3 of its TTL and, when a renewal fails
or the token reaches its max TTL, logs in again — AppRole with the role_id and secret_id
read from their files again, or, for a plain token, the token file read again (an agent
such as Vault Agent or a Kubernetes secret may have replaced it). `report()` is what
`sys/health` shows under `services.upstream-auth.detail`: method, state, seconds left and
counters — never the token, the secret_id or an upstream message.

A token that never expires (TTL 0, e.g. a root token in a lab) is looked up once an hour
only to notice a revocation. Without the service (the Python API, `tenantvault.open`, runs
no supervisor), `ensure_fresh()` — which the record backend awaits before each call —
renews inline, once, when 2/3 of the TTL have passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from tenantvault._exceptions import (
    BackendUnavailableError,
    ConfigurationError,
    TenantVaultError,
)
from tenantvault.upstream._client import UpstreamClient

__all__ = ["UpstreamAuth", "UpstreamCredentials"]

logger = logging.getLogger("tenantvault.upstream.auth")

# Renew when this share of the TTL has passed: leaves a third of the TTL for retries.
_RENEW_AT: Final = 2 / 3
_NON_EXPIRING_CHECK_SECONDS: Final = 3600.0
# After a failed renewal and login, try again this soon (the supervisor backs off beyond).
_RETRY_SECONDS: Final = 1.0
_MIN_SLEEP_SECONDS: Final = 0.2

Method = Literal["token", "approle"]


@dataclass(frozen=True, slots=True)
class UpstreamCredentials:
    """How tenantvault authenticates upstream: exactly one of a token, a token file, or an
    AppRole (role_id file + secret_id file, login at `approle_mount`). Secrets stay out of repr.
    """

    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    role_id_file: Path | None = None
    secret_id_file: Path | None = None
    approle_mount: str = "approle"

    def __post_init__(self) -> None:
        approle = self.role_id_file is not None or self.secret_id_file is not None
        given = sum((self.token is not None, self.token_file is not None, approle))
        if given != 1:
            raise ConfigurationError(
                "upstream authentication needs exactly one of: a token "
                "(TENANTVAULT_UPSTREAM_TOKEN), --upstream-token-file, or AppRole "
                "(--upstream-role-id-file and --upstream-secret-id-file)"
            )
        if approle and (self.role_id_file is None or self.secret_id_file is None):
            raise ConfigurationError("AppRole needs both a role_id file and a secret_id file")

    @property
    def method(self) -> Method:
        """'approle' or 'token'."""
        return "approle" if self.role_id_file is not None else "token"


def _read_secret_file(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the upstream {what} file {path}") from exc
    if not text:
        raise ConfigurationError(f"the upstream {what} file {path} is empty")
    return text


class UpstreamAuth:
    """The current upstream token for tenantvault's own calls, and the service renewing it."""

    def __init__(
        self,
        client: UpstreamClient,
        credentials: UpstreamCredentials,
        *,
        namespace: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._namespace = namespace
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None
        self._expires_at: float | None = None  # monotonic; None: never expires
        self._renewable = False
        self._state = "new"
        self._renewals = 0
        self._logins = 0
        self._failures = 0
        self._last_error: str | None = None
        self._wake = asyncio.Event()
        self._login_lock = asyncio.Lock()
        self._inline_lock = asyncio.Lock()
        self._renew_due: float | None = None  # monotonic; None: nothing to renew
        self._serviced = 0  # how many `run()` are running (then they renew, not callers)

    def __repr__(self) -> str:
        return f"UpstreamAuth(method={self._credentials.method}, state={self._state})"

    @property
    def token(self) -> str:
        """The token to send now; `BackendUnavailableError` before the first login."""
        if self._token is None:
            raise BackendUnavailableError("not authenticated to the upstream yet")
        return self._token

    def report(self) -> dict[str, Any]:
        """What sys/health shows: method, state, seconds of TTL left, counters, last error type."""
        left = None if self._expires_at is None else max(0.0, self._expires_at - self._clock())
        return {
            "method": self._credentials.method,
            "state": self._state,
            "ttl_seconds_left": None if left is None else round(left, 1),
            "renewable": self._renewable,
            "renewals": self._renewals,
            "logins": self._logins,
            "failures": self._failures,
            "last_error": self._last_error,
        }

    def refused(self) -> None:
        """The upstream refused our token (403): renew or log in again now."""
        self._wake.set()

    async def login(self) -> None:
        """Obtain a token (AppRole login or the configured token) and learn its TTL."""
        async with self._login_lock:
            credentials = self._credentials
            if credentials.method == "approle":
                assert credentials.role_id_file is not None  # noqa: S101 -- checked in __post_init__
                assert credentials.secret_id_file is not None  # noqa: S101 -- same
                body = await self._client.write(
                    f"auth/{credentials.approle_mount}/login",
                    {
                        "role_id": _read_secret_file(credentials.role_id_file, "role_id"),
                        "secret_id": _read_secret_file(credentials.secret_id_file, "secret_id"),
                    },
                    token=None,
                    namespace=self._namespace,
                )
                auth = (body or {}).get("auth")
                if not isinstance(auth, dict) or not isinstance(auth.get("client_token"), str):
                    raise BackendUnavailableError("upstream AppRole login returned no token")
                self._token = auth["client_token"]
                self._set_ttl(auth.get("lease_duration"), auth.get("renewable"))
            else:
                if credentials.token_file is not None:
                    self._token = _read_secret_file(credentials.token_file, "token")
                else:
                    self._token = credentials.token
                await self._lookup()
            self._logins += 1
            self._state = "ok"
            self._last_error = None

    async def _lookup(self) -> None:
        body = await self._client.read(
            "auth/token/lookup-self", token=self._token, namespace=self._namespace
        )
        data = (body or {}).get("data")
        if not isinstance(data, dict):
            raise BackendUnavailableError("upstream token lookup failed")
        self._set_ttl(data.get("ttl"), data.get("renewable"))

    async def renew(self) -> None:
        """Renew the current token (`auth/token/renew-self`)."""
        body = await self._client.write(
            "auth/token/renew-self", {}, token=self._token, namespace=self._namespace
        )
        auth = (body or {}).get("auth")
        if not isinstance(auth, dict):
            raise BackendUnavailableError("upstream token renewal returned no lease")
        self._set_ttl(auth.get("lease_duration"), auth.get("renewable"))
        self._renewals += 1
        self._state = "ok"

    def _set_ttl(self, ttl: object, renewable: object) -> None:
        seconds = ttl if isinstance(ttl, int | float) and not isinstance(ttl, bool) else 0
        now = self._clock()
        self._expires_at = now + seconds if seconds > 0 else None
        self._renew_due = now + seconds * _RENEW_AT if seconds > 0 else None
        self._renewable = renewable is True

    async def ensure_fresh(self) -> None:
        """Renew (or log in again) inline if 2/3 of the TTL have passed and no service runs.

        A failure is logged and the current token kept: it may still be valid, and the call
        that follows gets the upstream's own answer.
        """
        due = self._renew_due
        if self._serviced or due is None or self._clock() < due:
            return
        async with self._inline_lock:
            due = self._renew_due
            if self._serviced or due is None or self._clock() < due:
                return  # another caller renewed it meanwhile
            try:
                await self._refresh(renew=self._renewable, pause=False)
            except TenantVaultError:
                pass  # counted and logged by _refresh

    async def _wait(self, seconds: float) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def run(self) -> None:
        """The service: renew at ~2/3 TTL, log in again when renewal fails; runs until cancelled."""
        self._serviced += 1
        try:
            await self._run()
        finally:
            self._serviced -= 1

    async def _run(self) -> None:
        while True:
            if self._token is None:
                await self._refresh(renew=False)
            if self._expires_at is None:
                await self._wait(_NON_EXPIRING_CHECK_SECONDS)
                await self._refresh(renew=False)
                continue
            # Right after a renewal or login, what is left is the whole TTL: waiting 2/3 of it
            # renews at 2/3 TTL and leaves a third for retries before the token expires.
            left = self._expires_at - self._clock()
            await self._wait(max(_MIN_SLEEP_SECONDS, left * _RENEW_AT))
            await self._refresh(renew=self._renewable)

    async def _refresh(self, *, renew: bool, pause: bool = True) -> None:
        """Renew if possible, else (or if that fails) log in again; raise if both fail
        (after a short pause when `pause`, so a restarted service does not spin)."""
        if renew:
            try:
                await self.renew()
                if self._expires_at is not None and self._expires_at - self._clock() > 1.0:
                    return
                # The renewal hit the token's max TTL: a fresh login is needed now.
            except TenantVaultError as error:
                self._note_failure(error)
        self._state = "logging-in"
        try:
            await self.login()
        except TenantVaultError as error:
            # The supervisor restarts the service with backoff; the old token, if still
            # valid, keeps serving meanwhile.
            self._note_failure(error)
            self._state = "failed"
            logger.error("upstream login failed (%s)", type(error).__name__)
            if pause:
                await self._sleep(_RETRY_SECONDS)
            raise

    def _note_failure(self, error: Exception) -> None:
        self._failures += 1
        self._last_error = type(error).__name__
        logger.warning("upstream token renewal failed (%s)", self._last_error)
