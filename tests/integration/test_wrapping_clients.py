"""Response wrapping with real clients (issue 11): hvac's `wrap_ttl` arguments and
`sys.unwrap`, and the `bao` CLI's `-wrap-ttl` and `bao unwrap`, against `tenantvault serve`.
The standard pattern: an admin creates a wrapped credential, a tool server unwraps it once."""

from __future__ import annotations

import json
from typing import Any

import hvac
import hvac.exceptions
import pytest

from tests.integration._support import BaoCLI, BaoResult, canary, remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

ADMIN_POLICY = """
path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/token/create" { capabilities = ["update"] }
path "sys/policies/acl/*" { capabilities = ["create", "read", "update"] }
"""
TOOL_POLICY = 'path "secret/data/tool/*" { capabilities = ["read"] }'
TOOL_SECRET = remember_secret(canary("tool-"))


def ok(result: BaoResult) -> BaoResult:
    assert result.code == 0, f"bao failed ({result.code}):\n{result.err}\n{result.out}"
    return result


def _tenant_admin(server: TenantVaultServer) -> tuple[str, str]:
    """A new tenant with an admin token that may issue the tool server's policy, and the
    tool's secret written (the tool's read-only rule is the more specific one at
    `secret/data/tool/*`, so the admin does not write there); (tenant, token)."""
    root = hvac.Client(url=server.addr, token=server.root_token)
    tenant = unique_name()
    root.sys.create_namespace(tenant)
    scoped = hvac.Client(url=server.addr, token=server.root_token, namespace=tenant)
    scoped.sys.create_or_update_acl_policy("admin", ADMIN_POLICY)
    scoped.sys.create_or_update_acl_policy("tool", TOOL_POLICY)
    admin = scoped.auth.token.create(policies=["admin", "tool"], ttl="1h")["auth"]["client_token"]
    scoped.secrets.kv.v2.create_or_update_secret("tool/api", secret={"key": TOOL_SECRET})
    return tenant, remember_secret(admin)


def test_hvac_admin_wraps_a_token_and_the_tool_server_unwraps_it_once(
    tenantvault_server: TenantVaultServer,
) -> None:
    tenant, admin_token = _tenant_admin(tenantvault_server)
    admin = hvac.Client(url=tenantvault_server.addr, token=admin_token)

    wrapped = admin.auth.token.create(policies=["tool"], ttl="1h", wrap_ttl="5m")
    info = wrapped["wrap_info"]
    remember_secret(info["token"])
    assert wrapped["auth"] is None
    assert wrapped["data"] is None
    assert info["ttl"] == 300
    assert info["creation_path"] == "auth/token/create"

    # The tool server holds only the wrapping token, and no namespace: it unwraps once.
    tool = hvac.Client(url=tenantvault_server.addr, token=info["token"])
    unwrapped = tool.sys.unwrap()
    tool_token = remember_secret(unwrapped["auth"]["client_token"])
    assert unwrapped["auth"]["accessor"] == info["wrapped_accessor"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="wrapping token is not valid"):
        tool.sys.unwrap()

    tool = hvac.Client(url=tenantvault_server.addr, token=tool_token)
    read = tool.secrets.kv.v2.read_secret_version("tool/api", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"key": TOOL_SECRET}
    with pytest.raises(hvac.exceptions.Forbidden):
        tool.secrets.kv.v2.read_secret_version("other", raise_on_deleted_version=True)
    assert tenant


def test_hvac_wrap_lookup_unwrap_with_a_body_token(tenantvault_server: TenantVaultServer) -> None:
    tenant, admin_token = _tenant_admin(tenantvault_server)
    admin = hvac.Client(url=tenantvault_server.addr, token=admin_token, namespace=tenant)
    payload = {"api_key": remember_secret(canary("wrap-"))}
    info: dict[str, Any] = admin.sys.wrap(payload=payload, ttl=120)["wrap_info"]
    remember_secret(info["token"])
    looked = admin.adapter.post("/v1/sys/wrapping/lookup", json={"token": info["token"]})
    assert looked["data"]["creation_ttl"] == 120
    assert looked["data"]["creation_path"] == "sys/wrapping/wrap"
    # hvac's generic read with wrap_ttl (here of the admin's own secret).
    read_wrapped = admin.read("secret/data/tool/api", wrap_ttl="1m")
    assert read_wrapped["wrap_info"]["creation_path"] == "secret/data/tool/api"
    remember_secret(read_wrapped["wrap_info"]["token"])
    assert admin.sys.unwrap(token=info["token"])["data"] == payload
    with pytest.raises(hvac.exceptions.InvalidRequest):
        admin.sys.unwrap(token=info["token"])
    unwrapped = admin.sys.unwrap(token=read_wrapped["wrap_info"]["token"])
    assert unwrapped["data"]["data"] == {"key": TOOL_SECRET}


def test_bao_cli_kv_get_wrapped_and_bao_unwrap(
    bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    tenant, admin_token = _tenant_admin(tenantvault_server)
    secret = remember_secret(canary("cli-wrap-"))
    ok(bao.run("kv", "put", "secret/app/db", f"password={secret}", token=admin_token))
    wrapped = json.loads(
        ok(
            bao.run("kv", "get", "-wrap-ttl=5m", "-format=json", "secret/app/db", token=admin_token)
        ).out
    )
    token = remember_secret(wrapped["wrap_info"]["token"])
    assert wrapped["wrap_info"]["ttl"] == 300
    assert secret not in json.dumps(wrapped)
    looked = json.loads(
        ok(bao.run("write", "-format=json", "sys/wrapping/lookup", f"token={token}")).out
    )
    assert looked["data"]["creation_path"] == "secret/data/app/db"
    # `bao unwrap TOKEN` sends it in the body, with the caller's own token.
    unwrapped = json.loads(ok(bao.run("unwrap", "-format=json", token, token=admin_token)).out)
    assert unwrapped["data"]["data"] == {"password": secret}
    again = bao.run("unwrap", token, token=admin_token)
    assert again.code != 0
    assert "wrapping token is not valid or does not exist" in again.text
    # `bao unwrap` with no argument unwraps the token it runs with.
    created = json.loads(
        ok(
            bao.run(
                "token", "create", "-policy=tool", "-wrap-ttl=2m", "-format=json", token=admin_token
            )
        ).out
    )
    wrapping = remember_secret(created["wrap_info"]["token"])
    inner = json.loads(ok(bao.run("unwrap", "-format=json", token=wrapping)).out)
    remember_secret(inner["auth"]["client_token"])
    assert inner["auth"]["accessor"] == created["wrap_info"]["wrapped_accessor"]
    assert tenant


def test_hvac_approle_wrapped_secret_id_is_unwrapped_once_then_logs_in(
    tenantvault_server: TenantVaultServer,
) -> None:
    """Issue 11 acceptance 2's pattern: the admin generates a wrapped secret-id, the tool
    server unwraps it once (a second unwrap fails), logs in and reads its secret."""
    tenant, _ = _tenant_admin(tenantvault_server)
    admin = hvac.Client(
        url=tenantvault_server.addr, token=tenantvault_server.root_token, namespace=tenant
    )
    admin.sys.enable_auth_method("approle")
    admin.auth.approle.create_or_update_approle("tool", token_policies=["tool"], token_ttl="1h")
    role_id = admin.auth.approle.read_role_id("tool")["data"]["role_id"]
    wrapped = admin.auth.approle.generate_secret_id("tool", wrap_ttl="2m")
    info = wrapped["wrap_info"]
    wrapping_token = remember_secret(info["token"])
    assert info["creation_path"] == "auth/approle/role/tool/secret-id"

    tool = hvac.Client(url=tenantvault_server.addr, token=wrapping_token)
    secret_id = remember_secret(tool.sys.unwrap()["data"]["secret_id"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="wrapping token is not valid"):
        tool.sys.unwrap()
    tool = hvac.Client(url=tenantvault_server.addr, namespace=tenant)
    login = tool.auth.approle.login(role_id=role_id, secret_id=secret_id)
    remember_secret(login["auth"]["client_token"])
    read = tool.secrets.kv.v2.read_secret_version("tool/api", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"key": TOOL_SECRET}
