"""The PostgreSQL plugin (`postgresql-database-plugin`): psycopg 3, a bounded pool per config.

The connection URL is validated and taken apart here, and psycopg gets only the parts we
allow (host, port, database, user, password and a few harmless options), never the URL
itself: a query parameter such as `host=/var/run/postgresql` or `passfile=` cannot point the
connection at anything the URL's host does not name. Statements run as the tenant's admin
wrote them (with Vault's `{{name}}`, `{{username}}`, `{{password}}`, `{{expiration}}`), and
the defaults are those of Vault's PostgreSQL plugin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import SplitResult, unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.database._plugin import DatabaseError

__all__ = [
    "DEFAULT_PORT",
    "PLUGIN_NAME",
    "PostgresPlugin",
    "check_connection_url",
    "check_password_authentication",
    "connection_target",
    "redact_url",
    "scram_verifier",
]

PLUGIN_NAME: Final = "postgresql-database-plugin"
DEFAULT_PORT: Final = 5432
_SCHEMES: Final = frozenset({"postgres", "postgresql"})
# The only query parameters a tenant may set: none of them chooses where to connect, which
# file to read or which credentials to use.
_OPTIONS: Final = frozenset({"sslmode", "connect_timeout", "application_name"})
_SSLMODES: Final = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_HOST: Final = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_EXPIRATION_FORMAT: Final = "%Y-%m-%d %H:%M:%S%z"
_PASSWORD_SLOT: Final = "{{password}}"  # noqa: S105 -- the template placeholder
_POOL_TIMEOUT_SECONDS: Final = 5.0
_CONNECT_TIMEOUT_SECONDS: Final = "10"

# `password_authentication`: send the password as it is, or as a SCRAM-SHA-256 verifier
# (PostgreSQL stores a verifier as given, so the plaintext never reaches the server).
PASSWORD_AUTHENTICATIONS: Final = frozenset({"password", "scram-sha-256"})
# PostgreSQL's SCRAM parameters (scram-common.h), as OpenBao's `scram.Hash`.
_SCRAM_SALT_BYTES: Final = 16
_SCRAM_ITERATIONS: Final = 4096

DEFAULT_RENEW: Final = ("ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';",)
DEFAULT_ROTATE: Final = ("ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';",)


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- parsing the port is the check
    except ValueError:
        raise InvalidRequestError("connection_url is not a valid URL") from None
    return parts


def check_connection_url(url: str) -> bool:
    """Refuse (400) a URL we would not connect to; True if it holds a literal password."""
    if not url:
        raise InvalidRequestError("connection_url cannot be empty")
    parts = _split(url)
    if parts.scheme not in _SCHEMES:
        raise InvalidRequestError("connection_url must be a postgres:// or postgresql:// URL")
    host = parts.netloc.rpartition("@")[2].rsplit(":", 1)[0] if parts.netloc else ""
    if not host or not _HOST.fullmatch(host):
        raise InvalidRequestError("connection_url must name a host (no socket path)")
    if "/" in parts.path.strip("/"):
        raise InvalidRequestError("connection_url has an invalid database name")
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        if key not in _OPTIONS:
            raise InvalidRequestError(f"connection_url parameter {key!r} is not allowed")
        if key == "sslmode" and value not in _SSLMODES:
            raise InvalidRequestError("connection_url has an invalid sslmode")
    password = parts.password or ""
    return bool(password) and password != _PASSWORD_SLOT


def connection_target(url: str) -> tuple[str, int]:
    """The (host, port) a checked URL connects to: what the operator's allow-list judges."""
    parts = _split(url)
    return str(parts.hostname or ""), parts.port or DEFAULT_PORT


def check_password_authentication(details: Mapping[str, Any]) -> None:
    """Refuse (400, OpenBao's text) an unknown `password_authentication`."""
    value = details.get("password_authentication")
    if value not in (None, "") and value not in PASSWORD_AUTHENTICATIONS:
        raise InvalidRequestError(f"'{value}' is not a valid password authentication type")


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of `password` (RFC 5802 keys, base64)."""
    salt = salt if salt is not None else secrets.token_bytes(_SCRAM_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.digest(digest, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(digest, b"Server Key", "sha256")
    encode = base64.b64encode
    return (
        f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{encode(salt).decode()}"
        f"${encode(stored_key).decode()}:{encode(server_key).decode()}"
    )


def redact_url(url: str) -> str:
    """The URL with a literal password replaced, as Go's `url.Redacted()` shows it."""
    parts = _split(url)
    if not parts.password or parts.password == _PASSWORD_SLOT:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:xxxxx@{hostport}").geturl()


def _conninfo(url: str, username: str, password: str) -> dict[str, Any]:
    """psycopg's keyword arguments for a checked URL, credentials substituted."""
    check_connection_url(url)
    parts = _split(url)
    user = unquote(parts.username or "")
    secret = unquote(parts.password or "")
    kwargs: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or DEFAULT_PORT,
        "user": username if user == "{{username}}" else user,
        "password": password if secret == _PASSWORD_SLOT else secret,
        "connect_timeout": _CONNECT_TIMEOUT_SECONDS,
    }
    if parts.path.strip("/"):
        kwargs["dbname"] = unquote(parts.path.strip("/"))
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        kwargs[key] = unquote(value)
    return kwargs


def _render(statement: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        statement = statement.replace("{{" + key + "}}", value)
    return statement


def split_statements(statements: Sequence[str]) -> list[str]:
    """Vault's split: each entry on ';' unless it holds a `$$` body; empty parts dropped."""
    queries: list[str] = []
    for statement in statements:
        if "$$" in statement:
            queries.append(statement)
        else:
            queries.extend(part.strip() for part in statement.split(";") if part.strip())
    return queries


class PostgresPlugin:
    """One connection config's pool and statements (see `DatabasePlugin`)."""

    def __init__(self, details: Mapping[str, Any], username: str, password: str) -> None:
        self._kwargs = _conninfo(str(details.get("connection_url") or ""), username, password)
        self._secrets = tuple(s for s in (password, self._kwargs["password"]) if s)
        self._scram = details.get("password_authentication") == "scram-sha-256"
        size = int(details.get("max_open_connections") or 4)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            kwargs=self._kwargs,
            min_size=0,
            max_size=max(size, 1),
            open=False,
            timeout=_POOL_TIMEOUT_SECONDS,
            max_idle=60.0,
            # One worker is plenty for a pool this small, and many configs mean many pools.
            num_workers=1,
        )
        self._opened = False

    def __repr__(self) -> str:
        return f"<PostgresPlugin host={self._kwargs['host']!r}>"

    def _error(self, error: BaseException, *extra: str) -> DatabaseError:
        """The driver's error without any credential of this call in it."""
        text = str(error).strip() or type(error).__name__
        for secret in (*self._secrets, *extra):
            if secret:
                text = text.replace(secret, "[redacted]")
        return DatabaseError(text)

    async def _run(self, queries: Sequence[str], *, secrets: Sequence[str] = ()) -> None:
        """Run queries in one transaction."""
        if not self._opened:
            await self._pool.open(wait=False)
            self._opened = True
        try:
            async with self._pool.connection() as conn, conn.transaction():
                for query in queries:
                    await conn.execute(query.encode())
        except (psycopg.Error, OSError, TimeoutError) as error:
            raise self._error(error, *secrets) from None

    def _sent(self, password: str) -> str:
        """What `{{password}}` becomes: the password, or its SCRAM verifier (OpenBao hashes
        it for `password_authentication = scram-sha-256`, a fresh salt each time)."""
        return scram_verifier(password) if self._scram else password

    async def verify_connection(self) -> None:
        try:
            async with await psycopg.AsyncConnection.connect(**self._kwargs) as conn:
                await conn.execute(b"SELECT 1")
        except (psycopg.Error, OSError) as error:
            raise self._error(error) from None

    async def create_user(
        self,
        statements: Sequence[str],
        rollback: Sequence[str],
        *,
        username: str,
        password: str,
        expiration: datetime,
    ) -> None:
        sent = self._sent(password)
        values = {
            "name": username,
            "username": username,
            "password": sent,
            "expiration": expiration.strftime(_EXPIRATION_FORMAT),
        }
        queries = [_render(q, values) for q in split_statements(statements)]
        try:
            await self._run(queries, secrets=(password, sent))
        except DatabaseError:
            if rollback:
                rollback_queries = [_render(q, values) for q in split_statements(rollback)]
                try:
                    await self._run(rollback_queries, secrets=(password, sent))
                except DatabaseError:
                    pass  # the creation error is the one the caller needs
            raise

    async def renew_user(
        self, statements: Sequence[str], *, username: str, expiration: datetime
    ) -> None:
        values = {
            "name": username,
            "username": username,
            "expiration": expiration.strftime(_EXPIRATION_FORMAT),
        }
        await self._run([_render(q, values) for q in split_statements(statements or DEFAULT_RENEW)])

    async def revoke_user(self, statements: Sequence[str], *, username: str) -> None:
        if statements:
            values = {"name": username, "username": username}
            await self._run([_render(q, values) for q in split_statements(statements)])
            return
        await self._default_revoke(username)

    async def _default_revoke(self, username: str) -> None:
        """Vault's `defaultDeleteUser`: revoke what the role was granted, hand over what it
        owns, then drop it; each step on its own so one failure does not hide the others."""
        if not self._opened:
            await self._pool.open(wait=False)
            self._opened = True
        user = sql.Identifier(username)
        failed: list[str] = []
        try:
            async with self._pool.connection() as conn:
                await conn.set_autocommit(True)
                cursor = await conn.execute(
                    b"SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)
                )
                if await cursor.fetchone() is None:
                    return
                cursor = await conn.execute(
                    b"SELECT DISTINCT table_schema FROM information_schema.role_column_grants "
                    b"WHERE grantee = %s",
                    (username,),
                )
                schemas = [row[0] for row in await cursor.fetchall()]
                cursor = await conn.execute(b"SELECT current_database()")
                row = await cursor.fetchone()
                database = sql.Identifier(str(row[0] if row else "postgres"))
                steps: list[sql.Composed] = []
                for schema in schemas:
                    name = sql.Identifier(schema)
                    steps.append(
                        sql.SQL("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {} FROM {}").format(
                            name, user
                        )
                    )
                    steps.append(sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(name, user))
                steps += [
                    sql.SQL("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM {}").format(
                        user
                    ),
                    sql.SQL(
                        "REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM {}"
                    ).format(user),
                    sql.SQL("REVOKE USAGE ON SCHEMA public FROM {}").format(user),
                    sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(database, user),
                    sql.SQL("REASSIGN OWNED BY {} TO current_user").format(user),
                    sql.SQL("DROP OWNED BY {}").format(user),
                ]
                for step in steps:
                    try:
                        await conn.execute(step)
                    except psycopg.Error as error:
                        failed.append(str(self._error(error)))
                if not failed:
                    await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(user))
        except (psycopg.Error, OSError, TimeoutError) as error:
            raise self._error(error) from None
        if failed:
            raise DatabaseError("; ".join(failed))

    async def set_password(
        self, statements: Sequence[str], *, username: str, password: str
    ) -> None:
        sent = self._sent(password)
        values = {"name": username, "username": username, "password": sent}
        queries = [_render(q, values) for q in split_statements(statements or DEFAULT_ROTATE)]
        await self._run(queries, secrets=(password, sent))

    async def aclose(self) -> None:
        if self._opened:
            await self._pool.close()
