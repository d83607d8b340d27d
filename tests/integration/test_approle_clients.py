"""AppRole end to end with real clients against `tenantvault serve` (dev and embedded): hvac
enables the method, makes a role, reads its role-id, generates a secret-id and logs in; the
token reaches only what its policy grants; 50 concurrent logins use a limited secret-id
exactly `num_uses` times; CIDR bindings refuse; a tenant's role logs no one into another
tenant. The `bao` CLI enables, lists, tunes and disables auth methods."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import hvac
import hvac.exceptions
import pytest

from tests.integration._support import BaoCLI, canary, remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

APP_POLICY = 'path "secret/data/app/*" { capabilities = ["read"] }\n'
CONCURRENT_LOGINS = 50

Connect = Callable[..., hvac.Client]


@pytest.fixture
def connect(tenantvault_server: TenantVaultServer) -> Iterator[Connect]:
    clients: list[hvac.Client] = []

    def make(token: str | None = None, namespace: str | None = None) -> hvac.Client:
        client = hvac.Client(
            url=tenantvault_server.addr, token=token, namespace=namespace, timeout=30
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.adapter.close()


@pytest.fixture
def tenant(connect: Connect, tenantvault_server: TenantVaultServer) -> tuple[str, hvac.Client]:
    """A fresh tenant with approle/ enabled and the `app` policy, and its admin client."""
    name = unique_name()
    root = connect(tenantvault_server.root_token)
    root.sys.create_namespace(name)
    admin = connect(tenantvault_server.root_token, name)
    admin.sys.enable_auth_method("approle")
    admin.sys.create_or_update_policy("app", APP_POLICY)
    admin.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": canary("pw-")})
    return name, admin


def _role(admin: hvac.Client, name: str = "app", **fields: Any) -> tuple[str, str]:
    admin.auth.approle.create_or_update_approle(name, token_policies=["app"], **fields)
    role_id = admin.auth.approle.read_role_id(name)["data"]["role_id"]
    secret = admin.auth.approle.generate_secret_id(name)["data"]["secret_id"]
    return role_id, remember_secret(secret)


def test_login_gives_a_token_limited_to_its_policy(
    tenant: tuple[str, hvac.Client], connect: Connect
) -> None:
    name, admin = tenant
    methods = admin.sys.list_auth_methods()["data"]
    assert set(methods) == {"token/", "approle/"}
    role_id, secret_id = _role(admin, token_ttl="20m")
    machine = connect(namespace=name)
    auth = machine.auth.approle.login(role_id=role_id, secret_id=secret_id)["auth"]
    remember_secret(auth["client_token"])
    assert auth["policies"] == ["app", "default"]
    assert auth["metadata"] == {"role_name": "app"}
    assert auth["lease_duration"] == 1200
    assert machine.is_authenticated()
    read = machine.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)
    assert set(read["data"]["data"]) == {"password"}
    with pytest.raises(hvac.exceptions.Forbidden):
        machine.secrets.kv.v2.read_secret_version("other", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        machine.sys.list_auth_methods()
    accessors = admin.auth.approle.list_secret_id_accessors("app")["data"]["keys"]
    assert len(accessors) == 1
    assert secret_id not in json.dumps(accessors)
    admin.auth.approle.destroy_secret_id_accessor("app", accessors[0])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        connect(namespace=name).auth.approle.login(role_id=role_id, secret_id=secret_id)


def test_secret_id_num_uses_is_exact_under_concurrent_logins(
    tenant: tuple[str, hvac.Client], connect: Connect
) -> None:
    name, admin = tenant
    uses = 7
    # hvac generates secret-ids with the role's default use count.
    role_id, secret_id = _role(admin, secret_id_num_uses=uses)

    def attempt(_: int) -> str:
        client = connect(namespace=name)
        try:
            auth = client.auth.approle.login(role_id=role_id, secret_id=secret_id)["auth"]
        except hvac.exceptions.InvalidRequest:
            return "refused"
        except hvac.exceptions.RateLimitExceeded:
            return "throttled"
        remember_secret(auth["client_token"])
        return "ok"

    with ThreadPoolExecutor(max_workers=CONCURRENT_LOGINS) as pool:
        outcomes = list(pool.map(attempt, range(CONCURRENT_LOGINS)))
    assert outcomes.count("ok") == uses
    assert outcomes.count("refused") + outcomes.count("throttled") == CONCURRENT_LOGINS - uses


def test_cidr_bindings_refuse_other_addresses(
    tenant: tuple[str, hvac.Client], connect: Connect
) -> None:
    name, admin = tenant
    role_id, secret_id = _role(admin, "fenced", secret_id_bound_cidrs=["10.0.0.0/8"])
    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        connect(namespace=name).auth.approle.login(role_id=role_id, secret_id=secret_id)
    assert refused.value.errors == [
        'source address "127.0.0.1" unauthorized by CIDR restrictions on the role: %!w(<nil>)'
    ]
    # A token bound elsewhere is issued, but refused from here.
    role_id, secret_id = _role(admin, "bound", token_bound_cidrs=["10.0.0.0/8"])
    machine = connect(namespace=name)
    auth = machine.auth.approle.login(role_id=role_id, secret_id=secret_id)["auth"]
    remember_secret(auth["client_token"])
    assert not machine.is_authenticated()


def test_a_tenants_role_logs_no_one_into_another_tenant(
    tenant: tuple[str, hvac.Client], connect: Connect, tenantvault_server: TenantVaultServer
) -> None:
    name, admin = tenant
    role_id, secret_id = _role(admin)
    other = unique_name()
    connect(tenantvault_server.root_token).sys.create_namespace(other)
    connect(tenantvault_server.root_token, other).sys.enable_auth_method("approle")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        connect(namespace=other).auth.approle.login(role_id=role_id, secret_id=secret_id)
    with pytest.raises(hvac.exceptions.VaultError):
        connect().auth.approle.login(role_id=role_id, secret_id=secret_id)  # root namespace
    machine = connect(namespace=name)
    auth = machine.auth.approle.login(role_id=role_id, secret_id=secret_id)["auth"]
    token = remember_secret(auth["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        connect(token, other).secrets.kv.v2.read_secret_version(
            "app/db", raise_on_deleted_version=True
        )


def test_hvac_auth_method_management(tenant: tuple[str, hvac.Client]) -> None:
    _, admin = tenant
    admin.sys.enable_auth_method("approle", path="machines", description="tools")
    admin.sys.tune_auth_method("machines", default_lease_ttl="1h", max_lease_ttl="2h")
    tuning = admin.sys.read_auth_method_tuning("machines")["data"]
    assert (tuning["default_lease_ttl"], tuning["max_lease_ttl"]) == (3600, 7200)
    assert admin.sys.list_auth_methods()["data"]["machines/"]["description"] == "tools"
    admin.sys.disable_auth_method("machines")
    assert "machines/" not in admin.sys.list_auth_methods()["data"]


def test_bao_cli_auth_commands(bao: BaoCLI, tenantvault_server: TenantVaultServer) -> None:
    name = unique_name()
    root = tenantvault_server.root_token
    assert bao.run("namespace", "create", name, token=root).code == 0
    enabled = bao.run("auth", "enable", "approle", token=root, namespace=name)
    assert enabled.code == 0, enabled.text
    assert "Enabled approle auth method at: approle/" in enabled.out
    listed = bao.run("auth", "list", "-format=json", token=root, namespace=name)
    assert listed.code == 0, listed.text
    assert set(json.loads(listed.out)) == {"token/", "approle/"}
    tuned = bao.run(
        "auth", "tune", "-default-lease-ttl=30m", "approle/", token=root, namespace=name
    )
    assert tuned.code == 0, tuned.text
    role = bao.run(
        "write", "auth/approle/role/app", "token_policies=app", token=root, namespace=name
    )
    assert role.code == 0, role.text
    disabled = bao.run("auth", "disable", "approle", token=root, namespace=name)
    assert disabled.code == 0, disabled.text
    listed = bao.run("auth", "list", "-format=json", token=root, namespace=name)
    assert set(json.loads(listed.out)) == {"token/"}
