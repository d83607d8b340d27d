"""Tenant selection with VAULT_NAMESPACE / -namespace, and a tenant token confined to its tenant."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.cli.conftest import CLI, assert_clean, canary

EVERYTHING = 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }'


@pytest.fixture
def two_tenants(cli: CLI) -> Iterator[tuple[str, str]]:
    names = (f"a{uuid.uuid4().hex[:12]}", f"b{uuid.uuid4().hex[:12]}")
    for name in names:
        assert cli("tenant", "create", name).code == 0
    yield names
    for name in names:
        cli("tenant", "delete", name)


def test_namespace_selects_the_tenant(cli: CLI, two_tenants: tuple[str, str]) -> None:
    first, second = two_tenants
    secret = canary()
    assert cli("kv", "put", "secret/app", f"k={secret}", namespace=first).code == 0
    assert cli("kv", "get", "-field=k", "secret/app", namespace=first).out == secret
    assert cli(
        "kv", "get", "-field=k", "secret/app", f"-namespace={first}", namespace=None
    ).out == (secret)
    assert cli("kv", "get", "-field=k", "secret/app", "-ns", first, namespace=None).out == secret
    other = cli("kv", "get", "secret/app", namespace=second)
    assert other.code == 2
    assert secret not in other.out + other.err
    assert cli("kv", "list", "secret/", namespace=second).code == 2


def test_flag_wins_over_vault_namespace(cli: CLI, two_tenants: tuple[str, str]) -> None:
    first, second = two_tenants
    cli("kv", "put", "secret/app", "k=v", namespace=first)
    got = cli("kv", "get", "-field=k", f"-namespace={first}", "secret/app", namespace=second)
    assert got.out == "v"


def test_a_tenant_token_cannot_see_another_tenant(cli: CLI, two_tenants: tuple[str, str]) -> None:
    first, second = two_tenants
    secret = canary()
    assert cli("kv", "put", "secret/app", f"k={secret}", namespace=second).code == 0
    assert cli("policy", "write", "all", "-", stdin=EVERYTHING, namespace=first).code == 0
    token = cli("token", "create", "-policy=all", "-field=token", namespace=first).out

    own = cli("kv", "put", "secret/mine", "x=1", token=token, namespace=None)
    assert own.code == 0, own.err  # the token's own tenant needs no namespace

    for namespace in (second, f"{second}/"):
        for argv in (
            ("kv", "get", "secret/app"),
            ("kv", "list", "secret/"),
            ("kv", "put", "secret/app", "k=overwritten"),
            ("kv", "metadata", "get", "secret/app"),
            ("policy", "list"),
            ("token", "lookup"),
        ):
            got = cli(*argv, token=token, namespace=namespace)
            assert got.code == 1, (argv, got.out, got.err)
            assert "Code: 403" in got.err
            assert secret not in got.out
            assert_clean(got, token, secret)

    # The data of the second tenant is untouched and still visible to root there.
    assert cli("kv", "get", "-field=k", "secret/app", namespace=second).out == secret
    assert cli("kv", "get", "secret/mine", namespace=second).code == 2


def test_a_tenant_token_cannot_manage_tenants(cli: CLI, two_tenants: tuple[str, str]) -> None:
    first, _ = two_tenants
    assert cli("policy", "write", "all", "-", stdin=EVERYTHING, namespace=first).code == 0
    token = cli("token", "create", "-policy=all", "-field=token", namespace=first).out
    listing = cli("tenant", "list", token=token, namespace=None)
    assert listing.code != 0
    created = cli("tenant", "create", f"x{uuid.uuid4().hex[:8]}", token=token, namespace=None)
    assert created.code == 1
    assert_clean(created, token)
    tenants = json.loads(cli("tenant", "list", "-format=json", namespace=None).out)
    assert f"{first}/" in tenants
