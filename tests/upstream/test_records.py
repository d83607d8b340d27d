"""The upstream record backend beyond the contract: what an upstream operator can see and
change, revisions across KV v2's version restarts, and master key and mount checks."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tenantvault import ConfigurationError, ConflictError, IntegrityError
from tenantvault._config import UpstreamOptions
from tenantvault.backends import SYSTEM_TENANT
from tenantvault.crypto import random_key
from tenantvault.upstream import UpstreamClient, UpstreamSettings
from tests._openbao import OpenBaoDev, unique_root
from tests.upstream._records import open_records, options, token_file


async def _raw_tree(server: OpenBaoDev, mount: str, folder: str) -> dict[str, object]:
    """Every secret under `folder` as the upstream operator reads it with the root token."""
    found: dict[str, object] = {}
    async with UpstreamClient(UpstreamSettings(server.addr)) as client:
        pending = [folder]
        while pending:
            current = pending.pop()
            for child in await client.list(f"{mount}/metadata/{current}", token=server.root_token):
                if child.endswith("/"):
                    pending.append(current + child)
                else:
                    body = await client.read(
                        f"{mount}/data/{current}{child}", token=server.root_token
                    )
                    assert body is not None
                    found[current + child] = body["data"]["data"]
    return found


async def test_records_are_sealed_for_upstream_operators(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """An operator with the upstream's root token sees no stored value and no key name's
    value in clear: token hashes, policies and mount keys are sealed with our master key."""
    settings = options(openbao_dev, tmp_path)
    secret = f"CANARY-{uuid.uuid4()}".encode()
    backend = await open_records(openbao_dev, settings, random_key())
    try:
        await backend.create_tenant("acme")
        await backend.write("acme", "sys", "policy/p", secret, expected_revision=0)
        await backend.write(SYSTEM_TENANT, "auth", "token/h", secret, expected_revision=None)
        stored = await backend.read("acme", "sys", "policy/p")
        assert stored is not None
        assert stored.value == secret
    finally:
        await backend.aclose()
    tree = await _raw_tree(openbao_dev, "secret", f"{settings.root}/")
    assert any("/records/" in path for path in tree), tree.keys()
    assert secret.decode() not in repr(tree)
    assert "CANARY" not in repr(tree)


async def test_a_revision_is_never_reused_across_a_delete(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """KV v2 starts a key again at version 1 after a metadata delete; the revision does not
    repeat, so a writer holding the old one cannot pass the check on the new record."""
    backend = await open_records(openbao_dev, options(openbao_dev, tmp_path), random_key())
    try:
        await backend.create_tenant("acme")
        first = await backend.write("acme", "m", "k", b"one", expected_revision=0)
        assert await backend.delete("acme", "m", "k", expected_revision=first)
        second = await backend.write("acme", "m", "k", b"two", expected_revision=0)
        assert second != first
        with pytest.raises(ConflictError):
            await backend.write("acme", "m", "k", b"stale", expected_revision=first)
        with pytest.raises(ConflictError):
            await backend.delete("acme", "m", "k", expected_revision=first)
        stored = await backend.read("acme", "m", "k")
        assert stored is not None
        assert stored.value == b"two"
    finally:
        await backend.aclose()


async def test_another_master_key_is_refused_at_open(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    settings = options(openbao_dev, tmp_path)
    backend = await open_records(openbao_dev, settings, random_key())
    await backend.aclose()
    with pytest.raises(ConfigurationError, match="master key does not match"):
        await open_records(openbao_dev, settings, random_key())


async def test_a_record_moved_to_another_tenant_upstream_fails_authentication(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """An operator who copies acme's sealed record over beta's gets no read of it as beta's:
    the seal binds it to (tenant, incarnation, mount, key)."""
    settings = options(openbao_dev, tmp_path)
    master_key = random_key()
    backend = await open_records(openbao_dev, settings, master_key)
    try:
        await backend.create_tenant("acme")
        await backend.create_tenant("beta")
        await backend.write("acme", "m", "k", b"acme's", expected_revision=0)
        await backend.write("beta", "m", "k", b"beta's", expected_revision=0)
        acme = (await backend._tenant("acme")).incarnation
        beta = (await backend._tenant("beta")).incarnation
        tree = await _raw_tree(openbao_dev, "secret", f"{settings.root}/")
        async with UpstreamClient(UpstreamSettings(openbao_dev.addr)) as client:
            await client.write(
                f"secret/data/{settings.root}/_records/records/{beta}/m/k",
                {"data": tree[f"{settings.root}/_records/records/{acme}/m/k"]},
                token=openbao_dev.root_token,
            )
        # Read by another instance: the writer's own record cache still holds beta's value.
        reader = await open_records(openbao_dev, settings, master_key)
        try:
            with pytest.raises(IntegrityError):
                await reader.read("beta", "m", "k")
        finally:
            await reader.aclose()
    finally:
        await backend.aclose()


async def test_deleting_a_tenant_removes_its_key_and_records_upstream(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    settings = options(openbao_dev, tmp_path)
    backend = await open_records(openbao_dev, settings, random_key())
    try:
        await backend.create_tenant("acme")
        for index in range(5):
            await backend.write("acme", "m", f"a/{index}", b"x", expected_revision=0)
        await backend.delete_tenant("acme")
        tree = await _raw_tree(openbao_dev, "secret", f"{settings.root}/")
        assert not [p for p in tree if p.endswith("/tenants/acme")]
        assert not [p for p in tree if "/records/" in p and "/m/" in p]
        await backend.create_tenant("acme")
        assert await backend.list("acme", "m", "") == []
    finally:
        await backend.aclose()


async def test_a_missing_kv_mount_is_enabled(openbao_dev: OpenBaoDev, tmp_path: Path) -> None:
    mount = unique_root("kv")
    backend = await open_records(
        openbao_dev, options(openbao_dev, tmp_path, kv_mount=mount), random_key()
    )
    try:
        await backend.create_tenant("acme")
        assert await backend.list_tenants() == ["acme"]
    finally:
        await backend.aclose()


async def test_the_namespace_strategy_keeps_records_in_the_root_namespace(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """OpenBao has namespaces, so `auto` picks them: records live in the `<root>` namespace."""
    settings = options(openbao_dev, tmp_path, tenancy="auto")
    backend = await open_records(openbao_dev, settings, random_key())
    try:
        assert backend.gateway is not None
        assert backend.gateway.strategy == "namespace"
        await backend.create_tenant("acme")
    finally:
        await backend.aclose()
    async with UpstreamClient(UpstreamSettings(openbao_dev.addr)) as client:
        keys = await client.list(
            "secret/metadata/_records/tenants/",
            token=openbao_dev.root_token,
            namespace=settings.root,
        )
    assert "acme" in keys


def _least_privilege(root: str) -> str:
    """What the record backend needs upstream in the prefix strategy, and nothing more."""
    return f"""
path "auth/token/lookup-self" {{ capabilities = ["read"] }}
path "auth/token/renew-self" {{ capabilities = ["update"] }}
path "secret/config" {{ capabilities = ["read"] }}
path "secret/data/{root}/_records/*" {{ capabilities = ["create", "read", "update"] }}
path "secret/metadata/{root}/_records/*" {{ capabilities = ["list", "delete"] }}
"""


async def test_the_record_backend_runs_on_a_least_privilege_token(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """The README's policy for tenantvault's own token is enough for every record verb, and
    the token reaches nothing outside its root."""
    root = unique_root("lp")
    async with UpstreamClient(UpstreamSettings(openbao_dev.addr)) as client:
        await client.write(
            f"sys/policies/acl/{root}",
            {"policy": _least_privilege(root)},
            token=openbao_dev.root_token,
        )
        created = await client.write(
            "auth/token/create", {"policies": [root]}, token=openbao_dev.root_token
        )
        assert created is not None
        token = str(created["auth"]["client_token"])
        settings = UpstreamOptions(
            root=root, tenancy="auto", token_file=token_file(tmp_path, token)
        )
        backend = await open_records(openbao_dev, settings, random_key())
        try:
            assert backend.gateway is not None
            assert backend.gateway.strategy == "prefix"  # the token may not list namespaces
            await backend.create_tenant("acme")
            revision = await backend.write("acme", "m", "a/b", b"v", expected_revision=0)
            assert await backend.list("acme", "m", "") == ["a/"]
            assert await backend.delete("acme", "m", "a/b", expected_revision=revision)
            await backend.delete_tenant("acme")
            assert await backend.list_tenants() == []
        finally:
            await backend.aclose()
        outside = await client.request("GET", "secret/data/elsewhere", token=token)
        assert outside.status == 403
