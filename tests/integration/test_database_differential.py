"""The differential test extended to the database engine and leases: the same requests, sent
as raw HTTP to a tenantvault tenant and to a namespace of a real `bao server -dev`, both
configured against the same real PostgreSQL, get the same statuses and `data` shapes.
Credentials, lease ids and times naturally differ and are compared by shape."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from psycopg import sql

from tests._postgres import PostgresCluster, running_postgres
from tests.database.conftest import Admin, execute, new_login
from tests.integration._support import remember_secret
from tests.integration.conftest import OpenBaoServer, TenantVaultServer
from tests.integration.test_differential import Outcome, Step, Target, new_pair

pytestmark = pytest.mark.integration

CREATE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
_LEASE = re.compile(r"(database/creds/[a-z]+)/[A-Za-z0-9]{24}(\.[A-Za-z0-9]+)?\Z")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT")
_SHAPED = {"username", "password", "id", "lease_id"}


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster both servers connect to."""
    with running_postgres(tmp_path_factory.mktemp("postgres-differential")) as cluster:
        yield cluster


async def _admin(cluster: PostgresCluster, label: str) -> Admin:
    user = f"{label}_{uuid.uuid4().hex[:8]}"
    password = remember_secret(f"{label}-{uuid.uuid4().hex}")
    await execute(
        cluster.dsn(),
        sql.SQL("CREATE ROLE {} WITH LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)
        ),
    )
    return Admin(cluster, user, password)


def _shape(value: Any, key: str = "") -> Any:
    """Credentials, ids and times become markers; numbers of seconds are kept when exact."""
    if isinstance(value, dict):
        return {k: _shape(v, k) for k, v in value.items() if k != "request_id"}
    if isinstance(value, list):
        if key == "keys" and all(isinstance(v, str) and len(v) >= 24 for v in value):
            return [f"<lease {len(value)}>"]
        if key == "warnings":
            return [re.sub(r"\d+", "N", str(v)) for v in value]
        return [_shape(v) for v in value]
    if isinstance(value, str):
        lease = _LEASE.match(value)
        if lease:
            return f"<lease of {lease.group(1)}>"
        if key in _SHAPED and value:
            return f"<{key}>"
        if _TIME.match(value):
            return "<time>"
        if key == "errors":
            return value
    if key == "ttl" and isinstance(value, int):
        return "<ttl>" if value > 0 else 0
    return value


Build = Callable[[list[Outcome]], Step]


def _run(target: Target, steps: list[Step | Build]) -> list[Outcome]:
    """Send the steps in order; a step may be built from the answers so far (lease ids)."""
    outcomes: list[Outcome] = []
    for item in steps:
        step = item if isinstance(item, Step) else item(outcomes)
        outcomes.append(target.send(step))
        body = outcomes[-1].body
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            password = body["data"].get("password")
            if isinstance(password, str):
                remember_secret(password)
    return outcomes


def _lease_of(index: int) -> Callable[[list[Outcome]], str]:
    def lease(outcomes: list[Outcome]) -> str:
        return str(outcomes[index].body["lease_id"])

    return lease


def _steps(admin: Admin, static_user: str) -> list[Step | Build]:
    lease = _lease_of(7)
    return [
        Step("POST", "sys/mounts/database", {"type": "database"}),  # 0
        Step("POST", "database/config/pg", admin.config(allowed_roles=["r", "s"])),
        Step("GET", "database/config/pg"),
        Step("LIST", "database/config"),
        Step(
            "POST",
            "database/roles/r",
            {
                "db_name": "pg",
                "creation_statements": [CREATE],
                "default_ttl": "1h",
                "max_ttl": "2h",
            },
        ),
        Step("GET", "database/roles/r"),  # 5
        Step("LIST", "database/roles"),
        Step("GET", "database/creds/r"),  # 7: the lease
        lambda o: Step("POST", "sys/leases/lookup", {"lease_id": lease(o)}),
        lambda o: Step("POST", "sys/leases/renew", {"lease_id": lease(o), "increment": 600}),
        lambda o: Step("POST", "sys/leases/renew", {"lease_id": lease(o), "increment": 99999}),
        Step("LIST", "sys/leases/lookup/database/creds/r/"),  # 11
        Step("LIST", "sys/leases/lookup/database/creds/"),
        lambda o: Step("POST", "sys/leases/revoke", {"lease_id": lease(o)}),
        lambda o: Step("POST", "sys/leases/lookup", {"lease_id": lease(o)}),
        lambda o: Step("POST", "sys/leases/revoke", {"lease_id": lease(o)}),  # 15
        Step("POST", "sys/leases/lookup", {}),
        Step("POST", "sys/leases/renew", {"lease_id": "database/creds/r/nope"}),
        Step("POST", "sys/leases/revoke", {}),
        Step("GET", "database/creds/nope"),
        Step("POST", "database/roles/x", {"db_name": "pg", "creation_statements": "x"}),  # 20
        Step("GET", "database/creds/x"),
        Step("POST", "database/roles/y", {}),
        Step("GET", "database/roles/missing"),
        Step("GET", "database/config/missing"),
        Step("POST", "database/config/bad", {}),  # 25
        Step(
            "POST",
            "database/static-roles/s",
            {"db_name": "pg", "username": static_user, "rotation_period": "1h"},
        ),
        Step("GET", "database/static-roles/s"),
        Step("GET", "database/static-creds/s"),
        Step("POST", "database/rotate-role/s"),
        Step("GET", "database/static-creds/s"),  # 30
        Step("LIST", "database/static-roles"),
        Step("POST", "database/rotate-role/nope"),
        Step("GET", "database/static-creds/nope"),
        Step("POST", "database/static-roles/t", {"db_name": "pg", "username": static_user}),
        Step(
            "POST",
            "database/static-roles/t",
            {"db_name": "pg", "username": static_user, "rotation_period": 2},
        ),  # 35
        Step(
            "POST",
            "database/static-roles/r",
            {"db_name": "pg", "username": "u", "rotation_period": 60},
        ),
        Step("GET", "database/creds/r"),
        Step("POST", "sys/leases/revoke-prefix/database/creds/r"),
        Step("LIST", "sys/leases/lookup/database/creds/r/"),
        Step("POST", "sys/leases/tidy"),  # 40
        Step("POST", "database/reset/pg"),
        Step("POST", "database/reset/nope"),
        Step("DELETE", "database/roles/r"),
        Step("GET", "database/roles/r"),
        Step("DELETE", "database/static-roles/s"),  # 45
        Step("DELETE", "database/config/pg"),
        Step("LIST", "database/config"),
    ]


async def test_database_engine_and_leases_match_openbao(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
    postgres: PostgresCluster,
) -> None:
    pair = new_pair(clients, tenantvault_server, openbao_server)
    ours_admin, bao_admin = await _admin(postgres, "tv"), await _admin(postgres, "bao")
    ours_user, _ = await new_login(postgres)
    bao_user, _ = await new_login(postgres)
    ours = _run(pair.ours, _steps(ours_admin, ours_user))
    theirs = _run(pair.bao, _steps(bao_admin, bao_user))
    differences = []
    names = {ours_admin.user: "<admin>", bao_admin.user: "<admin>"}
    names |= {ours_user: "<static user>", bao_user: "<static user>"}
    for index, (mine, bao) in enumerate(zip(ours, theirs, strict=True)):
        a, b = _shape(_named(mine.body, names)), _shape(_named(bao.body, names))
        if index == 25:  # the driver's own error text differs; the status may not
            a = b = None
        if index == 10:
            a, b = _capped(a), _capped(b)
        if (mine.status, a) != (bao.status, b):
            differences.append(
                f"#{index}\n   tenantvault {mine.status} {a}\n   openbao     {bao.status} {b}"
            )
    assert not differences, "\n".join(differences)


def _capped(body: Any) -> Any:
    """A renewal capped at the role's max_ttl of 2h: what is left is 7200 s, or 7199 s when a
    second boundary fell between issue and renewal (both servers truncate to the second, as
    OpenBao's CalculateTTL does), and the warning names that remainder as "2h" or
    "1h59m59s". Which one a server shows depends on the clock, so both are one shape here."""
    if not isinstance(body, dict) or not isinstance(body.get("lease_duration"), int):
        return body
    left = body["lease_duration"]
    shaped = dict(body, lease_duration="<max_ttl left>" if 7198 <= left <= 7200 else left)
    if isinstance(body.get("warnings"), list):
        shaped["warnings"] = [
            re.sub(r'max_ttl of "[^"]*"', 'max_ttl of "<left>"', str(w)) for w in body["warnings"]
        ]
    return shaped


def _named(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _named(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_named(v, names) for v in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value
