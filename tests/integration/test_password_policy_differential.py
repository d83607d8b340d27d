"""The differential test for password policies and their use by the database engine: the
same requests to a tenantvault tenant and to a namespace of a real `bao server -dev` (both
against the same real PostgreSQL) get the same statuses, texts and `data` shapes; generated
passwords and usernames naturally differ and are compared by shape."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._postgres import PostgresCluster, running_postgres
from tests.database.conftest import Admin
from tests.integration._support import remember_secret
from tests.integration.conftest import OpenBaoServer, TenantVaultServer
from tests.integration.test_database_differential import CREATE, _admin, _named
from tests.integration.test_differential import Step, new_pair

pytestmark = pytest.mark.integration

POLICY = 'length = 24\nrule "charset" {\n  charset = "abcdef"\n  min-chars = 2\n}\n'
_LEASE = re.compile(r"database/creds/[a-z]+/[A-Za-z0-9]{24}(\.[A-Za-z0-9]+)?\Z")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    with running_postgres(tmp_path_factory.mktemp("postgres-pw-differential")) as cluster:
        yield cluster


def _shape(value: Any, key: str = "") -> Any:
    """Passwords become their length and alphabet check; usernames and lease ids markers."""
    if isinstance(value, dict):
        return {k: _shape(v, k) for k, v in value.items() if k != "request_id"}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str):
        if key == "password":
            remember_secret(value)
            return f"<password {len(value)} {'policy' if set(value) <= set('abcdef') else 'other'}>"
        if key == "username":
            return f"<username {value.split('-')[0]}>"
        if _LEASE.match(value):
            return "<lease>"
    if key == "lease_duration" and isinstance(value, int):
        return "<ttl>" if value > 0 else 0
    return value


def _steps(admin: Admin) -> list[Step]:
    encoded = base64.b64encode(POLICY.encode()).decode()
    return [
        Step("LIST", "sys/policies/password"),  # 0
        Step("GET", "sys/policies/password/p"),
        Step("GET", "sys/policies/password/p/generate"),
        Step("POST", "sys/policies/password/p", {"policy": POLICY}),
        Step("GET", "sys/policies/password/p"),
        Step("GET", "sys/policies/password/p/generate"),  # 5
        Step("LIST", "sys/policies/password"),
        Step("POST", "sys/policies/password/b", {"policy": encoded}),
        Step("GET", "sys/policies/password/b"),
        Step("POST", "sys/policies/password/bad", {}),
        Step("POST", "sys/policies/password/bad", {"policy": "length = 20"}),  # 10
        Step(
            "POST",
            "sys/policies/password/bad",
            {"policy": 'length = 3\nrule "charset" {\n charset = "ab"\n}'},
        ),
        Step(
            "POST",
            "sys/policies/password/bad",
            {"policy": 'length = 4\nrule "charset" {\n charset = "a"\n min-chars = 5\n}'},
        ),
        Step("POST", "sys/policies/password/p/generate"),
        Step("GET", "sys/policies/password"),
        Step("DELETE", "sys/policies/password/b"),  # 15
        Step("DELETE", "sys/policies/password/b"),
        Step("GET", "sys/policies/password/b"),
        # The database engine: a config naming a policy the namespace does not have ...
        Step("POST", "sys/mounts/database", {"type": "database"}),
        Step(
            "POST",
            "database/config/pg",
            admin.config(allowed_roles=["r"], password_policy="missing"),
        ),
        Step("POST", "database/roles/r", {"db_name": "pg", "creation_statements": [CREATE]}),  # 20
        Step("GET", "database/creds/r"),
        Step("GET", "database/config/pg"),
        # ... and one it has.
        Step("POST", "database/config/pg", {"password_policy": "p", "verify_connection": False}),
        Step("GET", "database/creds/r"),
        Step("POST", "sys/leases/revoke-prefix/database/creds/r"),  # 25
    ]


async def test_password_policies_match_openbao(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
    postgres: PostgresCluster,
) -> None:
    pair = new_pair(clients, tenantvault_server, openbao_server)
    ours_admin, bao_admin = await _admin(postgres, "tv"), await _admin(postgres, "bao")
    names = {ours_admin.user: "<admin>", bao_admin.user: "<admin>"}
    differences = []
    ours = [pair.ours.send(step) for step in _steps(ours_admin)]
    theirs = [pair.bao.send(step) for step in _steps(bao_admin)]
    for index, (mine, bao) in enumerate(zip(ours, theirs, strict=True)):
        a, b = _shape(_named(mine.body, names)), _shape(_named(bao.body, names))
        if (mine.status, a) != (bao.status, b):
            differences.append(
                f"#{index}\n   tenantvault {mine.status} {a}\n   openbao     {bao.status} {b}"
            )
    assert not differences, "\n".join(differences)
