"""Token roles (`auth/token/roles/*`, `auth/token/create/<role>`) and `LIST
auth/token/accessors`, with OpenBao 2.7.2's fields, rules and texts. The role's rules are the
Core's (the grant), so each test also shows what a caller cannot get around them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Vault

CREATOR = 'path "auth/token/create/*" { capabilities = ["update"] }'


@pytest.fixture
async def acme(vault: Vault) -> str:
    """Tenant acme with policies a, b and c; returns a token that may only use roles."""
    await vault.create_tenant("acme")
    for name in ("a", "b", "c"):
        await vault.write_policy("acme", name, f'path "x/{name}" {{ capabilities = ["read"] }}')
    await vault.write_policy("acme", "creator", CREATOR)
    return str((await vault.create_token("acme", ["creator"]))["client_token"])


async def _role(vault: Vault, name: str, body: dict[str, Any], tenant: str = "acme") -> None:
    reply = await vault.root("POST", f"auth/token/roles/{name}", namespace=tenant, json=body)
    assert reply.status_code == 204, reply.text


async def _create(
    vault: Vault, token: str, role: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    reply = await vault.request(
        "POST", f"auth/token/create/{role}", token=token, namespace="acme", json=body or {}
    )
    return reply.status_code, reply.json()


async def _lookup(vault: Vault, token: str) -> dict[str, Any]:
    reply = await vault.request("GET", "auth/token/lookup-self", token=token, namespace="acme")
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()["data"]
    return data


async def test_a_role_reads_back_with_openbaos_fields(vault: Vault, acme: str) -> None:
    await _role(vault, "plain", {})
    await _role(
        vault,
        "full",
        {
            "allowed_policies": ["b", "a"],
            "disallowed_policies": "c",
            "orphan": True,
            "renewable": False,
            "path_suffix": "sfx",
            "token_period": "1h",
            "token_explicit_max_ttl": "2h",
            "allowed_entity_aliases": ["x"],
            "token_bound_cidrs": ["127.0.0.1/32"],
            "token_type": "service",
        },
    )
    plain = (await vault.root("GET", "auth/token/roles/plain", namespace="acme")).json()
    assert plain["data"] == {
        "allowed_entity_aliases": None,
        "allowed_policies": [],
        "allowed_policies_glob": [],
        "disallowed_policies": [],
        "disallowed_policies_glob": [],
        "explicit_max_ttl": 0,
        "name": "plain",
        "orphan": False,
        "path_suffix": "",
        "period": 0,
        "renewable": True,
        "token_explicit_max_ttl": 0,
        "token_no_default_policy": False,
        "token_period": 0,
        "token_type": "default-service",
    }
    full = (await vault.root("GET", "auth/token/roles/full", namespace="acme")).json()["data"]
    assert full["allowed_policies"] == ["a", "b"]
    assert full["disallowed_policies"] == ["c"]
    assert full["token_bound_cidrs"] == ["127.0.0.1"]
    assert (full["token_period"], full["token_explicit_max_ttl"]) == (3600, 7200)
    assert (full["orphan"], full["renewable"], full["path_suffix"]) == (True, False, "sfx")
    listed = await vault.root("LIST", "auth/token/roles", namespace="acme")
    assert listed.json()["data"] == {"keys": ["full", "plain"]}


async def test_legacy_spellings_show_under_both_names(vault: Vault, acme: str) -> None:
    await _role(
        vault, "old", {"period": "1h", "explicit_max_ttl": "2h", "bound_cidrs": ["10.0.0.0/8"]}
    )
    data = (await vault.root("GET", "auth/token/roles/old", namespace="acme")).json()["data"]
    assert (data["period"], data["token_period"]) == (3600, 3600)
    assert (data["explicit_max_ttl"], data["token_explicit_max_ttl"]) == (7200, 7200)
    assert data["bound_cidrs"] == data["token_bound_cidrs"] == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"token_type": "nope"}, "invalid 'token_type' value \"nope\""),
        ({"token_type": "batch"}, "batch tokens are not supported"),
        (
            {"path_suffix": "a/../b"},
            r"given role path suffix contains invalid characters; must match \w[\w-.]+\w",
        ),
    ],
)
async def test_bad_role_fields_are_400(
    vault: Vault, acme: str, body: dict[str, Any], error: str
) -> None:
    reply = await vault.root("POST", "auth/token/roles/bad", namespace="acme", json=body)
    assert (reply.status_code, reply.json()) == (400, {"errors": [error]})
    assert (await vault.root("GET", "auth/token/roles/bad", namespace="acme")).status_code == 404


async def test_deleting_a_role_is_204_even_when_missing(vault: Vault, acme: str) -> None:
    await _role(vault, "gone", {})
    for _ in range(2):
        reply = await vault.root("DELETE", "auth/token/roles/gone", namespace="acme")
        assert reply.status_code == 204
    assert (await vault.root("LIST", "auth/token/roles", namespace="acme")).status_code == 404


async def test_allowed_policies_are_the_default_and_the_limit(vault: Vault, acme: str) -> None:
    """The creator holds none of a, b: through the role it may hand them out, nothing else."""
    await _role(vault, "ra", {"allowed_policies": ["a", "b"], "disallowed_policies": ["c"]})
    status, body = await _create(vault, acme, "ra")
    assert status == 200
    assert body["auth"]["policies"] == ["a", "b", "default"]
    status, body = await _create(vault, acme, "ra", {"policies": ["a"]})
    assert body["auth"]["policies"] == ["a", "default"]
    status, body = await _create(vault, acme, "ra", {"policies": ["c"]})
    assert (status, body) == (
        400,
        {
            "errors": [
                'token policies (["c" "default"]) must be subset of the role\'s allowed '
                'policies (["a" "b" "default"]) or glob policies ([])'
            ]
        },
    )


async def test_allowed_globs_and_disallowed_policies(vault: Vault, acme: str) -> None:
    await _role(vault, "glob", {"allowed_policies_glob": ["a*"]})
    status, body = await _create(vault, acme, "glob", {"policies": ["a"]})
    assert (status, body["auth"]["policies"]) == (200, ["a", "default"])
    assert (await _create(vault, acme, "glob", {"policies": ["b"]}))[0] == 400
    await _role(vault, "deny", {"disallowed_policies": ["c"]})
    status, body = await _create(vault, acme, "deny", {"policies": ["a"]})
    assert (status, body["auth"]["policies"]) == (200, ["a", "default"])
    status, body = await _create(vault, acme, "deny", {"policies": ["c"]})
    assert (status, body) == (400, {"errors": ['token policy "c" is disallowed by this role']})


async def test_a_role_without_policy_lists_keeps_the_subset_rule(vault: Vault, acme: str) -> None:
    await _role(vault, "none", {})
    status, body = await _create(vault, acme, "none", {"policies": ["a"]})
    assert (status, body) == (403, {"errors": ["child policies must be subset of parent"]})
    status, body = await _create(vault, acme, "none")
    assert (status, body["auth"]["policies"]) == (200, ["creator", "default"])


async def test_a_role_cannot_make_a_root_token_for_a_non_root_parent(
    vault: Vault, acme: str
) -> None:
    await _role(vault, "rr", {"allowed_policies": ["root"]})
    status, body = await _create(vault, acme, "rr")
    assert (status, body) == (
        400,
        {"errors": ["root tokens may not be created without parent token being root"]},
    )


async def test_orphan_period_ttl_cap_renewable_and_path_come_from_the_role(
    vault: Vault, acme: str
) -> None:
    """No sudo is needed for the role's orphan and period; the caller cannot ask for more."""
    await _role(
        vault,
        "ro",
        {
            "orphan": True,
            "token_period": "1h",
            "token_explicit_max_ttl": "2h",
            "renewable": False,
            "path_suffix": "sfx",
        },
    )
    status, body = await _create(vault, acme, "ro", {"explicit_max_ttl": "48h"})
    assert status == 200, body
    assert body["auth"]["orphan"] is True
    data = await _lookup(vault, body["auth"]["client_token"])
    assert data["path"] == "auth/token/create/ro/sfx"
    assert (data["period"], data["explicit_max_ttl"], data["renewable"]) == (3600, 7200, False)


async def test_through_a_role_no_parent_is_ignored_and_periods_still_need_sudo(
    vault: Vault, acme: str
) -> None:
    await _role(vault, "ra", {"allowed_policies": ["a"]})
    status, body = await _create(vault, acme, "ra", {"no_parent": True})
    assert (status, body["auth"]["orphan"]) == (200, False)
    status, body = await _create(vault, acme, "ra", {"period": "1h"})
    assert (status, body) == (
        400,
        {"errors": ["root or sudo privileges required to create periodic token"]},
    )


async def test_a_roles_cidr_binding_follows_its_tokens(vault: Vault, acme: str) -> None:
    """The in-process client calls from 127.0.0.1: a token bound elsewhere is refused."""
    await _role(vault, "here", {"allowed_policies": ["a"], "token_bound_cidrs": "127.0.0.0/8"})
    await _role(vault, "there", {"allowed_policies": ["a"], "token_bound_cidrs": "10.0.0.0/8"})
    here = (await _create(vault, acme, "here"))[1]["auth"]["client_token"]
    there = (await _create(vault, acme, "there"))[1]["auth"]["client_token"]
    assert (await _lookup(vault, here))["policies"] == ["a", "default"]
    refused = await vault.request("GET", "auth/token/lookup-self", token=there, namespace="acme")
    assert refused.status_code == 403


async def test_using_a_role_needs_update_on_its_create_path(vault: Vault, acme: str) -> None:
    await _role(vault, "ra", {"allowed_policies": ["a"]})
    await vault.write_policy(
        "acme", "other", 'path "auth/token/create/rb" { capabilities = ["update"] }'
    )
    other = (await vault.create_token("acme", ["other"]))["client_token"]
    status, body = await _create(vault, other, "ra")
    assert (status, body) == (403, {"errors": ["permission denied"]})
    status, body = await _create(vault, acme, "missing")
    assert (status, body) == (400, {"errors": ["unknown role missing"]})


async def test_roles_are_the_tenants_own(vault: Vault, acme: str) -> None:
    """A role of acme is unknown in globex, and globex cannot read or list it."""
    await _role(vault, "ra", {"allowed_policies": ["a"]})
    await vault.create_tenant("globex")
    await vault.write_policy("globex", "creator", CREATOR)
    globex = (await vault.create_token("globex", ["creator"]))["client_token"]
    reply = await vault.request(
        "POST", "auth/token/create/ra", token=globex, namespace="globex", json={}
    )
    assert (reply.status_code, reply.json()) == (400, {"errors": ["unknown role ra"]})
    assert (await vault.root("GET", "auth/token/roles/ra", namespace="globex")).status_code == 404
    assert (await vault.root("LIST", "auth/token/roles", namespace="globex")).status_code == 404
    assert (await vault.root("GET", "auth/token/roles/ra")).status_code == 404


async def test_accessors_list_the_tenants_tokens_for_sudo_only(vault: Vault) -> None:
    admin = await vault.tenant_admin("acme")  # its policy grants sudo on auth/token/*
    made = await vault.create_token("acme", ["default"])
    await vault.create_tenant("globex")
    foreign = await vault.create_token("globex", ["default"])
    listed = await vault.request("LIST", "auth/token/accessors", token=admin, namespace="acme")
    assert listed.status_code == 200, listed.text
    keys = listed.json()["data"]["keys"]
    assert made["accessor"] in keys
    assert foreign["accessor"] not in keys
    root_keys = (await vault.root("LIST", "auth/token/accessors")).json()["data"]["keys"]
    assert made["accessor"] not in root_keys
    await vault.write_policy(
        "acme", "lister", 'path "auth/token/accessors/" { capabilities = ["list"] }'
    )
    lister = (await vault.create_token("acme", ["lister"]))["client_token"]
    denied = await vault.request("LIST", "auth/token/accessors", token=lister, namespace="acme")
    assert denied.status_code == 403
    assert (await vault.root("GET", "auth/token/accessors", namespace="acme")).status_code == 405
