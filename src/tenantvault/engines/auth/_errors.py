"""The errors auth methods answer with besides the common tree: Vault's plain errors and 429."""

from __future__ import annotations

from tenantvault._exceptions import RequestError, TenantVaultError

__all__ = ["LoginThrottledError", "PlainError"]


class PlainError(TenantVaultError):
    """An error Vault's handler returns as a plain Go `error` rather than a 400 response:
    the client sees HTTP 500 with the text (`role_id already in use`, `missing role_id`).
    Kept as Vault answers, so that clients which match on status behave the same."""

    status = 500


class LoginThrottledError(RequestError):
    """Too many failed logins for one (mount, role, client address) within the window (429).

    Vault locks such a user out with 403 `permission denied` (user lockout); tenantvault
    answers 429 so that clients back off instead of treating it as a bad credential.
    """

    status = 429

    def __init__(self) -> None:
        super().__init__("too many failed login attempts; retry later")
