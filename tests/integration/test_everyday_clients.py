"""Issue 11's everyday endpoints driven by clients no one here wrote, against `tenantvault
serve`: a real `curl -d` (JSON labelled as a form), hvac (`sys.list_policies`,
`sys.read_init_status`, token roles, `list_accessors`, transit export / backup / restore /
trim, random bytes and hashes) and the `bao` CLI (`operator init -status`, `token create
-role`, `list auth/token/accessors`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest

from tests.integration._support import BaoCLI, canary, remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration


@pytest.fixture
def tenant(tenantvault_server: TenantVaultServer) -> Iterator[tuple[hvac.Client, str]]:
    """A fresh tenant, and hvac as its operator (root acting in it)."""
    name = unique_name("ev")
    root = hvac.Client(url=tenantvault_server.addr, token=tenantvault_server.root_token)
    root.sys.create_namespace(name)
    client = hvac.Client(
        url=tenantvault_server.addr, token=tenantvault_server.root_token, namespace=name
    )
    yield client, name
    client.adapter.close()
    root.adapter.close()


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    curl = shutil.which("curl")
    assert curl is not None, "curl is needed for this test (apt-get install curl)"
    return subprocess.run(
        [curl, "--silent", "--show-error", "--write-out", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_curl_d_writes_a_secret_as_in_vaults_api_docs(
    tenantvault_server: TenantVaultServer, tenant: tuple[hvac.Client, str]
) -> None:
    """`curl -d` labels its body application/x-www-form-urlencoded; the JSON is read."""
    client, name = tenant
    value = canary()
    done = _curl(
        "-H",
        f"X-Vault-Token: {tenantvault_server.root_token}",
        "-H",
        f"X-Vault-Namespace: {name}",
        "-d",
        json.dumps({"data": {"a": value}}),
        f"{tenantvault_server.addr}/v1/secret/data/x",
    )
    body, _, status = done.stdout.rpartition("\n")
    assert status == "200", done.stdout + done.stderr
    assert json.loads(body)["data"]["version"] == 1
    read = client.secrets.kv.v2.read_secret_version(path="x", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"a": value}


def test_curl_d_with_form_fields_writes_a_policy_as_openbao_does(
    tenantvault_server: TenantVaultServer, tenant: tuple[hvac.Client, str]
) -> None:
    """A real form body (`curl -d name=value`) is read as fields, as OpenBao reads it."""
    client, name = tenant
    policy = 'path "secret/data/app/*" { capabilities = ["read"] }'
    done = _curl(
        "-H",
        f"X-Vault-Token: {tenantvault_server.root_token}",
        "-H",
        f"X-Vault-Namespace: {name}",
        "--data-urlencode",
        f"policy={policy}",
        f"{tenantvault_server.addr}/v1/sys/policies/acl/from-form",
    )
    assert done.stdout.rpartition("\n")[2] == "204", done.stdout + done.stderr
    assert client.sys.read_acl_policy("from-form")["data"]["policy"] == policy
    # A bad escape fails the whole form, as Go's form parser does, and writes nothing.
    bad = _curl(
        "-H",
        f"X-Vault-Token: {tenantvault_server.root_token}",
        "-H",
        f"X-Vault-Namespace: {name}",
        "-d",
        "policy=%zz",
        f"{tenantvault_server.addr}/v1/sys/policies/acl/bad-form",
    )
    body, _, status = bad.stdout.rpartition("\n")
    assert (status, json.loads(body)) == ("400", {"errors": ["error parsing form data"]})
    assert "bad-form" not in client.sys.list_acl_policies()["data"]["keys"]


def test_curl_renew_self_with_an_empty_form_body(
    tenantvault_server: TenantVaultServer, tenant: tuple[hvac.Client, str]
) -> None:
    """node-vault's tokenRenewSelf(): POST, empty body, labelled as a form."""
    client, name = tenant
    token = remember_secret(client.auth.token.create(policies=["default"])["auth"]["client_token"])
    done = _curl(
        "-X",
        "POST",
        "-H",
        f"X-Vault-Token: {token}",
        "-H",
        f"X-Vault-Namespace: {name}",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        f"{tenantvault_server.addr}/v1/auth/token/renew-self",
    )
    body, _, status = done.stdout.rpartition("\n")
    assert status == "200", done.stdout + done.stderr
    assert json.loads(body)["auth"]["renewable"] is True


def test_hvac_lists_policies_and_reads_init_status(
    tenantvault_server: TenantVaultServer, tenant: tuple[hvac.Client, str]
) -> None:
    client, _ = tenant
    client.sys.create_or_update_policy("app", 'path "secret/*" { capabilities = ["read"] }')
    listed = client.sys.list_policies()
    assert listed["data"]["policies"] == ["app", "default"]
    assert client.sys.list_acl_policies()["data"]["keys"] == ["app", "default"]
    anonymous = hvac.Client(url=tenantvault_server.addr)
    assert anonymous.sys.read_init_status() == {"initialized": True}
    assert anonymous.sys.is_initialized() is True
    anonymous.adapter.close()


def test_hvac_token_roles_and_accessors(tenant: tuple[hvac.Client, str]) -> None:
    client, _ = tenant
    client.sys.create_or_update_policy("a", 'path "x/a" { capabilities = ["read"] }')
    client.auth.token.create_or_update_role(
        "app", allowed_policies=["a"], orphan=True, token_period="1h", path_suffix="ver1"
    )
    assert client.auth.token.list_roles()["data"]["keys"] == ["app"]
    role = client.auth.token.read_role("app")["data"]
    assert (role["allowed_policies"], role["orphan"], role["token_period"]) == (["a"], True, 3600)
    made = client.auth.token.create(role_name="app")["auth"]
    remember_secret(made["client_token"])
    assert (made["policies"], made["orphan"]) == (["a", "default"], True)
    looked = client.auth.token.lookup(made["client_token"])["data"]
    assert looked["path"] == "auth/token/create/app/ver1"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="must be subset of the role"):
        client.auth.token.create(role_name="app", policies=["root"])
    accessors = client.auth.token.list_accessors()["data"]["keys"]
    assert made["accessor"] in accessors
    client.auth.token.delete_role("app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.token.read_role("app")


def test_hvac_transit_export_backup_restore_and_trim(tenant: tuple[hvac.Client, str]) -> None:
    client, _ = tenant
    transit = client.secrets.transit
    transit.create_key("k", exportable=True, allow_plaintext_backup=True)
    for _ in range(3):
        transit.rotate_key("k")
    exported = transit.export_key("k", key_type="encryption-key")["data"]
    assert sorted(exported["keys"]) == ["1", "2", "3", "4"]
    backup = transit.backup_key("k")["data"]["backup"]
    transit.restore_key(backup, name="k2")
    assert transit.read_key("k2")["data"]["latest_version"] == 4
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already exists"):
        transit.restore_key(backup, name="k2")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid backup"):
        transit.restore_key(backup[:-8], name="k3")
    transit.update_key_configuration("k", min_decryption_version=3, min_encryption_version=4)
    trimmed = transit.trim_key("k", min_version=3)["data"]
    assert (trimmed["min_available_version"], sorted(trimmed["keys"])) == (3, ["3", "4"])
    # transit's random and hash share sys/tools' helpers (hvac has no sys/tools call).
    random = transit.generate_random_bytes(n_bytes=16, output_format="hex")["data"]
    assert len(bytes.fromhex(random["random_bytes"])) == 16
    hashed = transit.hash_data("aGVsbG8=", algorithm="sha2-256")["data"]["sum"]
    assert hashed == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_bao_cli_init_status_token_role_and_accessors(
    bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    status = bao.run("operator", "init", "-status")
    assert status.code == 0, status.text  # 0: initialized (2 would mean not)
    name = unique_name("cli")
    root = tenantvault_server.root_token
    assert bao.run("namespace", "create", name, token=root).code == 0
    wrote = bao.run(
        "write",
        "auth/token/roles/ci",
        "allowed_policies=default",
        "orphan=true",
        token=root,
        namespace=name,
    )
    assert wrote.code == 0, wrote.text
    made = bao.run("token", "create", "-role=ci", "-format=json", token=root, namespace=name)
    assert made.code == 0, made.text
    auth = json.loads(made.out)["auth"]
    remember_secret(auth["client_token"])
    assert auth["orphan"] is True
    listed = bao.run("list", "-format=json", "auth/token/accessors", token=root, namespace=name)
    assert listed.code == 0, listed.text
    assert auth["accessor"] in json.loads(listed.out)
    random = bao.run("write", "-format=json", "sys/tools/random/12", "format=hex", token=root)
    assert random.code == 0, random.text
    assert len(bytes.fromhex(json.loads(random.out)["data"]["random_bytes"])) == 12
    hashed = bao.run("write", "-field=sum", "sys/tools/hash/sha2-256", "input=aGVsbG8=", token=root)
    assert hashed.out.strip() == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )
