"""The differential test for `username_template` and `password_authentication`: bad values
get the same 400 and text from tenantvault and a real `bao server -dev`, a custom template
renders the same usernames on the same real PostgreSQL (their random parts compared by
shape), and SCRAM-hashed passwords log in the same."""

from __future__ import annotations

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

BAD = [
    "{{nope}}",
    "{{ .DisplayName",
    "{{ }}",
    "{{ .Foo }}",
    "{{ .RoleName | truncate 0 }}",
    "{{ .RoleName | truncate_sha256 8 }}",
    "{{ random }}",
    '{{ random "x" }}',
    '{{ .DisplayName | replace "a" }}',
    "{{ uuid 3 }}",
    '{{ .RoleName | truncate "3" }}',
]
TEMPLATE = (
    '{{ printf "app_%s_%s_%s" (.RoleName | uppercase) (.DisplayName | truncate_sha256 9) '
    "(random 6 | lowercase) }}"
)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    with running_postgres(tmp_path_factory.mktemp("postgres-template-differential")) as cluster:
        yield cluster


def _shape(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _shape(v, k) for k, v in value.items() if k not in ("request_id", "lease_id")}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str) and key == "password":
        remember_secret(value)
        return "<password>"
    if isinstance(value, str) and key == "username":
        return re.sub(r"_[a-z0-9]{6}\Z", "_<random>", value)
    return value


def _steps(admin: Admin) -> list[Step]:
    broken = admin.config(
        connection_url=admin.cluster.template_url().replace(f":{admin.cluster.port}/", ":1/"),
        verify_connection=False,
    )
    return [
        Step("POST", "sys/mounts/database", {"type": "database"}),
        *(Step("POST", "database/config/bad", {**broken, "username_template": t}) for t in BAD),
        Step("GET", "database/config/bad"),
        Step(
            "POST",
            "database/config/pg",
            admin.config(allowed_roles=["rw"], username_template=TEMPLATE),
        ),
        Step("POST", "database/roles/rw", {"db_name": "pg", "creation_statements": [CREATE]}),
        Step("GET", "database/creds/rw"),
        Step("GET", "database/config/pg"),
        Step("POST", "sys/leases/revoke-prefix/database/creds/rw"),
        Step("POST", "database/config/bad", {**broken, "password_authentication": "md5"}),
        Step("POST", "database/config/pg", {"password_authentication": "scram-sha-256"}),
        Step("GET", "database/creds/rw"),
        Step("POST", "sys/leases/revoke-prefix/database/creds/rw"),
    ]


async def test_username_templates_match_openbao(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
    postgres: PostgresCluster,
) -> None:
    pair = new_pair(clients, tenantvault_server, openbao_server)
    ours_admin, bao_admin = await _admin(postgres, "tv"), await _admin(postgres, "bao")
    names = {ours_admin.user: "<admin>", bao_admin.user: "<admin>"}
    ours = [pair.ours.send(step) for step in _steps(ours_admin)]
    theirs = [pair.bao.send(step) for step in _steps(bao_admin)]
    differences = []
    for index, (mine, bao) in enumerate(zip(ours, theirs, strict=True)):
        a, b = _shape(_named(mine.body, names)), _shape(_named(bao.body, names))
        if (mine.status, a) != (bao.status, b):
            differences.append(
                f"#{index}\n   tenantvault {mine.status} {a}\n   openbao     {bao.status} {b}"
            )
    assert not differences, "\n".join(differences)
