"""The interface a database implements for the database engine, and the plugins by name.

A plugin owns the connections of one `config/<name>` (a bounded pool) and runs the role's
statements. PostgreSQL is the first implementation (`_postgres`); another database adds a
class with these methods and one entry in `PLUGINS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from tenantvault._exceptions import TenantVaultError

__all__ = ["DatabaseError", "DatabasePlugin", "PluginFactory"]


class DatabaseError(TenantVaultError):
    """The database refused or could not be reached. Its text is the driver's, with every
    credential the call used removed; Vault answers these as plain errors (500)."""

    status = 500


class DatabasePlugin(Protocol):
    """One connection configuration's access to its database."""

    async def verify_connection(self) -> None:
        """Connect once and run a trivial query; `DatabaseError` if that fails."""
        ...

    async def create_user(
        self,
        statements: Sequence[str],
        rollback: Sequence[str],
        *,
        username: str,
        password: str,
        expiration: datetime,
    ) -> None:
        """Run the creation statements (the rollback ones if they fail)."""
        ...

    async def renew_user(
        self, statements: Sequence[str], *, username: str, expiration: datetime
    ) -> None:
        """Move the user's expiry (the default statement when `statements` is empty)."""
        ...

    async def revoke_user(self, statements: Sequence[str], *, username: str) -> None:
        """Remove the user (the default drop when `statements` is empty); idempotent."""
        ...

    async def set_password(
        self, statements: Sequence[str], *, username: str, password: str
    ) -> None:
        """Change an existing user's password: static roles and root rotation."""
        ...

    async def aclose(self) -> None:
        """Close the pool."""
        ...


PluginFactory = Callable[[Mapping[str, Any], str, str], DatabasePlugin]
"""Builds a plugin from the stored connection details, admin username and password."""
