"""Generated credentials: Vault's default PostgreSQL passwords, and usernames from
`username_template` (Go template syntax, `_template`) checked when the config is written.

Passwords follow Vault's default generator when the config names no password policy: 20
characters from `a-z A-Z 0-9 -` with at least one of each class. The default username
template is Vault's PostgreSQL one: `v-<display 8>-<role 8>-<random 20>-<unix time>`.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime
from typing import Final

from tenantvault._exceptions import InvalidRequestError
from tenantvault._random_text import random_text
from tenantvault.engines.database._template import TemplateError, UsernameTemplate

__all__ = [
    "DEFAULT_USERNAME_TEMPLATE",
    "check_username_template",
    "generate_password",
    "generate_username",
]

_LOWER: Final = string.ascii_lowercase
_UPPER: Final = string.ascii_uppercase
_DIGITS: Final = string.digits
_ALPHABET: Final = _LOWER + _UPPER + _DIGITS + "-"
_PASSWORD_LENGTH: Final = 20
_MAX_USERNAME: Final = 63  # PostgreSQL's identifier limit
# Vault's PostgreSQL plugin (`defaultUserNameTemplate`).
DEFAULT_USERNAME_TEMPLATE: Final = (
    '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) '
    "(random 20) (unix_time) | truncate 63 }}"
)


def generate_password() -> str:
    """A fresh password as Vault's default generator makes them."""
    while True:
        value = random_text(_ALPHABET, _PASSWORD_LENGTH)
        if all(any(c in group for c in value) for group in (_LOWER, _UPPER, _DIGITS, "-")):
            return value


def check_username_template(template: str) -> None:
    """Refuse (400, OpenBao's text) a template Go would not parse, or one that fails when
    applied to empty names (as the plugin's Initialize tries it)."""
    try:
        parsed = UsernameTemplate(template or DEFAULT_USERNAME_TEMPLATE)
    except TemplateError as error:
        raise InvalidRequestError(
            f"unable to initialize username template: unable to parse template: {error}"
        ) from None
    try:
        parsed.render(display_name="", role_name="")
    except TemplateError as error:
        raise InvalidRequestError(
            f"invalid username template: unable to apply template: {error}"
        ) from None


def generate_username(template: str, *, display_name: str, role_name: str, now_seconds: int) -> str:
    """A new database username for a dynamic role (at most PostgreSQL's 63 characters)."""
    now = datetime.fromtimestamp(now_seconds, UTC)
    try:
        value = UsernameTemplate(template or DEFAULT_USERNAME_TEMPLATE, now=lambda: now).render(
            display_name=display_name, role_name=role_name
        )
    except TemplateError as error:
        # Checked when the config was written; a template stored earlier may still fail.
        raise InvalidRequestError(f"unable to generate username: {error}") from None
    return value[:_MAX_USERNAME]
