"""The jwt auth method with the real `bao` CLI, as Vault's JWT guide drives it: `bao auth
enable jwt`, `bao write auth/jwt/config`, `bao write auth/jwt/role/...`, and
`bao write auth/jwt/login` by a tool server."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.integration._support import BaoCLI, remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

KEY = ed25519.Ed25519PrivateKey.generate()
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def test_the_jwt_guide_with_the_bao_cli(bao: BaoCLI, tenantvault_server: TenantVaultServer) -> None:
    root = tenantvault_server.root_token
    tenant = unique_name()
    assert bao.run("namespace", "create", tenant, token=root).code == 0

    def admin(*args: str) -> str:
        result = bao.run(*args, token=root, namespace=tenant)
        assert result.code == 0, result.text
        return result.out

    admin("auth", "enable", "jwt")
    assert "jwt/" in admin("auth", "list")
    admin("write", "auth/jwt/config", f"jwt_validation_pubkeys={PEM}", "bound_issuer=https://idp")
    # The guide's legacy names (policies, ttl) work as the token_* fields.
    admin(
        "write",
        "auth/jwt/role/tools",
        "role_type=jwt",
        "user_claim=sub",
        "bound_audiences=tv",
        "policies=default,app",
        "ttl=20m",
    )
    role = json.loads(admin("read", "-format=json", "auth/jwt/role/tools"))["data"]
    assert (role["token_policies"], role["token_ttl"]) == (["default", "app"], 1200)
    assert json.loads(admin("list", "-format=json", "auth/jwt/role")) == ["tools"]

    now = int(time.time())
    claims = {"iss": "https://idp", "sub": "tool-9", "aud": "tv", "iat": now, "exp": now + 60}
    # Remembered: the module's log scan fails if a JWT shows up in a server log.
    token = remember_secret(jwt.encode(claims, KEY, algorithm="EdDSA"))
    login = bao.run(
        "write", "-format=json", "auth/jwt/login", "role=tools", f"jwt={token}", namespace=tenant
    )
    assert login.code == 0, login.text
    auth = json.loads(login.out)["auth"]
    remember_secret(auth["client_token"])
    assert auth["policies"] == ["app", "default"]
    assert auth["lease_duration"] == 1200

    expired = remember_secret(
        jwt.encode({**claims, "exp": now - 3600, "iat": now - 7200}, KEY, algorithm="EdDSA")
    )
    refused = bao.run("write", "auth/jwt/login", "role=tools", f"jwt={expired}", namespace=tenant)
    assert refused.code == 2
    assert "token is expired" in refused.err
    assert expired not in refused.text
