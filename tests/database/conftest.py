"""Fixtures for the database engine and lease tests: one real PostgreSQL for the session, and
the in-process server of `tests/server` (its fixtures, imported)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests._postgres import PostgresCluster, running_postgres
from tests.integration._support import remember_secret
from tests.server.conftest import (  # noqa: F401 -- fixtures, re-exported for these tests
    app,
    client,
    logs,
    root_token,
    settings,
    vault,
)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """The session's PostgreSQL cluster (Debian's package, a throwaway cluster)."""
    with running_postgres(tmp_path_factory.mktemp("postgres")) as cluster:
        yield cluster


@dataclass(frozen=True)
class Admin:
    """A database admin role of its own for one test (root rotation changes its password)."""

    cluster: PostgresCluster
    user: str
    password: str = field(repr=False)

    def config(self, **extra: object) -> dict[str, object]:
        """A `config/<name>` body for this admin."""
        return {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": self.cluster.template_url(),
            "username": self.user,
            "password": self.password,
            **extra,
        }


async def execute(
    dsn: str, query: sql.SQL | sql.Composed, *params: object
) -> list[tuple[Any, ...]]:
    """Run one query (autocommit) and return its rows."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(query, params or None)
        return await cursor.fetchall() if cursor.description else []


async def can_login(cluster: PostgresCluster, user: str, password: str) -> bool:
    """Whether `user` can log in with `password` and run a query."""
    try:
        rows = await execute(cluster.dsn(user=user, password=password), sql.SQL("SELECT 1"))
    except psycopg.OperationalError:
        return False
    return rows == [(1,)]


async def role_exists(cluster: PostgresCluster, user: str) -> bool:
    rows = await execute(cluster.dsn(), sql.SQL("SELECT 1 FROM pg_roles WHERE rolname = %s"), user)
    return bool(rows)


@pytest.fixture
async def admin(postgres: PostgresCluster) -> Admin:
    """A fresh superuser role to configure the engine with."""
    user = f"adm_{uuid.uuid4().hex[:10]}"
    password = remember_secret(f"adm-{uuid.uuid4().hex}")
    await execute(
        postgres.dsn(),
        sql.SQL("CREATE ROLE {} WITH LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)
        ),
    )
    return Admin(postgres, user, password)


async def new_login(cluster: PostgresCluster) -> tuple[str, str]:
    """An existing login role (for static roles): its name and first password."""
    user = f"app_{uuid.uuid4().hex[:10]}"
    password = remember_secret(f"app-{uuid.uuid4().hex}")
    await execute(
        cluster.dsn(),
        sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)
        ),
    )
    return user, password
