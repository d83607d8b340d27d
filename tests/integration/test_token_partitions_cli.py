"""Namespaced tokens through the real `bao` CLI, against `tenantvault serve` and a real
`bao server -dev`: tokens are opaque to the CLI, whatever their suffix, and a root token's
children in two namespaces go with it.

Tokens and accessors differ between the servers, so the scenario runs once per server and
the exit codes (and Vault statuses) of its steps must match, except where OpenBao answers a
lookup of another namespace's accessor with a 500 and we with Vault's "invalid accessor"
(400), as before tokens were partitioned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration._support import (
    BaoCLI,
    BaoResult,
    bao_executable,
    remember_secret,
    unique_name,
)
from tests.integration.conftest import OpenBaoServer, TenantVaultServer

pytestmark = pytest.mark.integration

MAKER = 'path "auth/token/*" { capabilities = ["create", "update", "read"] }'


def _outcome(result: BaoResult) -> str:
    """What must match: success, or the status Vault reported."""
    if result.code == 0:
        return "ok"
    found = re.search(r"Code: (\d+)", result.err)
    return f"code {found.group(1)}" if found else f"exit {result.code}"


def _auth(result: BaoResult) -> dict[str, Any]:
    assert result.code == 0, result.err
    auth: dict[str, Any] = json.loads(result.out)["auth"]
    remember_secret(auth["client_token"])
    return auth


def _scenario(bao: BaoCLI, root: str) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    first, second = unique_name(), unique_name()
    for name in (first, second):
        assert bao.run("namespace", "create", name, token=root).code == 0
        policy = bao.run("policy", "write", "maker", "-", token=root, namespace=name, stdin=MAKER)
        assert policy.code == 0, policy.err

    def step(label: str, *args: str, token: str = root, namespace: str | None = None) -> None:
        outcomes[label] = _outcome(bao.run(*args, token=token, namespace=namespace))

    # A token of the first namespace, by the root token acting there.
    mine = _auth(
        bao.run("token", "create", "-format=json", "-policy=maker", token=root, namespace=first)
    )
    token, accessor = mine["client_token"], mine["accessor"]
    step("lookup in its namespace", "token", "lookup", token, namespace=first)
    step("lookup-self", "token", "lookup", token=token, namespace=first)
    step("lookup -accessor", "token", "lookup", "-accessor", "--", accessor, namespace=first)
    step(
        "lookup -accessor elsewhere",
        "token",
        "lookup",
        "-accessor",
        "--",
        accessor,
        namespace=second,
    )
    step(
        "revoke -accessor elsewhere",
        "token",
        "revoke",
        "-accessor",
        "--",
        accessor,
        namespace=second,
    )
    step("still works", "token", "lookup", token=token, namespace=first)
    step("revoke -accessor", "token", "revoke", "-accessor", "--", accessor, namespace=first)
    step("gone", "token", "lookup", token=token, namespace=first)
    # A root-namespace token parents tokens in both namespaces; revoking it revokes them.
    parent = _auth(bao.run("token", "create", "-format=json", "-policy=root", token=root))
    children = [
        _auth(
            bao.run(
                "token",
                "create",
                "-format=json",
                "-policy=maker",
                token=parent["client_token"],
                namespace=name,
            )
        )
        for name in (first, second)
    ]
    grandchild = _auth(
        bao.run(
            "token",
            "create",
            "-format=json",
            "-policy=maker",
            token=children[0]["client_token"],
            namespace=first,
        )
    )
    step("revoke the root parent", "token", "revoke", parent["client_token"])
    for label, child, name in (
        ("first child", children[0], first),
        ("second child", children[1], second),
        ("grandchild", grandchild, first),
    ):
        step(f"{label} gone", "token", "lookup", token=child["client_token"], namespace=name)
    return outcomes


@pytest.fixture
def openbao_cli(openbao_server: OpenBaoServer, bao_cli_home: Path) -> BaoCLI:
    """The real `bao` CLI pointed at the real OpenBao server."""
    return BaoCLI(bao_executable(), openbao_server.addr, bao_cli_home)


def test_namespaced_tokens_through_the_bao_cli_answer_like_openbao(
    bao: BaoCLI,
    tenantvault_server: TenantVaultServer,
    openbao_cli: BaoCLI,
    openbao_server: OpenBaoServer,
) -> None:
    theirs = _scenario(openbao_cli, openbao_server.root_token)
    ours = _scenario(bao, tenantvault_server.root_token)
    # The reference itself, so that a change in OpenBao shows up here and not as a mystery.
    assert theirs["lookup -accessor elsewhere"] == "code 500"
    assert theirs["revoke -accessor elsewhere"] == "code 500"
    assert ours["lookup -accessor elsewhere"] == "code 400"
    assert ours["revoke -accessor elsewhere"] == "code 400"
    elsewhere = ("lookup -accessor elsewhere", "revoke -accessor elsewhere")
    assert {k: v for k, v in ours.items() if k not in elsewhere} == {
        k: v for k, v in theirs.items() if k not in elsewhere
    }
    assert ours["still works"] == "ok"
    assert ours["gone"] == "code 403"
    assert ours["grandchild gone"] == "code 403"
