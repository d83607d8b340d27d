"""Generated credentials: Vault's default PostgreSQL usernames and passwords.

Passwords follow Vault's default generator: 20 characters from `a-z A-Z 0-9 -` with at
least one of each class. Usernames follow `username_template`, a small subset of Vault's Go
templates that is checked when the config is written: `{{.DisplayName}}`, `{{.RoleName}}`,
`{{random N}}`, `{{unix_time}}`, each optionally piped through `truncate N`, `lowercase` or
`uppercase`; the default is Vault's `v-<display 8>-<role 8>-<random 20>-<unix time>`.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Final

from tenantvault._exceptions import InvalidRequestError

__all__ = ["check_username_template", "generate_password", "generate_username"]

_LOWER: Final = string.ascii_lowercase
_UPPER: Final = string.ascii_uppercase
_DIGITS: Final = string.digits
_ALPHABET: Final = _LOWER + _UPPER + _DIGITS + "-"
_PASSWORD_LENGTH: Final = 20
_MAX_USERNAME: Final = 63  # PostgreSQL's identifier limit
_ACTION: Final = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_TERM: Final = re.compile(r"\.DisplayName|\.RoleName|random (\d{1,3})|unix_time")
_PIPE: Final = re.compile(r"truncate (\d{1,3})|lowercase|uppercase")


def generate_password() -> str:
    """A fresh password as Vault's default generator makes them."""
    while True:
        value = "".join(secrets.choice(_ALPHABET) for _ in range(_PASSWORD_LENGTH))
        if all(any(c in group for c in value) for group in (_LOWER, _UPPER, _DIGITS, "-")):
            return value


def _random(length: int) -> str:
    return "".join(secrets.choice(_LOWER + _UPPER + _DIGITS) for _ in range(length))


def _evaluate(action: str, *, display_name: str, role_name: str, now_seconds: int) -> str:
    term, *pipes = (part.strip() for part in action.split("|"))
    match = _TERM.fullmatch(term)
    if match is None:
        raise InvalidRequestError(f"unable to initialize username template: unsupported {term!r}")
    if term == ".DisplayName":
        value = display_name
    elif term == ".RoleName":
        value = role_name
    elif term == "unix_time":
        value = str(now_seconds)
    else:
        value = _random(int(match.group(1)))
    for pipe in pipes:
        found = _PIPE.fullmatch(pipe)
        if found is None:
            raise InvalidRequestError(
                f"unable to initialize username template: unsupported {pipe!r}"
            )
        if pipe == "lowercase":
            value = value.lower()
        elif pipe == "uppercase":
            value = value.upper()
        else:
            value = value[: int(found.group(1))]
    return value


def _render(template: str, **values: str | int) -> str:
    display_name, role_name = str(values["display_name"]), str(values["role_name"])
    now_seconds = int(values["now_seconds"])
    return _ACTION.sub(
        lambda m: _evaluate(
            m.group(1), display_name=display_name, role_name=role_name, now_seconds=now_seconds
        ),
        template,
    )


def check_username_template(template: str) -> None:
    """Refuse (400) a template outside the supported subset."""
    if template:
        _render(template, display_name="token", role_name="role", now_seconds=0)


def generate_username(template: str, *, display_name: str, role_name: str, now_seconds: int) -> str:
    """A new database username for a dynamic role."""
    if template:
        value = _render(
            template, display_name=display_name, role_name=role_name, now_seconds=now_seconds
        )
    else:
        value = f"v-{display_name[:8]}-{role_name[:8]}-{_random(20)}-{now_seconds}"
    return value[:_MAX_USERNAME]
