"""The jwt auth method through hvac's own `client.auth.jwt` against `tenantvault serve`: the
calls a tool server's operator and the tool server make, unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import hvac
import hvac.exceptions
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration._support import remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

ISSUER = "https://mcp-platform.example"
KEY = ec.generate_private_key(ec.SECP256R1())
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
APP = 'path "secret/data/app/*" { capabilities = ["read"] }'


def _jwt(**changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "tool-1", "aud": "tv", "iat": now, "exp": now + 300}
    claims.update(changes)
    # Remembered: the module's log scan fails if a JWT shows up in a server log.
    return remember_secret(jwt.encode(claims, KEY, algorithm="ES256"))


@pytest.fixture
def clients(tenantvault_server: TenantVaultServer) -> Iterator[tuple[hvac.Client, hvac.Client]]:
    """(the root token in a fresh tenant, an anonymous client of that tenant)."""
    root = hvac.Client(url=tenantvault_server.addr, token=tenantvault_server.root_token)
    tenant = unique_name()
    root.sys.create_namespace(tenant)
    admin = hvac.Client(
        url=tenantvault_server.addr, token=tenantvault_server.root_token, namespace=tenant
    )
    anonymous = hvac.Client(url=tenantvault_server.addr, namespace=tenant)
    try:
        yield admin, anonymous
    finally:
        for client in (root, admin, anonymous):
            client.adapter.close()


def test_configure_role_and_login_with_hvac(clients: tuple[hvac.Client, hvac.Client]) -> None:
    admin, tool = clients
    admin.sys.enable_auth_method("jwt")
    admin.sys.create_or_update_policy("app", APP)
    admin.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": "s3cret"})
    admin.auth.jwt.configure(
        jwt_validation_pubkeys=[PEM], bound_issuer=ISSUER, jwt_supported_algs=["ES256"]
    )
    assert admin.auth.jwt.read_config()["data"]["bound_issuer"] == ISSUER
    admin.auth.jwt.create_role(
        name="tools",
        user_claim="sub",
        allowed_redirect_uris=[],
        role_type="jwt",
        bound_audiences=["tv"],
        token_policies=["app"],
        token_ttl="15m",
    )
    role = admin.auth.jwt.read_role("tools")["data"]
    assert (role["token_policies"], role["token_ttl"], role["role_type"]) == (["app"], 900, "jwt")
    assert admin.auth.jwt.list_roles()["data"]["keys"] == ["tools"]

    login = tool.auth.jwt.jwt_login(role="tools", jwt=_jwt())
    remember_secret(login["auth"]["client_token"])
    assert login["auth"]["policies"] == ["app", "default"]
    assert tool.token == login["auth"]["client_token"]  # use_token=True, as hvac documents
    secret = tool.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)
    assert secret["data"]["data"] == {"password": "s3cret"}
    with pytest.raises(hvac.exceptions.Forbidden):
        tool.sys.list_auth_methods()

    with pytest.raises(hvac.exceptions.InvalidRequest, match="token is expired"):
        tool.auth.jwt.jwt_login(role="tools", jwt=_jwt(exp=int(time.time()) - 3600))
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid audience"):
        tool.auth.jwt.jwt_login(role="tools", jwt=_jwt(aud="elsewhere"))

    admin.auth.jwt.delete_role("tools")
    with pytest.raises(hvac.exceptions.InvalidPath):
        admin.auth.jwt.read_role("tools")
