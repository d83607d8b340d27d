"""The shipped upstream policies (`deploy/openbao/*.hcl`) on a real OpenBao: each is enough
for everything gateway mode does with tenantvault's own token, and reaches nothing else.

Each test starts a fresh `bao server -dev`: the files are written for the root
`tenantvault`, which the session's shared server must not see twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tenantvault
from tenantvault.crypto import random_key
from tenantvault.upstream._backend import UpstreamBackend
from tenantvault.upstream._tenancy import NamespaceTenancy, PrefixTenancy
from tests._openbao import OpenBaoDev, running_openbao
from tests.conftest import canary
from tests.upstream._records import token_file
from tests.upstream.test_records import _least_privilege

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "openbao"
POLICY = "tenantvault"
ROOT = "tenantvault"


def _policy_file(strategy: str) -> Path:
    return DEPLOY / f"tenantvault-{strategy}.hcl"


def _rules(text: str) -> set[str]:
    """The policy's rule lines, comments and blank lines left out."""
    lines = (line.strip() for line in text.splitlines())
    return {line for line in lines if line and not line.startswith("#")}


@pytest.fixture
def bao(tmp_path: Path) -> Iterator[OpenBaoDev]:
    """A fresh dev server: the policy files name the fixed root `tenantvault`."""
    with running_openbao(tmp_path) as server:
        yield server


@pytest.fixture
async def operator(bao: OpenBaoDev) -> AsyncIterator[httpx.AsyncClient]:
    """The upstream operator (root token), in the root namespace."""
    async with httpx.AsyncClient(
        base_url=bao.addr, headers={"X-Vault-Token": bao.root_token}
    ) as client:
        yield client


async def _call(
    client: httpx.AsyncClient, method: str, path: str, *, namespace: str = "", **kw: Any
) -> httpx.Response:
    headers = {"X-Vault-Namespace": namespace} if namespace else {}
    return await client.request(method, f"/v1/{path}", headers=headers, **kw)


async def _ok(
    client: httpx.AsyncClient, method: str, path: str, *, namespace: str = "", **kw: Any
) -> dict[str, Any]:
    response = await _call(client, method, path, namespace=namespace, **kw)
    assert response.is_success, (method, path, response.status_code, response.text)
    return dict(response.json()) if response.content else {}


async def _service_token(operator: httpx.AsyncClient, strategy: str) -> str:
    """A token with the shipped policy and nothing else (no `default` policy)."""
    policy = _policy_file(strategy).read_text()
    await _ok(operator, "PUT", f"sys/policies/acl/{POLICY}", json={"policy": policy})
    created = await _ok(
        operator,
        "POST",
        "auth/token/create",
        json={"policies": [POLICY], "no_default_policy": True, "ttl": "1h"},
    )
    return str(created["auth"]["client_token"])


async def _approle(operator: httpx.AsyncClient, strategy: str, directory: Path) -> str:
    """The README's AppRole setup; the URL options naming its role_id and secret_id files."""
    policy = _policy_file(strategy).read_text()
    await _ok(operator, "PUT", f"sys/policies/acl/{POLICY}", json={"policy": policy})
    await _ok(operator, "POST", "sys/auth/approle", json={"type": "approle"})
    await _ok(
        operator,
        "POST",
        "auth/approle/role/tenantvault",
        json={
            "token_policies": [POLICY],
            "token_no_default_policy": True,
            "token_ttl": "1h",
            "token_max_ttl": "24h",
            "token_type": "service",
        },
    )
    role_id = (await _ok(operator, "GET", "auth/approle/role/tenantvault/role-id"))["data"]
    secret_id = (await _ok(operator, "POST", "auth/approle/role/tenantvault/secret-id"))["data"]
    files = {}
    for name, value in (("role_id", role_id["role_id"]), ("secret_id", secret_id["secret_id"])):
        path = directory / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        files[name] = path
    return f"role_id_file={files['role_id']}&secret_id_file={files['secret_id']}"


async def _exercise(tv: tenantvault.TenantVault) -> str:
    """Every tenant-facing feature gateway mode forwards or records; the secret written."""
    await tv.create_tenant("acme")
    await tv.create_tenant("beta")
    assert await tv.list_tenants() == ["acme", "beta"]
    acme = tv.tenant("acme")
    secret = canary("policy-")
    await acme.kv.put("app/x", {"password": secret})
    await acme.kv.put("app/x", {"password": secret}, cas=1)
    assert (await acme.kv.get("app/x")).data == {"password": secret}
    assert await acme.kv.list("app") == ["x"]
    await acme.kv.write_metadata("app/x", max_versions=5, custom_metadata={"team": "a"})
    assert (await acme.kv.metadata("app/x")).max_versions == 5
    await acme.kv.put("app/gone", {"k": "v"})
    await acme.kv.delete("app/gone")
    await acme.kv.delete_metadata("app/gone")
    await acme.transit.create_key("pii")
    ciphertext = await acme.transit.encrypt("pii", b"hello")
    assert ciphertext.startswith("vault:v1:")
    assert await acme.transit.decrypt("pii", ciphertext) == b"hello"
    assert await acme.transit.list_keys() == ["pii"]
    await acme.transit.create_key("old")
    await acme.transit.configure_key("old", deletion_allowed=True)
    await acme.transit.delete_key("old")
    await acme.policies.write("reader", 'path "secret/data/*" { capabilities = ["read"] }')
    assert "reader" in await acme.policies.list()
    issued = await acme.tokens.create(policies=["reader"])
    reader = tv.with_token(issued.token).tenant("acme")
    assert (await reader.kv.get("app/x")).data == {"password": secret}
    await acme.tokens.revoke(issued.token)
    # beta keeps data of its own, deleted with it.
    await tv.tenant("beta").kv.put("b", {"k": "v"})
    await tv.tenant("beta").transit.create_key("bk")
    return secret


async def _renew(tv: tenantvault.TenantVault) -> None:
    """The renewal service's call, made now rather than at 2/3 of the TTL."""
    assert tv._core is not None
    backend = tv._core.backend
    assert isinstance(backend, UpstreamBackend)
    assert backend.gateway is not None
    await backend.gateway.auth.renew()
    assert backend.gateway.auth.report()["renewals"] == 1


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


async def _assert_tight(bao: OpenBaoDev, token: str, strategy: str, secret: str) -> None:
    """The service token reaches neither tenant data nor anything outside its root."""
    async with httpx.AsyncClient(base_url=bao.addr, headers={"X-Vault-Token": token}) as own:
        refused = [
            ("GET", "secret/data/elsewhere", ""),
            ("LIST", "secret/metadata/", ""),
            ("GET", "sys/policies/acl/default", ""),
            ("PUT", "sys/policies/acl/mine", ""),
            ("POST", "auth/token/create", ""),
            ("GET", "sys/namespaces/elsewhere", ""),
            ("POST", "sys/mounts/elsewhere", ""),
            ("POST", "transit/keys/elsewhere", ""),
        ]
        if strategy == "namespace":
            refused += [
                # Tenant data: only tenant-scoped tokens read and write it.
                ("GET", "secret/data/app/x", "tenantvault/acme"),
                ("POST", "transit/encrypt/pii", "tenantvault/acme"),
                ("GET", "sys/policies/acl/default", "tenantvault/acme"),
                # Another namespace of the upstream.
                ("GET", "secret/data/x", "other"),
                ("GET", "sys/namespaces/x", "other"),
            ]
        else:
            refused += [
                ("GET", "secret/data/tenantvault/acme/app/x", ""),
                ("POST", "transit/encrypt/tenantvault.acme.pii", ""),
                ("GET", "transit/keys/tenantvault.acme.pii", ""),
                ("PUT", "sys/policies/acl/default", ""),
            ]
        for method, path, namespace in refused:
            body = {"policy": "", "plaintext": "aGk=", "type": "kv"} if method != "GET" else None
            response = await _call(own, method, path, namespace=namespace, json=body)
            assert response.status_code == 403, (method, path, namespace, response.text)
            assert secret not in response.text


async def _assert_layout(operator: httpx.AsyncClient, strategy: str, secret: str) -> None:
    """The README's layout: where an operator finds acme's secret and key."""
    if strategy == "namespace":
        read = await _ok(operator, "GET", "secret/data/app/x", namespace="tenantvault/acme")
        keys = await _ok(operator, "LIST", "transit/keys", namespace="tenantvault/acme")
        assert keys["data"]["keys"] == ["pii"]
        records = await _ok(
            operator, "LIST", "secret/metadata/_records/tenants", namespace="tenantvault"
        )
        assert records["data"]["keys"] == ["_system", "acme", "beta"]
    else:
        read = await _ok(operator, "GET", "secret/data/tenantvault/acme/app/x")
        keys = await _ok(operator, "LIST", "transit/keys")
        assert "tenantvault.acme.pii" in keys["data"]["keys"]
        records = await _ok(operator, "LIST", "secret/metadata/tenantvault/_records/tenants")
        assert records["data"]["keys"] == ["_system", "acme", "beta"]
    assert read["data"]["data"] == {"password": secret}


async def _assert_gone(operator: httpx.AsyncClient, strategy: str) -> None:
    """Nothing of a deleted tenant is left upstream."""
    if strategy == "namespace":
        found = await _call(operator, "GET", "sys/namespaces/beta", namespace="tenantvault")
        assert found.status_code == 404, found.text
        return
    listed = await _call(operator, "LIST", "secret/metadata/tenantvault/beta")
    assert listed.status_code == 404, listed.text
    keys = await _ok(operator, "LIST", "transit/keys")
    assert not [k for k in keys["data"]["keys"] if k.startswith("tenantvault.beta.")]
    policy = await _call(operator, "GET", "sys/policies/acl/tenantvault.tenant.beta")
    assert policy.status_code == 404, policy.text


async def _run(
    bao: OpenBaoDev,
    operator: httpx.AsyncClient,
    strategy: str,
    credentials: str,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if strategy == "namespace":
        await _ok(operator, "POST", "sys/namespaces/other")
        await _ok(operator, "POST", "sys/mounts/secret", namespace="other", json={"type": "kv"})
    else:
        # A fresh production upstream has no `secret/` (the dev server has): tenantvault
        # finds it missing and enables it.
        await _ok(operator, "DELETE", "sys/mounts/secret")
    # `auto`: the namespace policy lets it find namespaces, the prefix policy does not.
    url = f"{bao.backend_url}?root={ROOT}&tenancy=auto&{credentials}"
    caplog.set_level(logging.WARNING, logger="tenantvault")
    async with tenantvault.open(url, master_key=random_key()) as tv:
        secret = await _exercise(tv)
        await _renew(tv)
        await _assert_layout(operator, strategy, secret)
        await _assert_tight(bao, token, strategy, secret)
        await tv.delete_tenant("beta")
        assert await tv.list_tenants() == ["acme"]
        await _assert_gone(operator, strategy)
    assert _refusals(caplog) == []


@pytest.mark.parametrize("strategy", ["namespace", "prefix"])
async def test_the_policy_file_is_enough_with_a_token_and_reaches_nothing_else(
    bao: OpenBaoDev,
    operator: httpx.AsyncClient,
    strategy: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = await _service_token(operator, strategy)
    credentials = f"token_file={token_file(tmp_path, token)}"
    await _run(bao, operator, strategy, credentials, token, caplog)


@pytest.mark.parametrize("strategy", ["namespace", "prefix"])
async def test_the_policy_file_is_enough_with_an_approle_login(
    bao: OpenBaoDev,
    operator: httpx.AsyncClient,
    strategy: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    credentials = await _approle(operator, strategy, tmp_path)
    # The same role's token, for the checks of what it reaches.
    role_id = (tmp_path / "role_id").read_text().strip()
    secret_id = (tmp_path / "secret_id").read_text().strip()
    login = await _ok(
        operator,
        "POST",
        "auth/approle/login",
        json={"role_id": role_id, "secret_id": secret_id},
    )
    assert login["auth"]["policies"] == [POLICY]
    token = str(login["auth"]["client_token"])
    await _run(bao, operator, strategy, credentials, token, caplog)


@pytest.mark.parametrize(
    ("strategy", "generated"),
    [
        ("namespace", NamespaceTenancy(ROOT).service_policy()),
        ("prefix", PrefixTenancy(ROOT).service_policy()),
        ("prefix", _least_privilege(ROOT)),
    ],
    ids=["namespace-tenancy", "prefix-tenancy", "prefix-records"],
)
def test_the_files_contain_what_the_code_asks_for(strategy: str, generated: str) -> None:
    """Code and file cannot drift: every rule the code generates is a rule of the file."""
    missing = _rules(generated) - _rules(_policy_file(strategy).read_text())
    assert not missing, missing
