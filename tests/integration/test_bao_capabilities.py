"""`bao token capabilities` (sys/capabilities and sys/capabilities-self, answered by the Core)
against `tenantvault serve`, inside a tenant, as the real OpenBao 2.7 CLI reads them."""

from __future__ import annotations

import json

import pytest

from tests.integration._support import BaoCLI, remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

READER = 'path "secret/data/app/*" { capabilities = ["read", "list"] }\n'


def test_token_capabilities_of_another_token_and_of_self(
    bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    root = tenantvault_server.root_token
    name = unique_name()

    def run(*args: str, token: str = root, stdin: str | None = None) -> str:
        result = bao.run(*args, token=token, namespace=name, stdin=stdin)
        assert result.code == 0, result.err
        return result.out

    assert bao.run("namespace", "create", name, token=root).code == 0
    run("policy", "write", "reader", "-", stdin=READER)
    created = json.loads(run("token", "create", "-format=json", "-policy=reader"))["auth"]
    token = created["client_token"]
    remember_secret(token)
    # Another token's (sys/capabilities), asked by the tenant's root token.
    assert run("token", "capabilities", token, "secret/data/app/db").split() == ["list,", "read"]
    # The caller's own (sys/capabilities-self: the built-in default policy allows it).
    assert run("token", "capabilities", "secret/data/app/db", token=token).split() == [
        "list,",
        "read",
    ]
    assert run("token", "capabilities", "sys/mounts", token=token).strip() == "deny"
