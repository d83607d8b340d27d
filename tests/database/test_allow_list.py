"""The operator's `--database-allow` list: a tenant's connection config reaches only the
hosts and ports the operator named (no SSRF through `connection_url`), on a real PostgreSQL."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault._exceptions import ConfigurationError
from tenantvault.cli import _serve
from tenantvault.server import create_app
from tests._postgres import PostgresCluster
from tests.database.conftest import Admin
from tests.server.conftest import BASE_URL, Vault


@pytest.fixture
async def allowed(postgres: PostgresCluster, root_token: str) -> AsyncIterator[Vault]:
    """A server whose operator allows only the test cluster's host and port."""
    settings = ServerSettings(
        dev=True,
        dev_root_token=root_token,
        database_allow=(f"{postgres.host.upper()}:{postgres.port}",),
    )
    async with (
        create_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        response = await client.post(
            "/v1/sys/mounts/database",
            headers={"X-Vault-Token": root_token},
            json={"type": "database"},
        )
        assert response.status_code == 204, response.text
        yield Vault(client, root_token)


async def test_an_allowed_host_is_accepted(allowed: Vault, admin: Admin) -> None:
    response = await allowed.root("POST", "database/config/pg", json=admin.config())
    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    "url",
    [
        # Another port of the allowed host, another host, and the default port (5432).
        "postgresql://{{username}}:{{password}}@HOST:1/postgres",
        "postgresql://{{username}}:{{password}}@localhost.localdomain:PORT/postgres",
        "postgresql://{{username}}:{{password}}@HOST/postgres",
        "postgresql://{{username}}:{{password}}@[::1]:PORT/postgres",
    ],
)
async def test_a_url_elsewhere_is_refused_with_400(
    allowed: Vault, admin: Admin, postgres: PostgresCluster, url: str
) -> None:
    """Refused before any connection is tried (also with `verify_connection=false`), and
    nothing is stored."""
    url = url.replace("HOST", postgres.host).replace("PORT", str(postgres.port))
    body = admin.config(connection_url=url, verify_connection=False)
    response = await allowed.root("POST", "database/config/pg", json=body)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "errors": [
            "error creating database object: connection_url points to a host or port the "
            "operator has not allowed (serve --database-allow)"
        ]
    }
    assert (await allowed.root("GET", "database/config/pg")).status_code == 404


async def test_without_a_list_any_host_is_accepted(vault: Vault, admin: Admin) -> None:
    """The default (documented in README): a tenant admin may name any host."""
    await vault.root("POST", "sys/mounts/database", json={"type": "database"})
    url = admin.cluster.template_url().replace(f":{admin.cluster.port}/", ":1/")
    body = admin.config(connection_url=url, verify_connection=False)
    response = await vault.root("POST", "database/config/pg", json=body)
    assert response.status_code == 204, response.text


@pytest.mark.parametrize("entry", ["db.example.com/x", "user@db.example.com", "db:99999", ""])
def test_serve_refuses_a_bad_entry(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="--database-allow"):
        ServerSettings(database_allow=(entry,))


def test_serve_takes_repeated_flags_and_a_toml_list(tmp_path: Path) -> None:
    root = argparse.ArgumentParser(prog="tenantvault")
    _serve.add_parser(root.add_subparsers())
    args = root.parse_args(
        ["serve", "--database-allow", "db1.internal", "--database-allow", "10.0.0.7:6432"]
    )
    assert _serve._settings(args, {}).database_allow == ("db1.internal", "10.0.0.7:6432")
    config = tmp_path / "tenantvault.toml"
    config.write_text('database-allow = ["db1.internal:5432", "[fd00::7]"]\n')
    args = root.parse_args(["serve", "--config", str(config)])
    assert _serve._settings(args, {}).database_allow == ("db1.internal:5432", "[fd00::7]")
    env = {"TENANTVAULT_DATABASE_ALLOW": "db1.internal db2.internal:6000"}
    assert _serve._settings(root.parse_args(["serve"]), env).database_allow == (
        "db1.internal",
        "db2.internal:6000",
    )
