"""Root-namespace-only endpoints are declared, and the Core refuses them in a tenant first.

A tenant gets the endpoint's answer whatever the method or the name it sends — as OpenBao
2.7 does for sys/audit-hash (400 "operation only available in root namespace", also for GET
and for any name); sys/audit devices keep our 403. Parse errors show only in the root
namespace.
"""

from __future__ import annotations

from tests.server.conftest import Vault

ROOT_ONLY = {"errors": ["operation only available in root namespace"]}


async def test_audit_hash_in_a_tenant_is_root_only_whatever_the_method_or_name(
    vault: Vault,
) -> None:
    await vault.create_tenant("acme")
    for method, name in [("POST", "store"), ("GET", "store"), ("POST", "bad..name")]:
        response = await vault.root(
            method, f"sys/audit-hash/{name}", namespace="acme", json={"input": "x"}
        )
        assert response.status_code == 400, (method, name, response.text)
        assert response.json() == ROOT_ONLY


async def test_audit_devices_in_a_tenant_are_403_whatever_the_method_or_name(
    vault: Vault,
) -> None:
    await vault.create_tenant("acme")
    for method, path in [
        ("GET", "sys/audit"),
        ("POST", "sys/audit"),
        ("POST", "sys/audit/dev"),
        ("DELETE", "sys/audit/bad..name"),
    ]:
        response = await vault.root(method, path, namespace="acme", json={"type": "file"})
        assert response.status_code == 403, (method, path, response.text)


async def test_in_the_root_namespace_the_path_is_parsed_as_before(vault: Vault) -> None:
    assert (await vault.root("GET", "sys/audit-hash/store")).status_code == 405
    bad = await vault.root("POST", "sys/audit-hash/-bad", json={"input": "x"})
    assert bad.status_code == 400
    assert bad.json() != ROOT_ONLY
