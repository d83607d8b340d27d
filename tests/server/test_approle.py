"""AppRole and sys/auth over HTTP (in-process): roles, role-ids, secret-ids, login, CIDR
bindings, exact secret-id use counts under concurrency, tenant isolation, failed-login
throttling (fake clock), audit, and disabling an auth mount. Texts and statuses checked
against OpenBao 2.7.2 `bao server -dev`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault.backends import MemoryBackend
from tenantvault.engines.auth._settings import AuthSettings
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import FakeClock, canary
from tests.server.conftest import BASE_URL, Vault

FAILURES = 5
WINDOW_SECONDS = 60
APP_POLICY = 'path "secret/data/app/*" { capabilities = ["read"] }\n'


@pytest.fixture
async def clocked_app(
    root_token: str, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[TenantVaultApp, FakeClock]]:
    async def factory() -> Core:
        core = Core(
            MemoryBackend(),
            clock=clock,
            auth_settings=AuthSettings(
                clock=clock, login_failures=FAILURES, login_window_seconds=WINDOW_SECONDS
            ),
        )
        await core.start()
        options = {"file_path": str(tmp_path / "audit.log"), "fsync": "never"}
        await core.audit_broker.enable("file", "file", options, persist=False)
        return core

    app = create_app(ServerSettings(dev=True, dev_root_token=root_token), core_factory=factory)
    async with app as started:
        yield started, clock


def _client(app: TenantVaultApp, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def vault(
    clocked_app: tuple[TenantVaultApp, FakeClock], root_token: str
) -> AsyncIterator[Vault]:
    async with _client(clocked_app[0], "127.0.0.1") as client:
        yield Vault(client, root_token)


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


async def setup_role(
    vault: Vault, tenant: str | None = None, *, role: str = "app", **fields: Any
) -> tuple[str, str]:
    """approle/ enabled, `role` with the app policy; returns (role_id, secret_id)."""
    mounts = await vault.root("GET", "sys/auth", namespace=tenant)
    if "approle/" not in mounts.json()["data"]:
        await ok(
            await vault.root(
                "POST", "sys/auth/approle", namespace=tenant, json={"type": "approle"}
            ),
            204,
        )
    await vault.write_policy(tenant, "app", APP_POLICY)
    body = {"token_policies": "app", **fields}
    assert (
        await vault.root("POST", f"auth/approle/role/{role}", namespace=tenant, json=body)
    ).status_code in (200, 204)
    role_id = (
        await ok(await vault.root("GET", f"auth/approle/role/{role}/role-id", namespace=tenant))
    )["data"]["role_id"]
    secret = await ok(
        await vault.root("POST", f"auth/approle/role/{role}/secret-id", namespace=tenant, json={})
    )
    return role_id, secret["data"]["secret_id"]


async def login(
    vault: Vault, role_id: str, secret_id: str, tenant: str | None = None, **kw: Any
) -> httpx.Response:
    return await vault.request(
        "POST",
        "auth/approle/login",
        namespace=tenant,
        json={"role_id": role_id, "secret_id": secret_id},
        **kw,
    )


# -- sys/auth ---------------------------------------------------------------------------


async def test_sys_auth_enable_list_read_tune_and_disable(vault: Vault) -> None:
    await vault.create_tenant("acme")
    listed = await ok(await vault.root("GET", "sys/auth", namespace="acme"))
    assert set(listed["data"]) == {"token/"}
    assert listed["token/"] == listed["data"]["token/"]  # also at the top level, as Vault
    body = {"type": "approle", "description": "machines", "config": {"default_lease_ttl": "1h"}}
    await ok(await vault.root("POST", "sys/auth/approle", namespace="acme", json=body), 204)
    listed = await ok(await vault.root("GET", "sys/auth", namespace="acme"))
    info = listed["data"]["approle/"]
    assert info["type"] == "approle"
    assert info["description"] == "machines"
    assert info["accessor"].startswith("auth_approle_")
    assert info["options"] == {}
    assert info["config"] == {
        "default_lease_ttl": 3600,
        "force_no_cache": False,
        "max_lease_ttl": 0,
        "token_type": "default-service",
    }
    # sys/mounts lists secrets engines only; sys/internal/ui/mounts shows both kinds.
    mounts = await ok(await vault.root("GET", "sys/mounts", namespace="acme"))
    assert "auth/approle/" not in mounts["data"]
    ui = await ok(await vault.root("GET", "sys/internal/ui/mounts", namespace="acme"))
    assert set(ui["data"]["auth"]) == {"token/", "approle/"}
    assert "auth/approle/" not in ui["data"]["secret"]
    read = await ok(await vault.root("GET", "sys/auth/approle", namespace="acme"))
    assert read["data"] == info
    tune = await ok(await vault.root("GET", "sys/auth/approle/tune", namespace="acme"))
    assert tune["data"]["default_lease_ttl"] == 3600
    assert tune["data"]["token_type"] == "default-service"
    await ok(
        await vault.root(
            "POST", "sys/auth/approle/tune", namespace="acme", json={"max_lease_ttl": "2h"}
        ),
        204,
    )
    tune = await ok(await vault.root("GET", "sys/auth/approle/tune", namespace="acme"))
    assert tune["data"]["max_lease_ttl"] == 7200
    # The root namespace has no approle mount: tenants' tables are their own.
    root_list = await ok(await vault.root("GET", "sys/auth"))
    assert set(root_list["data"]) == {"token/"}
    await ok(await vault.root("DELETE", "sys/auth/approle", namespace="acme"), 204)
    await ok(await vault.root("DELETE", "sys/auth/approle", namespace="acme"), 204)
    listed = await ok(await vault.root("GET", "sys/auth", namespace="acme"))
    assert set(listed["data"]) == {"token/"}


@pytest.mark.parametrize(
    ("method", "path", "body", "error"),
    [
        ("POST", "sys/auth/token", {"type": "approle"}, "path is already in use at token/"),
        (
            "POST",
            "sys/auth/other",
            {"type": "token"},
            "token credential backend cannot be instantiated",
        ),
        ("POST", "sys/auth/other", {"type": "nope"}, "plugin not found in the catalog: nope"),
        ("POST", "sys/auth/other", {"type": "kv"}, "plugin not found in the catalog: kv"),
        ("POST", "sys/auth/other", {}, "backend type must be specified as a string"),
        (
            "POST",
            "sys/mounts/other",
            {"type": "approle"},
            "plugin not found in the catalog: approle",
        ),
        ("DELETE", "sys/auth/token", None, "token credential backend cannot be disabled"),
        ("GET", "sys/auth/nothere", None, "No auth engine at nothere/"),
        ("GET", "sys/auth/nothere/tune", None, 'cannot fetch sysview for path "auth/nothere/"'),
        (
            "POST",
            "sys/auth/nothere/tune",
            {"description": "x"},
            'tune of path "auth/nothere/" failed: no mount entry found',
        ),
    ],
)
async def test_sys_auth_errors_are_vaults(
    vault: Vault, method: str, path: str, body: Any, error: str
) -> None:
    response = await vault.root(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [error]


async def test_sys_auth_enable_needs_sudo(vault: Vault) -> None:
    await vault.write_policy(None, "mounter", 'path "sys/auth/*" { capabilities = ["update"] }')
    token = (await vault.create_token(None, ["mounter"]))["client_token"]
    response = await vault.request(
        "POST", "sys/auth/approle", token=token, json={"type": "approle"}
    )
    assert response.status_code == 403


# -- roles, role-ids, secret-ids --------------------------------------------------------


async def test_role_crud_shapes(vault: Vault) -> None:
    await ok(await vault.root("POST", "sys/auth/approle", json={"type": "approle"}), 204)
    body = {"policies": "a,b", "period": "1h", "bound_cidr_list": "10.0.0.0/8"}
    await ok(await vault.root("POST", "auth/approle/role/R2", json=body), 204)
    read = await ok(await vault.root("GET", "auth/approle/role/r2"))
    assert read["data"] == {
        "bind_secret_id": True,
        "local_secret_ids": False,
        "period": 3600,
        "policies": ["a", "b"],
        "secret_id_bound_cidrs": ["10.0.0.0/8"],
        "secret_id_num_uses": 0,
        "secret_id_ttl": 0,
        "token_bound_cidrs": [],
        "token_explicit_max_ttl": 0,
        "token_max_ttl": 0,
        "token_no_default_policy": False,
        "token_num_uses": 0,
        "token_period": 3600,
        "token_policies": ["a", "b"],
        "token_strictly_bind_ip": False,
        "token_ttl": 0,
        "token_type": "default",
    }
    listed = await ok(await vault.root("LIST", "auth/approle/role"))
    assert listed["data"]["keys"] == ["r2"]
    missing = await vault.root("GET", "auth/approle/role/nope")
    assert (missing.status_code, missing.json()) == (404, {"errors": []})
    warned = await ok(
        await vault.root("POST", "auth/approle/role/r2", json={"token_type": "default-batch"})
    )
    assert warned["warnings"] == ["default-batch has no useful meaning; adjusting to batch"]
    await ok(await vault.root("DELETE", "auth/approle/role/r2"), 204)
    assert (await vault.root("LIST", "auth/approle/role")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"secret_id_num_uses": -1}, 400, "secret_id_num_uses cannot be negative"),
        (
            {"token_ttl": "2h", "token_max_ttl": "1h"},
            400,
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            {"token_type": "batch", "token_num_uses": 3},
            400,
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens "
            "with limited use count",
        ),
        (
            {"bind_secret_id": False},
            500,
            "1 error occurred:\n\t* at least one constraint should be enabled on the role\n\n",
        ),
        ({"token_type": "weird"}, 400, "invalid 'token_type' value \"weird\""),
        (
            {"token_strictly_bind_ip": True, "token_bound_cidrs": ["10.0.0.0/8"]},
            400,
            "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one",
        ),
        (
            {"secret_id_bound_cidrs": "10.0.0.1"},
            500,
            "1 error occurred:\n\t* failed to validate CIDR blocks: invalid CIDR address: "
            "10.0.0.1\n\n",
        ),
    ],
)
async def test_role_validation_is_vaults(
    vault: Vault, body: dict[str, Any], status: int, error: str
) -> None:
    await ok(await vault.root("POST", "sys/auth/approle", json={"type": "approle"}), 204)
    response = await vault.root("POST", "auth/approle/role/r1", json=body)
    assert response.status_code == status, response.text
    assert response.json()["errors"] == [error]


async def test_role_id_is_unique_and_settable(vault: Vault) -> None:
    await setup_role(vault, role="one")
    await setup_role(vault, role="two")
    await ok(
        await vault.root("POST", "auth/approle/role/one/role-id", json={"role_id": "mine"}), 204
    )
    clash = await vault.root("POST", "auth/approle/role/two/role-id", json={"role_id": "mine"})
    assert clash.status_code == 500
    assert clash.json()["errors"] == ["1 error occurred:\n\t* role_id already in use\n\n"]
    read = await ok(await vault.root("GET", "auth/approle/role/one/role-id"))
    assert read["data"] == {"role_id": "mine"}


async def test_secret_id_lifecycle_by_value_and_accessor(vault: Vault) -> None:
    await setup_role(vault, secret_id_num_uses=3, secret_id_ttl="1h")
    too_many = await vault.root("POST", "auth/approle/role/app/secret-id", json={"num_uses": 5})
    assert too_many.json()["errors"] == [
        "num_uses cannot be higher than the role's secret_id_num_uses"
    ]
    made = await ok(
        await vault.root(
            "POST",
            "auth/approle/role/app/secret-id",
            json={"num_uses": 2, "ttl": "10m", "metadata": '{"k":"v"}'},
        )
    )
    secret_id, accessor = made["data"]["secret_id"], made["data"]["secret_id_accessor"]
    assert made["data"]["secret_id_num_uses"] == 2
    assert made["data"]["secret_id_ttl"] == 600
    listed = await ok(await vault.root("LIST", "auth/approle/role/app/secret-id"))
    assert accessor in listed["data"]["keys"]
    assert secret_id not in str(listed)
    looked = await ok(
        await vault.root(
            "POST", "auth/approle/role/app/secret-id/lookup", json={"secret_id": secret_id}
        )
    )
    assert looked["data"]["metadata"] == {"k": "v"}
    assert looked["data"]["secret_id_accessor"] == accessor
    by_accessor = await ok(
        await vault.root(
            "POST",
            "auth/approle/role/app/secret-id-accessor/lookup",
            json={"secret_id_accessor": accessor},
        )
    )
    assert by_accessor["data"] == looked["data"]
    unknown = await vault.root(
        "POST", "auth/approle/role/app/secret-id/lookup", json={"secret_id": "nope"}
    )
    assert unknown.status_code == 204
    gone = await vault.root(
        "POST",
        "auth/approle/role/app/secret-id-accessor/lookup",
        json={"secret_id_accessor": "nope"},
    )
    assert gone.status_code == 404
    assert gone.json()["data"] == {
        "error": 'failed to find accessor entry for secret_id_accessor: "nope"'
    }
    await ok(
        await vault.root(
            "POST",
            "auth/approle/role/app/secret-id-accessor/destroy",
            json={"secret_id_accessor": accessor},
        ),
        204,
    )
    after = await vault.root(
        "POST", "auth/approle/role/app/secret-id/lookup", json={"secret_id": secret_id}
    )
    assert after.status_code == 204
    custom = await ok(
        await vault.root(
            "POST",
            "auth/approle/role/app/custom-secret-id",
            json={"secret_id": "abc", "num_uses": 1},
        )
    )
    assert custom["data"]["secret_id"] == "abc"
    again = await vault.root(
        "POST", "auth/approle/role/app/custom-secret-id", json={"secret_id": "abc", "num_uses": 1}
    )
    assert again.status_code == 500
    assert again.json()["errors"] == [
        "1 error occurred:\n\t* failed to store secret_id: SecretID is already registered\n\n"
    ]
    missing = await vault.root("POST", "auth/approle/role/nope/secret-id", json={})
    assert (missing.status_code, missing.json()["errors"]) == (404, ['role "nope" does not exist'])
    tidy = await vault.root("POST", "auth/approle/tidy/secret-id")
    assert tidy.status_code == 202


# -- login ------------------------------------------------------------------------------


async def test_login_issues_a_policy_limited_token(vault: Vault) -> None:
    role_id, secret_id = await setup_role(vault, token_ttl="20m")
    written = await vault.root("POST", "secret/data/app/db", json={"data": {"password": "pw"}})
    assert written.status_code == 200
    # A token sent with the login is ignored (as Vault).
    response = await login(vault, role_id, secret_id, headers={"X-Vault-Token": "garbage"})
    auth = (await ok(response))["auth"]
    assert auth["policies"] == ["app", "default"]
    assert auth["metadata"] == {"role_name": "app"}
    assert auth["lease_duration"] == 1200
    assert (auth["orphan"], auth["renewable"], auth["token_type"]) == (True, True, "service")
    token = auth["client_token"]
    read = await vault.request("GET", "secret/data/app/db", token=token)
    assert read.json()["data"]["data"] == {"password": "pw"}
    denied = await vault.request("GET", "secret/data/other", token=token)
    assert denied.status_code == 403
    looked = await ok(await vault.request("GET", "auth/token/lookup-self", token=token))
    assert looked["data"]["path"] == "auth/approle/login"
    assert looked["data"]["display_name"] == "approle"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"role_id": "nope", "secret_id": "nope"}, 400, "invalid role or secret ID"),
        ({}, 500, "missing role_id"),
        ({"role_id": "ROLE"}, 400, "missing secret_id"),
        ({"role_id": "ROLE", "secret_id": "wrong"}, 400, "invalid role or secret ID"),
    ],
)
async def test_login_refusals_are_vaults(
    vault: Vault, body: dict[str, str], status: int, error: str
) -> None:
    role_id, _ = await setup_role(vault)
    body = {key: role_id if value == "ROLE" else value for key, value in body.items()}
    response = await vault.request("POST", "auth/approle/login", json=body)
    assert response.status_code == status, response.text
    assert response.json()["errors"] == [error]


async def test_secret_id_num_uses_is_exact_under_concurrent_logins(vault: Vault) -> None:
    role_id, _ = await setup_role(vault)
    uses = 7
    made = await ok(
        await vault.root("POST", "auth/approle/role/app/secret-id", json={"num_uses": uses})
    )
    secret_id = made["data"]["secret_id"]
    results = await asyncio.gather(*(login(vault, role_id, secret_id) for _ in range(50)))
    statuses = [r.status_code for r in results]
    assert statuses.count(200) == uses
    # The others: used up (400), or throttled once this address failed often enough (429).
    assert set(statuses) <= {200, 400, 429}
    lookup = await vault.root(
        "POST", "auth/approle/role/app/secret-id/lookup", json={"secret_id": secret_id}
    )
    assert lookup.status_code == 204  # the last use deleted it


async def test_cidr_bindings_refuse_other_addresses(
    clocked_app: tuple[TenantVaultApp, FakeClock], vault: Vault
) -> None:
    role_id, _ = await setup_role(
        vault, secret_id_bound_cidrs=["10.0.0.0/8"], token_bound_cidrs=["10.1.0.0/16"]
    )
    made = await ok(await vault.root("POST", "auth/approle/role/app/secret-id", json={}))
    secret_id = made["data"]["secret_id"]
    refused = await login(vault, role_id, secret_id)  # from 127.0.0.1
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        'source address "127.0.0.1" unauthorized by CIDR restrictions on the role: %!w(<nil>)'
    ]
    async with _client(clocked_app[0], "10.1.2.3") as inside:
        insider = Vault(inside, vault.root_token)
        auth = (await ok(await login(insider, role_id, secret_id)))["auth"]
        token = auth["client_token"]
        assert (
            await insider.request("GET", "auth/token/lookup-self", token=token)
        ).status_code == 200
    async with _client(clocked_app[0], "10.2.0.1") as outside:
        stranger = Vault(outside, vault.root_token)
        # In the role's secret-id CIDRs but not the token's: the token is refused there.
        assert (
            await stranger.request("GET", "auth/token/lookup-self", token=token)
        ).status_code == 403
    assert (await vault.request("GET", "auth/token/lookup-self", token=token)).status_code == 403


async def test_a_tenants_role_never_logs_into_another_tenant(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.create_tenant("globex")
    role_id, secret_id = await setup_role(vault, "acme")
    await ok(
        await vault.root("POST", "sys/auth/approle", namespace="globex", json={"type": "approle"}),
        204,
    )
    # The same credentials at globex's approle mount, or at the root namespace's (none).
    elsewhere = await login(vault, role_id, secret_id, "globex")
    assert elsewhere.status_code == 400
    assert elsewhere.json()["errors"] == ["invalid role or secret ID"]
    root = await login(vault, role_id, secret_id)
    assert root.status_code in (403, 404)
    auth = (await ok(await login(vault, role_id, secret_id, "acme")))["auth"]
    looked = await ok(
        await vault.request("GET", "auth/token/lookup-self", token=auth["client_token"])
    )
    assert looked["data"]["namespace_path"] == "acme/"
    # The acme token cannot act in globex.
    foreign = await vault.request(
        "GET", "auth/token/lookup-self", token=auth["client_token"], namespace="globex"
    )
    assert foreign.status_code == 403
    # The path-prefix form reaches acme's mount too.
    prefixed = await vault.request(
        "POST", "acme/auth/approle/login", json={"role_id": role_id, "secret_id": secret_id}
    )
    assert prefixed.status_code == 200


BRUTE_FORCE_ATTEMPTS = 1000


async def test_brute_force_is_throttled_audited_and_the_right_secret_id_works_again(
    clocked_app: tuple[TenantVaultApp, FakeClock], vault: Vault, tmp_path: Path
) -> None:
    """Issue 11, acceptance 6: 1,000 wrong secret-ids get 429 after the limit, the right one
    works again after the window, and every attempt is audited with its secret-id HMAC'd."""
    clock = clocked_app[1]
    role_id, secret_id = await setup_role(vault)
    wrong = canary("wrong-")
    statuses = [
        (await login(vault, role_id, f"{wrong}{n}")).status_code
        for n in range(BRUTE_FORCE_ATTEMPTS)
    ]
    assert statuses[:FAILURES] == [400] * FAILURES
    assert set(statuses[FAILURES:]) == {429}
    throttled = await login(vault, role_id, wrong)
    assert throttled.json()["errors"] == ["too many failed login attempts; retry later"]
    # The right secret-id is refused too while the window lasts...
    assert (await login(vault, role_id, secret_id)).status_code == 429
    # ...another address is not affected...
    async with _client(clocked_app[0], "10.9.9.9") as other:
        assert (await login(Vault(other, vault.root_token), role_id, secret_id)).status_code == 200
    # ...and once the window has passed, the right one works again from here.
    clock.advance(WINDOW_SECONDS)
    auth = (await ok(await login(vault, role_id, secret_id)))["auth"]
    text = (tmp_path / "audit.log").read_text()
    logins = [line for line in text.splitlines() if '"path":"auth/approle/login"' in line]
    attempts = BRUTE_FORCE_ATTEMPTS + 4
    assert len(logins) == 2 * attempts  # a request and a response entry for each attempt
    for secret in (secret_id, wrong, auth["client_token"]):
        assert secret not in text
    assert text.count("too many failed login attempts") == BRUTE_FORCE_ATTEMPTS - FAILURES + 2


async def test_disabling_the_mount_revokes_its_tokens_and_data(vault: Vault) -> None:
    await vault.create_tenant("acme")
    role_id, secret_id = await setup_role(vault, "acme")
    token = (await ok(await login(vault, role_id, secret_id, "acme")))["auth"]["client_token"]
    assert (await vault.request("GET", "auth/token/lookup-self", token=token)).status_code == 200
    await ok(await vault.root("DELETE", "sys/auth/approle", namespace="acme"), 204)
    assert (await vault.request("GET", "auth/token/lookup-self", token=token)).status_code == 403
    await ok(
        await vault.root("POST", "sys/auth/approle", namespace="acme", json={"type": "approle"}),
        204,
    )
    assert (await vault.root("LIST", "auth/approle/role", namespace="acme")).status_code == 404
    assert (await login(vault, role_id, secret_id, "acme")).status_code == 400


async def test_role_writes_need_create_for_a_new_role_and_update_for_an_existing_one(
    vault: Vault,
) -> None:
    await setup_role(vault)
    await vault.write_policy(
        None, "editor", 'path "auth/approle/role/*" { capabilities = ["update", "read"] }'
    )
    token = (await vault.create_token(None, ["editor"]))["client_token"]
    updated = await vault.request(
        "POST", "auth/approle/role/app", token=token, json={"token_ttl": "5m"}
    )
    assert updated.status_code == 204
    created = await vault.request(
        "POST", "auth/approle/role/new", token=token, json={"token_ttl": "5m"}
    )
    assert created.status_code == 403
    # The policy reaches nothing outside role/*: sys/auth stays out of reach.
    assert (await vault.request("GET", "sys/auth", token=token)).status_code == 403


async def test_the_cli_preflight_sees_an_auth_mount(vault: Vault) -> None:
    await setup_role(vault)
    found = await ok(await vault.root("GET", "sys/internal/ui/mounts/auth/approle/role/app"))
    assert found["data"]["type"] == "approle"
    assert found["data"]["path"] == "auth/approle/"
