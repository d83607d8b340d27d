"""Real clients on mount tables: the `bao` CLI (`bao secrets enable|disable|list|tune`,
`bao kv enable-versioning`, `bao kv` on kv v1 and kv v2 mounts) and hvac enable, tune, list and
disable kv v1, kv v2 and transit mounts at custom paths inside tenants; two tenants' same-named
mounts stay isolated; with --dev, Vault's first tutorial works in the root namespace."""

from __future__ import annotations

import json
from typing import Any

import hvac
import pytest

from tests.integration._support import BaoCLI, BaoResult, canary, remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration


def ok(result: BaoResult) -> BaoResult:
    assert result.code == 0, f"bao failed ({result.code}):\n{result.err}\n{result.out}"
    return result


def as_json(result: BaoResult) -> Any:
    return json.loads(ok(result).out)


def _tenant(bao: BaoCLI, root: str) -> str:
    name = unique_name()
    ok(bao.run("namespace", "create", name, token=root))
    return name


def test_bao_secrets_enable_tune_list_disable(
    bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    root = tenantvault_server.root_token
    tenant = _tenant(bao, root)

    def run(*args: str) -> BaoResult:
        return bao.run(*args, token=root, namespace=tenant)

    ok(run("secrets", "enable", "-path=team/kv1", "-description=one", "kv"))
    ok(run("secrets", "enable", "-path=team/kv2", "-version=2", "kv"))
    ok(run("secrets", "enable", "-path=crypto", "transit"))
    mounts = as_json(run("secrets", "list", "-format=json"))
    assert mounts["team/kv1/"]["description"] == "one"
    assert mounts["team/kv2/"]["options"] == {"version": "2"}
    assert mounts["crypto/"]["type"] == "transit"
    assert "team/kv2/" in ok(run("secrets", "list", "-detailed")).out
    ok(run("secrets", "tune", "-default-lease-ttl=1h", "-max-lease-ttl=24h", "team/kv1"))
    tuned = as_json(run("read", "-format=json", "sys/mounts/team/kv1/tune"))["data"]
    assert (tuned["default_lease_ttl"], tuned["max_lease_ttl"]) == (3600, 86400)

    secret = remember_secret(canary("cli-"))
    # kv v1: `bao kv` finds the version by the preflight (sys/internal/ui/mounts).
    ok(run("kv", "put", "team/kv1/app", f"password={secret}"))
    got = as_json(run("kv", "get", "-format=json", "team/kv1/app"))
    assert got["data"] == {"password": secret}
    assert got["lease_duration"] == 3600
    # kv v2 at a custom path.
    ok(run("kv", "put", "team/kv2/app", f"password={secret}"))
    got2 = as_json(run("kv", "get", "-format=json", "team/kv2/app"))
    assert got2["data"]["data"] == {"password": secret}
    assert got2["data"]["metadata"]["version"] == 1
    # transit at a custom path.
    ok(run("write", "-f", "crypto/keys/k"))
    encrypted = as_json(run("write", "-format=json", "crypto/encrypt/k", "plaintext=aGVsbG8="))
    assert encrypted["data"]["ciphertext"].startswith("vault:v1:")

    # `bao kv enable-versioning` upgrades kv v1: each key becomes version 1.
    ok(run("kv", "enable-versioning", "team/kv1"))
    upgraded = as_json(run("kv", "get", "-format=json", "team/kv1/app"))
    assert upgraded["data"]["data"] == {"password": secret}
    assert upgraded["data"]["metadata"]["version"] == 1

    ok(run("secrets", "disable", "team/kv2"))
    assert "team/kv2/" not in as_json(run("secrets", "list", "-format=json"))
    ok(run("secrets", "enable", "-path=team/kv2", "kv-v2"))
    assert run("kv", "get", "team/kv2/app").code != 0  # re-enabled: empty


def test_bao_same_named_mounts_of_two_tenants_are_isolated(
    bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    root = tenantvault_server.root_token
    first, second = _tenant(bao, root), _tenant(bao, root)
    for tenant in (first, second):
        ok(bao.run("secrets", "enable", "-path=shared", "kv-v2", token=root, namespace=tenant))
    secret = remember_secret(canary("iso-"))
    ok(bao.run("kv", "put", "shared/x", f"v={secret}", token=root, namespace=first))
    other = bao.run("kv", "get", "shared/x", token=root, namespace=second)
    assert other.code != 0
    assert secret not in other.text
    ok(bao.run("secrets", "disable", "shared", token=root, namespace=second))
    assert as_json(bao.run("kv", "get", "-format=json", "shared/x", token=root, namespace=first))[
        "data"
    ]["data"] == {"v": secret}


def test_dev_tutorial_in_the_root_namespace(
    bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    """`bao kv put secret/hello foo=bar` with the root token (only --dev mounts secret/)."""
    root = tenantvault_server.root_token
    mounts = as_json(bao.run("secrets", "list", "-format=json", token=root))
    if tenantvault_server.mode != "dev":
        assert "secret/" not in mounts  # as `bao server` without -dev
        return
    assert mounts["secret/"]["options"] == {"version": "2"}
    ok(bao.run("kv", "put", "secret/hello", "foo=bar", token=root))
    got = as_json(bao.run("kv", "get", "-format=json", "secret/hello", token=root))
    assert got["data"]["data"] == {"foo": "bar"}


def test_hvac_enable_tune_list_disable(tenantvault_server: TenantVaultServer) -> None:
    addr, root = tenantvault_server
    admin = hvac.Client(url=addr, token=root)
    tenant = unique_name()
    admin.sys.create_namespace(tenant)
    client = hvac.Client(url=addr, token=root, namespace=tenant)
    client.sys.enable_secrets_engine("kv", path="v1kv", options={"version": "1"})
    client.sys.enable_secrets_engine("kv", path="apps/kv", options={"version": "2"})
    client.sys.enable_secrets_engine("transit", path="apps/transit", description="enc")
    listed = client.sys.list_mounted_secrets_engines()
    assert {"v1kv/", "apps/kv/", "apps/transit/", "secret/", "transit/"} <= set(listed["data"])
    assert listed["apps/transit/"]["description"] == "enc"  # the top-level copy old clients read
    client.sys.tune_mount_configuration("apps/kv", default_lease_ttl="2h", max_lease_ttl="4h")
    tuned = client.sys.read_mount_configuration("apps/kv")
    assert (tuned["data"]["default_lease_ttl"], tuned["data"]["max_lease_ttl"]) == (7200, 14400)

    secret = remember_secret(canary("hvac-"))
    client.secrets.kv.v1.create_or_update_secret("db", {"password": secret}, mount_point="v1kv")
    v1 = client.secrets.kv.v1.read_secret("db", mount_point="v1kv")
    assert v1["data"] == {"password": secret}
    assert client.secrets.kv.v1.list_secrets("", mount_point="v1kv")["data"]["keys"] == ["db"]
    client.secrets.kv.v2.create_or_update_secret("db", {"password": secret}, mount_point="apps/kv")
    v2 = client.secrets.kv.v2.read_secret_version(
        "db", mount_point="apps/kv", raise_on_deleted_version=True
    )
    assert v2["data"]["data"] == {"password": secret}
    client.secrets.transit.create_key("k", mount_point="apps/transit")
    ciphertext = client.secrets.transit.encrypt_data(
        "k", plaintext="aGVsbG8=", mount_point="apps/transit"
    )["data"]["ciphertext"]
    plain = client.secrets.transit.decrypt_data(
        "k", ciphertext=ciphertext, mount_point="apps/transit"
    )
    assert plain["data"]["plaintext"] == "aGVsbG8="
    # The default transit/ mount has no key named k: another mount.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.secrets.transit.decrypt_data("k", ciphertext=ciphertext)

    client.sys.disable_secrets_engine("apps/kv")
    assert "apps/kv/" not in client.sys.list_mounted_secrets_engines()["data"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_version(
            "db", mount_point="apps/kv", raise_on_deleted_version=True
        )


def test_hvac_two_tenants_same_named_mounts(tenantvault_server: TenantVaultServer) -> None:
    addr, root = tenantvault_server
    admin = hvac.Client(url=addr, token=root)
    tenants = [unique_name(), unique_name()]
    for tenant in tenants:
        admin.sys.create_namespace(tenant)
        hvac.Client(url=addr, token=root, namespace=tenant).sys.enable_secrets_engine(
            "transit", path="enc"
        )
    first, second = (hvac.Client(url=addr, token=root, namespace=t) for t in tenants)
    first.secrets.transit.create_key("k", mount_point="enc")
    second.secrets.transit.create_key("k", mount_point="enc")
    ciphertext = first.secrets.transit.encrypt_data("k", plaintext="aGk=", mount_point="enc")[
        "data"
    ]["ciphertext"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        second.secrets.transit.decrypt_data("k", ciphertext=ciphertext, mount_point="enc")
