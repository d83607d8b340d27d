"""Transit's reused routes: a route serves again only for the very mount object it was built
for, encrypt's too (what its existence check found travels with each request's call, not in
the route), and a disabled mount leaves none behind."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tenantvault
from tenantvault._request import Operation, Request, Response
from tenantvault.testing import core_of

PLAINTEXT = b"attack at dawn"


@pytest.fixture
async def tv() -> AsyncIterator[tenantvault.TenantVault]:
    async with tenantvault.open("memory://") as opened:
        await opened.create_tenant("acme")
        await opened.tenant("acme").transit.create_key("k")
        yield opened


async def _call(
    tv: tenantvault.TenantVault, path: str, data: dict[str, Any], token: str | None = None
) -> Response:
    """An update in `acme`, as the holder of `token` (None: the in-process operator)."""
    request = Request(Operation.UPDATE, path, namespace="acme", token=token, data=data)
    core = core_of(tv)
    return await (core.handle(request) if token else core.handle_as_operator(request))


async def test_routes_are_reused_for_one_mount_object(tv: tenantvault.TenantVault) -> None:
    core = core_of(tv)
    mount = await core.mount_of("acme", "transit/")
    engine = core.transit
    decrypt = engine.route(Operation.UPDATE, "decrypt/k", mount)
    assert engine.route(Operation.UPDATE, "decrypt/k", mount) is decrypt
    encrypt = engine.route(Operation.UPDATE, "encrypt/k", mount)
    assert engine.route(Operation.UPDATE, "encrypt/k", mount) is encrypt
    # The same row in another version of its mount table is another object: built anew.
    assert engine.route(Operation.UPDATE, "decrypt/k", dataclasses.replace(mount)) is not decrypt


async def test_a_moved_mount_is_authorized_at_its_new_path(tv: tenantvault.TenantVault) -> None:
    """A remount keeps the mount's storage (its identity) but not its path: a route built
    before the move (ACL path `transit/decrypt/k`) must not answer after it."""
    ciphertext = await tv.tenant("acme").transit.encrypt("k", PLAINTEXT)
    policy = 'path "transit/decrypt/k" { capabilities = ["update"] }'
    await _call(tv, "sys/policies/acl/p", {"policy": policy})
    created = await _call(tv, "auth/token/create", {"policies": ["p"]})
    assert created.auth is not None
    token = str(created.auth["client_token"])
    expected = base64.b64encode(PLAINTEXT).decode()
    for _ in range(2):  # the second one reuses the route
        answer = await _call(tv, "transit/decrypt/k", {"ciphertext": ciphertext}, token)
        assert (answer.data or {})["plaintext"] == expected
    await _call(tv, "sys/remount", {"from": "transit", "to": "moved"})
    with pytest.raises(tenantvault.PermissionDeniedError):
        await _call(tv, "moved/decrypt/k", {"ciphertext": ciphertext}, token)
    answer = await _call(tv, "moved/decrypt/k", {"ciphertext": ciphertext})
    assert (answer.data or {})["plaintext"] == expected


async def test_a_disabled_mount_leaves_no_route_behind(tv: tenantvault.TenantVault) -> None:
    """Its routes hold its storage, and with it the mount key: disabling drops them."""
    await tv.request("update", "sys/mounts/other", {"type": "transit"}, namespace="acme")
    core = core_of(tv)
    mount = await core.mount_of("acme", "other/")
    core.transit.route(Operation.UPDATE, "decrypt/k", mount)
    identity = mount.storage.identity
    assert any(slot[0] == identity for slot in core.transit._routes)
    await tv.request("delete", "sys/mounts/other", namespace="acme")
    assert not any(slot[0] == identity for slot in core.transit._routes)


async def test_a_reused_encrypt_route_encrypts_under_each_requests_own_key(
    tv: tenantvault.TenantVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One encrypt route serves every request: the key its existence check found is the
    request's own (`Call.existing`). Deleted and made again between two encrypts, the
    second request encrypts under the new key, never the one the first request found; and
    with the key gone, create-on-encrypt makes it (the request is then not pure)."""
    core = core_of(tv)
    resolved: list[str] = []
    resolve = type(core.transit)._resolve

    def counting(self: Any, operation: Operation, rest: str, mount: Any) -> Any:
        resolved.append(rest)
        return resolve(self, operation, rest, mount)

    monkeypatch.setattr(type(core.transit), "_resolve", counting)
    policy = 'path "transit/encrypt/*" { capabilities = ["create", "update"] }'
    await _call(tv, "sys/policies/acl/enc", {"policy": policy})
    created = await _call(tv, "auth/token/create", {"policies": ["enc"]})
    assert created.auth is not None
    token = str(created.auth["client_token"])
    plaintext = base64.b64encode(PLAINTEXT).decode()

    async def encrypt() -> str:
        answer = await _call(tv, "transit/encrypt/k", {"plaintext": plaintext}, token)
        assert answer.data is not None
        return str(answer.data["ciphertext"])

    first = await encrypt()
    await _call(tv, "transit/keys/k/config", {"deletion_allowed": True})
    await core.handle_as_operator(Request(Operation.DELETE, "transit/keys/k", namespace="acme"))
    second = await encrypt()  # the key is made again, on encrypt
    third = await encrypt()
    assert resolved.count("encrypt/k") == 1
    decrypt = tv.tenant("acme").transit.decrypt
    assert await decrypt("k", second) == PLAINTEXT
    assert await decrypt("k", third) == PLAINTEXT
    with pytest.raises(tenantvault.TenantVaultError):
        await decrypt("k", first)  # the first key is gone with what it encrypted
