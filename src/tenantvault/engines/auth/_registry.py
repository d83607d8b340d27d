"""The auth method types, registered once: `type` → factory (the one list of them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from tenantvault.engines._protocol import Engine
from tenantvault.engines.auth._settings import AuthSettings
from tenantvault.engines.auth.approle import AppRoleEngine
from tenantvault.engines.auth.jwt import JwtEngine

__all__ = ["AUTH_METHODS", "AuthSettings", "auth_engines"]


# Each factory takes an `AuthSettings`; a new auth method adds one line here.
AUTH_METHODS: Final[Mapping[str, Callable[[AuthSettings], Engine]]] = {
    "approle": AppRoleEngine,
    "jwt": JwtEngine,
}


def auth_engines(settings: AuthSettings) -> dict[str, Engine]:
    """One engine per registered auth method type."""
    return {kind: factory(settings) for kind, factory in AUTH_METHODS.items()}
