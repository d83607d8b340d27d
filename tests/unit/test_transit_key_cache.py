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
from tenantvault._core import Core
from tenantvault._exceptions import DecryptionError, IntegrityError
from tenantvault._request import Operation, Request
from tenantvault.backends import MemoryBackend, Record
from tenantvault.crypto import AeadKey, Keyring, KeyType, random_key
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


# -- the sealed bytes: opened once, re-opened whenever they change ----------------------------


class _CountingStorage(MountStorage):
    """A mount's real storage that counts how often a record of it is opened."""

    __slots__ = ("opened",)

    def __init__(self, backend: MemoryBackend, mount: str, *, sealed: bool) -> None:
        super().__init__(
            backend,
            tenant="acme",
            storage_mount=mount,
            key=AeadKey(random_key()) if sealed else None,  # None: the fixed layout
            binding=("acme-uid", mount),
        )
        self.opened = 0

    def open_sealed(self, key: str, record: Record) -> Record:
        self.opened += 1
        return super().open_sealed(key, record)


async def _backend() -> MemoryBackend:
    backend = MemoryBackend()
    await backend.create_tenant("acme")
    return backend


def _rotate_to(now_ns: int) -> Callable[[Keyring], None]:
    def rotate(keyring: Keyring) -> None:
        keyring.rotate(now_ns=now_ns)

    return rotate


@pytest.mark.parametrize("sealed", [True, False], ids=["mount key", "fixed layout"])
async def test_an_unchanged_record_is_opened_once_a_changed_one_again(sealed: bool) -> None:
    store = _CountingStorage(await _backend(), "mount/one", sealed=sealed)
    here, elsewhere = KeyStore(), KeyStore()
    created, _ = await here.store_new(store, Keyring.generate("k", KeyType.AES256_GCM96, now_ns=1))
    # The first load after this instance's own write opens the record once, finds the
    # content it wrote and keeps its parse; later loads of the same bytes open nothing.
    assert await here.load(store, "k") is created
    assert await here.load(store, "k") is created
    assert store.opened == 1
    await elsewhere.change(store, "k", _rotate_to(2), missing="gone")
    rotated = await here.load(store, "k")
    assert _state(rotated) == (2, 1, 0, [1, 2])
    assert await here.load(store, "k") is rotated
    assert store.opened == 2
    await elsewhere.change(store, "k", lambda keyring: None, missing="gone")  # no change, no write
    assert await here.load(store, "k") is rotated
    assert store.opened == 2


async def test_sealed_bytes_changed_or_moved_behind_the_cache_are_authenticated() -> None:
    """A hit needs the exact bytes this mount's record was opened from: tampered bytes, or
    another mount's record moved here (the cache holds those very bytes for that mount), are
    opened and refused, never answered from the cache."""
    backend = await _backend()
    one = _CountingStorage(backend, "mount/one", sealed=True)
    two = _CountingStorage(backend, "mount/two", sealed=True)
    keys = KeyStore()
    for store in (one, two):
        await keys.store_new(store, Keyring.generate("k", KeyType.AES256_GCM96, now_ns=1))
        assert await keys.load(store, "k") is not None
    original = await backend.read("acme", "mount/one", "policy/k")
    assert original is not None
    tampered = original.value[:-1] + bytes([original.value[-1] ^ 1])
    await backend.write("acme", "mount/one", "policy/k", tampered, expected_revision=None)
    with pytest.raises(IntegrityError):
        await keys.load(one, "k")
    await backend.write("acme", "mount/one", "policy/k", original.value, expected_revision=None)
    assert await keys.load(one, "k") is not None
    await backend.write("acme", "mount/two", "policy/k", original.value, expected_revision=None)
    with pytest.raises(IntegrityError):
        await keys.load(two, "k")


# -- two Cores over one store: the hot path sees the other's changes at once -----------------


async def test_two_cores_over_one_store_see_each_others_key_changes_at_once() -> None:
    """Core `here` serves encrypt and decrypt from its caches (parsed key, reused decrypt
    route); every change made through Core `there` holds on `here`'s very next request."""
    backend = MemoryBackend()
    here, there = Core(backend), Core(backend)
    for core in (here, there):
        await core.start()

    async def call(core: Core, path: str, **data: Any) -> dict[str, Any]:
        request = Request(Operation.UPDATE, path, namespace="acme", data=data)
        return dict((await core.handle_as_operator(request)).data or {})

    try:
        await there.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
        await call(there, "transit/keys/k")
        v1 = (await call(here, "transit/encrypt/k", plaintext="aGk="))["ciphertext"]
        for _ in range(2):
            assert (await call(here, "transit/decrypt/k", ciphertext=v1))["plaintext"] == "aGk="
        await call(there, "transit/keys/k/rotate")
        v2 = await call(here, "transit/encrypt/k", plaintext="aGk=")
        assert v2["key_version"] == 2
        await call(there, "transit/keys/k/config", min_decryption_version=2)
        with pytest.raises(DecryptionError, match="disallowed by policy"):
            await call(here, "transit/decrypt/k", ciphertext=v1)
        assert (await call(here, "transit/decrypt/k", ciphertext=v2["ciphertext"]))["plaintext"]
        await call(there, "transit/keys/k/config", min_encryption_version=2)
        with pytest.raises(tenantvault.InvalidRequestError, match="minimum encryption"):
            await call(here, "transit/encrypt/k", plaintext="aGk=", key_version=1)
        await call(there, "transit/keys/k/config", deletion_allowed=True)
        await there.handle_as_operator(
            Request(Operation.DELETE, "transit/keys/k", namespace="acme")
        )
        with pytest.raises(tenantvault.InvalidRequestError, match="encryption key not found"):
            await call(here, "transit/decrypt/k", ciphertext=v2["ciphertext"])
    finally:
        for core in (here, there):
            await core.aclose()
