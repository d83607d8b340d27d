"""The token of a `tenantvault run`: from the environment or a file, or an AppRole or JWT login;
renewed before it expires and replaced by a fresh login when it can no longer be renewed."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantvault.cli._http import APIError, Client, ConnectError, Settings

__all__ = ["LoginError", "LoginMethod", "Session", "read_secret_file"]

# Renew when this share of the token's TTL has passed, as Vault Agent does (2/3).
_RENEW_AT = 2 / 3
# A renewal that gives back less than this share of the TTL the token first had means the
# token is near its max TTL: log in again (when the method can) rather than let it run out.
_SHORT_RENEWAL = 1 / 2


class LoginError(Exception):
    """The run cannot obtain or keep a token; the message never quotes a credential."""


def read_secret_file(path: Path, *, what: str) -> str:
    """A credential from a file (role-id, secret-id, JWT, token), surrounding blanks dropped."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise LoginError(f"cannot read the {what} from {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise LoginError(f"cannot read the {what} from {path}: not UTF-8 text") from None
    if not text:
        raise LoginError(f"the {what} file {path} is empty")
    return text


@dataclass(frozen=True, slots=True)
class LoginMethod:
    """How to log in: `token` (given, not renewable by login), `approle` or `jwt` at `mount`."""

    kind: str
    mount: str = ""
    role: str = ""
    role_id: str = dataclasses.field(default="", repr=False)
    # The secret-id, unwrapped once at start when it came wrapped; kept in memory only.
    secret_id: str = dataclasses.field(default="", repr=False)
    # Re-read at every login: projected workload identity tokens are rotated on disk.
    jwt_file: Path | None = None

    @property
    def can_login(self) -> bool:
        return self.kind in ("approle", "jwt")

    def body(self) -> dict[str, str]:
        if self.kind == "approle":
            return {"role_id": self.role_id, "secret_id": self.secret_id}
        if self.jwt_file is None:
            raise LoginError("no JWT file")
        return {"role": self.role, "jwt": read_secret_file(self.jwt_file, what="JWT")}


def unwrap_secret_id(settings: Settings, wrapping_token: str) -> str:
    """The secret-id inside a wrapping token (used up by this call)."""
    client = Client(dataclasses.replace(settings, token=wrapping_token))
    try:
        reply = client.request("POST", "sys/wrapping/unwrap", body={})
    except APIError as error:
        detail = "; ".join(error.errors) or f"HTTP {error.status}"
        raise LoginError(f"cannot unwrap the wrapped secret-id: {detail}") from None
    except ConnectError as error:
        raise LoginError(f"cannot unwrap the wrapped secret-id: {error.render()}") from None
    data = reply.body.get("data") if isinstance(reply.body, dict) else None
    secret_id = data.get("secret_id") if isinstance(data, dict) else None
    if not isinstance(secret_id, str) or not secret_id:
        raise LoginError("the wrapped response holds no secret_id")
    return secret_id


class Session:
    """Holds the run's token: `settings` carries it; `maintain()` renews or replaces it."""

    def __init__(
        self,
        settings: Settings,
        method: LoginMethod,
        *,
        on_secret: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = settings
        self._method = method
        self._on_secret = on_secret
        self._clock = clock
        self.settings = settings
        self._ttl = 0
        self._renewable = False
        self._obtained = 0.0

    @property
    def owns_token(self) -> bool:
        """Whether the token came from a login of this run (and is revoked at its end)."""
        return self._method.can_login

    def start(self) -> None:
        """Log in, or look up the given token's TTL; raises `LoginError`."""
        if self._method.can_login:
            self.login()
            return
        if self._base.token is None:
            raise LoginError(
                "no token: set VAULT_TOKEN, write ~/.vault-token or pass --token-file, "
                "or log in with --role-id-file/--secret-id-file or --jwt-file"
            )
        data = self._call("GET", "auth/token/lookup-self", doing="looking up the token")
        info = data.get("data") if isinstance(data, dict) else None
        info = info if isinstance(info, dict) else {}
        ttl = int(info.get("ttl") or 0)
        if ttl <= 0 and info.get("expire_time"):
            # Less than a second left (the TTL is whole seconds): due now, not "never expires".
            ttl = 1
        self._set(ttl, bool(info.get("renewable")))

    def login(self) -> None:
        """A fresh login with the method; the new token replaces the old one."""
        method = self._method
        path = f"auth/{method.mount}/login"
        client = Client(dataclasses.replace(self._base, token=None))
        try:
            reply = client.request("POST", path, body=method.body(), authenticated=False)
        except APIError as error:
            detail = "; ".join(error.errors) or f"HTTP {error.status}"
            raise LoginError(
                f"{method.kind} login at auth/{method.mount} failed: {detail}"
            ) from None
        except ConnectError as error:
            raise LoginError(f"{method.kind} login failed: {error.render()}") from None
        auth = reply.body.get("auth") if isinstance(reply.body, dict) else None
        token = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(auth, dict) or not isinstance(token, str) or not token:
            raise LoginError(f"{method.kind} login at auth/{method.mount} returned no token")
        self._on_secret(token)
        self.settings = dataclasses.replace(self._base, token=token)
        self._set(int(auth.get("lease_duration") or 0), bool(auth.get("renewable")))

    def _set(self, ttl: int, renewable: bool) -> None:
        self._ttl = ttl
        self._renewable = renewable
        self._obtained = self._clock()

    def seconds_until_due(self) -> float | None:
        """Seconds until the token should be renewed or replaced; None if it never expires."""
        if self._ttl <= 0:
            return None
        return max(0.0, self._obtained + self._ttl * _RENEW_AT - self._clock())

    def maintain(self) -> str | None:
        """Renew or replace the token if it is due; a line for the log saying what was done."""
        due = self.seconds_until_due()
        if due is None or due > 0:
            return None
        first_ttl = self._ttl
        if self._renewable:
            try:
                data = self._call("POST", "auth/token/renew-self", doing="renewing the token")
            except LoginError:
                if not self._method.can_login:
                    raise
                self.login()
                return "the token could not be renewed: logged in again"
            auth = data.get("auth") if isinstance(data, dict) else None
            auth = auth if isinstance(auth, dict) else {}
            ttl = int(auth.get("lease_duration") or 0)
            self._set(ttl, bool(auth.get("renewable")))
            if not (self._method.can_login and ttl < first_ttl * _SHORT_RENEWAL):
                return f"token renewed for {ttl}s"
        if self._method.can_login:
            self.login()
            return "the token is near its maximum TTL: logged in again"
        raise LoginError("the token cannot be renewed and expires soon; no login method to renew")

    def revoke(self) -> None:
        """Revoke the token of our own login (best effort: it expires anyway)."""
        if not self.owns_token or self.settings.token is None:
            return
        try:
            self._call("POST", "auth/token/revoke-self", doing="revoking the token")
        except LoginError:
            pass  # the token dies at its TTL; nothing else depends on this call

    def _call(self, method: str, path: str, *, doing: str) -> Any:
        try:
            return (
                Client(self.settings)
                .request(method, path, body={} if method == "POST" else None)
                .body
            )
        except APIError as error:
            detail = "; ".join(error.errors) or f"HTTP {error.status}"
            raise LoginError(f"error {doing}: {detail}") from None
        except ConnectError as error:
            raise LoginError(f"error {doing}: {error.render()}") from None
