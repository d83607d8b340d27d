"""`sys/policies/password/*` through the HTTP API: Vault's shapes, statuses and texts, per
tenant, behind the ACL."""

from __future__ import annotations

import base64

import pytest

from tests.server.conftest import Vault, assert_no_canary

POLICY = 'length = 24\nrule "charset" {\n  charset = "abcdef0123"\n  min-chars = 2\n}\n'
BASE = "sys/policies/password"


async def test_create_read_list_generate_delete(vault: Vault) -> None:
    await vault.create_tenant("pwacme")
    ns = "pwacme"
    response = await vault.root("POST", f"{BASE}/app", namespace=ns, json={"policy": POLICY})
    assert response.status_code == 204, response.text
    response = await vault.root("GET", f"{BASE}/app", namespace=ns)
    assert (response.status_code, response.json()["data"]) == (200, {"policy": POLICY})
    response = await vault.root("LIST", BASE, namespace=ns)
    assert (response.status_code, response.json()["data"]) == (200, {"keys": ["app"]})
    response = await vault.root("GET", f"{BASE}/app/generate", namespace=ns)
    assert response.status_code == 200, response.text
    password = response.json()["data"]["password"]
    assert sorted(response.json()["data"]) == ["password"]
    assert len(password) == 24
    assert set(password) <= set("abcdef0123")
    response = await vault.root("DELETE", f"{BASE}/app", namespace=ns)
    assert response.status_code == 204
    missing = {"errors": ["1 error occurred:\n\t* policy does not exist\n\n"]}
    for path in (f"{BASE}/app", f"{BASE}/app/generate"):
        response = await vault.root("GET", path, namespace=ns)
        assert (response.status_code, response.json()) == (404, missing)
    response = await vault.root("LIST", BASE, namespace=ns)
    assert (response.status_code, response.json()) == (404, {"errors": []})
    # Deleting what is not there is done (204), as in OpenBao.
    assert (await vault.root("DELETE", f"{BASE}/app", namespace=ns)).status_code == 204


async def test_a_base64_policy_is_stored_decoded(vault: Vault) -> None:
    encoded = base64.b64encode(POLICY.encode()).decode()
    response = await vault.root("POST", f"{BASE}/b64", json={"policy": encoded})
    assert response.status_code == 204, response.text
    response = await vault.root("GET", f"{BASE}/b64")
    assert response.json()["data"] == {"policy": POLICY}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "1 error occurred:\n\t* missing policy\n\n"),
        (
            {"policy": 'length = 3\nrule "charset" {\n charset = "ab"\n}'},
            "1 error occurred:\n\t* passwords must be between 4 and 100 characters\n\n",
        ),
        (
            {"policy": 'length = 101\nrule "charset" {\n charset = "ab"\n}'},
            "1 error occurred:\n\t* passwords must be between 4 and 100 characters\n\n",
        ),
        (
            {"policy": "length = 20"},
            "1 error occurred:\n\t* invalid password policy: 1 error occurred:\n"
            "\t* no charset specified\n\n\n\n",
        ),
    ],
)
async def test_bad_policies_are_refused_with_openbaos_400(
    vault: Vault, body: dict[str, str], error: str
) -> None:
    response = await vault.root("POST", f"{BASE}/bad", json=body)
    assert (response.status_code, response.json()) == (400, {"errors": [error]})
    assert (await vault.root("GET", f"{BASE}/bad")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", BASE), ("POST", f"{BASE}/app/generate"), ("LIST", f"{BASE}/app")],
)
async def test_other_methods_are_405(vault: Vault, method: str, path: str) -> None:
    response = await vault.root(method, path)
    assert (response.status_code, response.json()) == (
        405,
        {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]},
    )


async def test_policies_are_per_tenant(vault: Vault) -> None:
    await vault.create_tenant("pwone")
    await vault.create_tenant("pwtwo")
    response = await vault.root("POST", f"{BASE}/p", namespace="pwone", json={"policy": POLICY})
    assert response.status_code == 204
    for ns in ("pwtwo", None):
        assert (await vault.root("GET", f"{BASE}/p", namespace=ns)).status_code == 404
        assert (await vault.root("GET", f"{BASE}/p/generate", namespace=ns)).status_code == 404
        assert (await vault.root("LIST", BASE, namespace=ns)).status_code == 404


async def test_the_acl_decides_each_endpoint(vault: Vault) -> None:
    await vault.create_tenant("pwacl")
    await vault.write_policy(
        "pwacl", "writer", 'path "sys/policies/password/*" { capabilities = ["create"] }'
    )
    await vault.write_policy(
        "pwacl", "gen", 'path "sys/policies/password/app/generate" { capabilities = ["read"] }'
    )
    writer = (await vault.create_token("pwacl", ["writer"]))["client_token"]
    generator = (await vault.create_token("pwacl", ["gen"]))["client_token"]
    body = {"policy": POLICY}
    response = await vault.request(
        "POST", f"{BASE}/app", token=writer, namespace="pwacl", json=body
    )
    assert response.status_code == 204, response.text
    # Create, not update: the second write needs `update`.
    response = await vault.request(
        "POST", f"{BASE}/app", token=writer, namespace="pwacl", json=body
    )
    assert response.status_code == 403
    response = await vault.request("GET", f"{BASE}/app/generate", token=writer, namespace="pwacl")
    assert response.status_code == 403
    response = await vault.request(
        "GET", f"{BASE}/app/generate", token=generator, namespace="pwacl"
    )
    assert response.status_code == 200, response.text
    for method, path in (("GET", f"{BASE}/app"), ("LIST", BASE), ("DELETE", f"{BASE}/app")):
        response = await vault.request(method, path, token=generator, namespace="pwacl")
        assert response.status_code == 403, (method, path)


async def test_generated_passwords_stay_out_of_logs_and_audit(
    vault: Vault, logs: pytest.LogCaptureFixture
) -> None:
    await vault.root("POST", f"{BASE}/app", json={"policy": POLICY})
    passwords = []
    for _ in range(3):
        response = await vault.root("GET", f"{BASE}/app/generate")
        passwords.append(response.json()["data"]["password"])
    entries = await vault.root("GET", "sys/audit/events")
    assert entries.status_code == 200, entries.text
    assert "sys/policies/password/app/generate" in entries.text  # the calls were audited
    assert_no_canary([entries.text, *(r.getMessage() for r in logs.records)], *passwords)
