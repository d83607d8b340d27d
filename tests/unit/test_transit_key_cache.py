"""The transit key cache: every change to a key is seen at once, by this instance and by
another one over the same storage, and the cache never shows key material.

The cache keeps each parsed keyring with the exact record it came from, and every load reads
the record again: a rotation, a configuration change, a deletion, a trim or a restore made
anywhere (here, or by another instance: a second `KeyStore` over the same mount) must take
effect on the very next request.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import tenantvault
from tenantvault.crypto import Keyring, KeyType
from tenantvault.engines._protocol import MountStorage
from tenantvault.engines.transit import KeyStore
from tenantvault.testing import core_of


@pytest.fixture
async def tv() -> AsyncIterator[tenantvault.TenantVault]:
    async with tenantvault.open("memory://") as opened:
        await opened.create_tenant("acme")
        transit = opened.tenant("acme").transit
        await transit.create_key("k")
        await transit.rotate_key("k")  # versions 1 and 2
        await _request(
            opened,
            "keys/k/config",
            deletion_allowed=True,
            exportable=True,
            allow_plaintext_backup=True,
            min_encryption_version=1,
        )
        yield opened


async def _request(tv: tenantvault.TenantVault, path: str, **data: Any) -> dict[str, Any]:
    response = await tv.request("update", f"transit/{path}", data, namespace="acme")
    return dict(response.data or {})


async def _storage(tv: tenantvault.TenantVault) -> MountStorage:
    return (await core_of(tv).mount_of("acme", "transit/")).storage


State = tuple[int, int, int, list[int]]
# Each change gets a notebook: what its preparation leaves for the change itself.
Change = Callable[[tenantvault.TenantVault, dict[str, str]], Awaitable[None]]


async def _nothing(tv: tenantvault.TenantVault, notes: dict[str, str]) -> None:
    pass


async def _rotate(tv: tenantvault.TenantVault, notes: dict[str, str]) -> None:
    await tv.tenant("acme").transit.rotate_key("k")


async def _configure(tv: tenantvault.TenantVault, notes: dict[str, str]) -> None:
    await _request(tv, "keys/k/config", min_decryption_version=2, min_encryption_version=2)


async def _trim(tv: tenantvault.TenantVault, notes: dict[str, str]) -> None:
    await _configure(tv, notes)
    await _request(tv, "keys/k/trim", min_available_version=2)


async def _delete(tv: tenantvault.TenantVault, notes: dict[str, str]) -> None:
    await tv.tenant("acme").transit.delete_key("k")


async def _back_up_then_rotate(tv: tenantvault.TenantVault, notes: dict[str, str]) -> None:
    backup = await tv.request("read", "transit/backup/k", namespace="acme")
    notes["backup"] = (backup.data or {})["backup"]
    await _rotate(tv, notes)


async def _restore(tv: tenantvault.TenantVault, notes: dict[str, str]) -> None:
    """Put back the backup taken before the rotation: the key is at version 2 again."""
    await _request(tv, "restore/k", backup=notes["backup"], force=True)


def _state(keyring: Keyring | None) -> State | None:
    if keyring is None:
        return None
    return (
        keyring.latest_version,
        keyring.min_decryption_version,
        keyring.min_encryption_version,
        sorted(keyring.versions),
    )


V2: State = (2, 1, 1, [1, 2])
# change: (what happens before both caches load the key, the state they load, the change
# itself, the state both must see right after it).
CHANGES: dict[str, tuple[Change, State, Change, State | None]] = {
    "rotation": (_nothing, V2, _rotate, (3, 1, 1, [1, 2, 3])),
    "configuration": (_nothing, V2, _configure, (2, 2, 2, [1, 2])),
    "trim": (_nothing, V2, _trim, (2, 2, 2, [2])),
    "deletion": (_nothing, V2, _delete, None),
    "restore": (_back_up_then_rotate, (3, 1, 1, [1, 2, 3]), _restore, V2),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
async def test_every_change_reaches_both_instances_caches_at_once(
    tv: tenantvault.TenantVault, change: str
) -> None:
    prepare, before, apply, expected = CHANGES[change]
    notes: dict[str, str] = {}
    await prepare(tv, notes)
    store = await _storage(tv)
    here = core_of(tv).transit.keys
    elsewhere = KeyStore()  # another instance over the same storage
    for keys in (here, elsewhere):
        first = await keys.load(store, "k")
        assert _state(first) == before
        assert await keys.load(store, "k") is first  # cached: an unchanged key is not re-parsed
    await apply(tv, notes)
    assert _state(await here.load(store, "k")) == expected
    assert _state(await elsewhere.load(store, "k")) == expected


async def test_a_key_changed_by_another_instance_is_used_as_changed(
    tv: tenantvault.TenantVault,
) -> None:
    """The engine's own requests see a rotation another instance made behind its back."""
    transit = tv.tenant("acme").transit
    assert (await transit.encrypt("k", b"x")).startswith("vault:v2:")  # now cached
    store = await _storage(tv)
    elsewhere = KeyStore()

    def rotate(keyring: Keyring) -> None:
        keyring.rotate(now_ns=1)

    await elsewhere.change(store, "k", rotate, missing="gone")
    assert (await transit.encrypt("k", b"x")).startswith("vault:v3:")
    await elsewhere.change(store, "k", lambda keyring: keyring.trim(3), missing="gone")
    with pytest.raises(tenantvault.InvalidRequestError, match="no such key version"):
        await transit.encrypt("k", b"x", key_version=2)


async def test_a_deleted_key_leaves_no_material_in_the_cache(tv: tenantvault.TenantVault) -> None:
    store = await _storage(tv)
    elsewhere = KeyStore()
    assert await elsewhere.load(store, "k") is not None
    await tv.tenant("acme").transit.delete_key("k")
    assert await elsewhere.load(store, "k") is None
    assert repr(elsewhere) == "KeyStore(cached=0)"


async def test_the_cache_is_bounded_and_shows_no_key_material(
    tv: tenantvault.TenantVault,
) -> None:
    store = await _storage(tv)
    keys = KeyStore(max_entries=2)
    for name in ("a", "b", "c"):
        await keys.store_new(store, Keyring.generate(name, KeyType.AES256_GCM96, now_ns=1))
    loaded = [await keys.load(store, name) for name in ("a", "b", "c", "k")]
    assert repr(keys) == "KeyStore(cached=2)"
    shown = repr(keys) + repr(vars(keys))  # the cache's entries included
    for keyring in loaded:
        assert keyring is not None
        for version in keyring.versions.values():
            for secret in (version.key, version.hmac_key):
                assert base64.b64encode(secret).decode() not in shown
                assert secret.hex() not in shown
