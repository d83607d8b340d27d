"""One grammar of request paths for every surface (issue 9): the Core refuses a malformed
path from the Python API exactly as the HTTP layer does, before it reads the token."""

from __future__ import annotations

import pytest

import tenantvault
from tenantvault import InvalidPathError, Operation
from tenantvault._paths import check_request_path
from tenantvault.server._translate import api_path

BAD = [
    "secret/data/../x",
    "secret/data/./x",
    "secret//data/x",
    "/secret/data/x",
    "secret/data/x%2Fy",
    "secret/data/x?y",
    "secret/data/x#y",
    "secret/data/a b",
    "secret/data/x\\y",
    "secret/data/\x00",
    "secret/data/\u202ex",
]


@pytest.mark.parametrize("path", BAD)
def test_the_http_layer_and_the_core_share_one_grammar(path: str) -> None:
    with pytest.raises(InvalidPathError):
        check_request_path(path)
    with pytest.raises(InvalidPathError):
        api_path(b"/v1/" + path.encode("utf-8"))


@pytest.mark.parametrize("path", BAD)
async def test_a_malformed_path_from_python_costs_no_token_use(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant, path: str
) -> None:
    await acme.policies.write("reader", 'path "secret/*" { capabilities = ["read"] }')
    limited = await acme.tokens.create(policies=["reader"], num_uses=1)
    holder = tv.with_token(limited.token)
    with pytest.raises(InvalidPathError):
        await holder.request(Operation.READ, path, namespace="acme")
    looked = await holder.request(Operation.READ, "auth/token/lookup-self")
    assert (looked.data or {})["num_uses"] == -1  # the lookup took the one use, not the path
