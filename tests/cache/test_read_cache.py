"""The KV read cache through the Core, on the memory and sqlite backends: what a user of
one instance sees (their own writes at once, no stale value after any change), what the
backend sees (one read per key however many wait, none on a hit), what an outage looks like
(the last good value for a bounded window, flagged and audited), and that the cache holds
no clear text and never answers a caller the Core refused."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tenantvault._exceptions import (
    BackendUnavailableError,
    NotFoundError,
    PermissionDeniedError,
)
from tenantvault._request import Operation, Request
from tenantvault.cache import STALE_WARNING, CacheSettings, run_maintenance
from tests.cache._support import Harness, harness
from tests.conftest import BACKENDS, FakeClock, canary

# Past the default TTL (2 s, shortened by up to 10 % jitter), inside it.
PAST_TTL = 2.5
WITHIN_TTL = 1.0


@pytest.fixture(params=BACKENDS)
async def h(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Harness]:
    async with harness(str(request.param), tmp_path, clock) as opened:
        yield opened


# -- hits, read-your-writes, single flight -----------------------------------------------


async def test_a_second_read_is_served_without_the_backend(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    before = await h.backend_reads("app/db")
    assert (await h.get("app/db"))["data"] == {"password": "one"}
    assert (await h.get("app/db"))["data"] == {"password": "one"}
    assert await h.backend_reads("app/db") == before + 1
    assert h.store.hits == 1


async def test_read_your_writes_through_one_instance(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    assert (await h.get("app/db"))["data"] == {"password": "one"}
    await h.put("app/db", {"password": "two"})
    # Well inside the TTL: the old value was cached, and must not answer.
    read = await h.get("app/db")
    assert read["data"] == {"password": "two"}
    assert read["metadata"]["version"] == 2
    # A version read stays what that version is.
    assert (await h.get("app/db", version=1))["data"] == {"password": "one"}


async def test_a_read_after_the_ttl_goes_to_the_backend_again(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    before = await h.backend_reads("app/db")
    await h.get("app/db")
    h.clock.advance(WITHIN_TTL)
    await h.get("app/db")
    assert await h.backend_reads("app/db") == before + 1
    h.clock.advance(PAST_TTL)
    await h.get("app/db")
    assert await h.backend_reads("app/db") == before + 2


async def test_a_thousand_readers_of_a_cold_key_cost_one_backend_read(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    storage = await h.mount_storage()
    before = h.backend.reads[(storage, "meta/app/db")]
    # The backend holds the key's read until every reader waits for it.
    h.backend.gated.add("meta/app/db")
    readers = [asyncio.create_task(h.get("app/db")) for _ in range(1000)]
    # The store has no event to wait on: the test polls its miss counter.
    while h.store.misses < 1000:  # noqa: ASYNC110 -- see above
        await asyncio.sleep(0.001)
    h.backend.gate.set()
    results = await asyncio.gather(*readers)
    assert all(result["data"] == {"password": "one"} for result in results)
    # Each reader got its own copy: one caller changing its answer changes no other's.
    assert len({id(result["data"]) for result in results}) == 1000
    assert h.backend.reads[(storage, "meta/app/db")] == before + 1


# -- invalidation: one test per change ---------------------------------------------------

Change = Callable[[Harness], Awaitable[Any]]


async def _write(h: Harness) -> None:
    await h.put("app/db", {"password": "two"})


async def _patch(h: Harness) -> None:
    await h.call(Operation.PATCH, "secret/data/app/db", {"data": {"user": "admin"}})


async def _delete_latest(h: Harness) -> None:
    await h.call(Operation.DELETE, "secret/data/app/db")


async def _delete_versions(h: Harness) -> None:
    await h.call(Operation.UPDATE, "secret/delete/app/db", {"versions": [1]})


async def _destroy(h: Harness) -> None:
    await h.call(Operation.UPDATE, "secret/destroy/app/db", {"versions": [1]})


async def _metadata_write(h: Harness) -> None:
    await h.call(Operation.UPDATE, "secret/metadata/app/db", {"custom_metadata": {"o": "x"}})


async def _metadata_patch(h: Harness) -> None:
    await h.call(Operation.PATCH, "secret/metadata/app/db", {"custom_metadata": {"o": "x"}})


async def _metadata_delete(h: Harness) -> None:
    await h.call(Operation.DELETE, "secret/metadata/app/db")


async def _latest(h: Harness) -> dict[str, Any] | None:
    """The latest version's read, or None for a 404."""
    try:
        return await h.get("app/db")
    except NotFoundError:
        return None


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        pytest.param(_write, lambda read: read["data"] == {"password": "two"}, id="write"),
        pytest.param(
            _patch,
            lambda read: read["data"] == {"password": "one", "user": "admin"},
            id="patch",
        ),
        pytest.param(_delete_latest, lambda read: read is None, id="delete"),
        pytest.param(_delete_versions, lambda read: read is None, id="delete-versions"),
        pytest.param(_destroy, lambda read: read is None, id="destroy"),
        pytest.param(
            _metadata_write,
            lambda read: read["metadata"]["custom_metadata"] == {"o": "x"},
            id="metadata-write",
        ),
        pytest.param(
            _metadata_patch,
            lambda read: read["metadata"]["custom_metadata"] == {"o": "x"},
            id="metadata-patch",
        ),
        pytest.param(_metadata_delete, lambda read: read is None, id="metadata-delete"),
    ],
)
async def test_every_change_through_this_instance_is_seen_at_once(
    h: Harness, change: Change, expect: Callable[[dict[str, Any] | None], bool]
) -> None:
    await h.put("app/db", {"password": "one"})
    assert (await _latest(h)) is not None  # cached now
    await change(h)
    assert expect(await _latest(h))


async def test_a_version_read_is_forgotten_with_its_key(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    await h.put("app/db", {"password": "two"})
    assert (await h.get("app/db", version=1))["data"] == {"password": "one"}
    await h.call(Operation.UPDATE, "secret/destroy/app/db", {"versions": [1]})
    with pytest.raises(NotFoundError):
        await h.get("app/db", version=1)


async def test_undelete_is_seen_at_once(h: Harness) -> None:
    """The cached 404 of a deleted version goes with the undelete."""
    await h.put("app/db", {"password": "one"})
    await h.call(Operation.DELETE, "secret/data/app/db")
    assert (await _latest(h)) is None  # a cached 404 now
    await h.call(Operation.UPDATE, "secret/undelete/app/db", {"versions": [1]})
    read = await _latest(h)
    assert read is not None
    assert read["data"] == {"password": "one"}


async def test_a_tenant_deleted_and_created_again_sees_nothing_of_its_predecessor(
    h: Harness,
) -> None:
    await h.put("app/db", {"password": "one"})
    await h.get("app/db")
    await h.core.handle_as_operator(Request(Operation.DELETE, "sys/namespaces/acme"))
    await h.create_tenant("acme")
    assert (await _latest(h)) is None


async def test_a_mount_disabled_and_enabled_again_sees_nothing_of_the_old_one(
    h: Harness,
) -> None:
    await h.put("app/db", {"password": "one"})
    await h.get("app/db")
    await h.call(Operation.DELETE, "sys/mounts/secret")
    await h.call(Operation.UPDATE, "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
    assert (await _latest(h)) is None


async def test_a_version_past_its_deletion_time_is_not_served(h: Harness) -> None:
    """`delete_version_after`: the version is gone at its deletion time, cached or not."""
    await h.call(Operation.UPDATE, "secret/metadata/app/db", {"delete_version_after": "1s"})
    await h.put("app/db", {"password": "one"})
    await h.get("app/db")
    h.clock.advance(1.5)  # inside the TTL, past the deletion time
    assert (await _latest(h)) is None


# -- negative caching, per-mount and global switches -------------------------------------


async def test_a_404_is_cached_briefly_and_a_write_ends_it(h: Harness) -> None:
    assert (await _latest(h)) is None
    assert (await _latest(h)) is None
    assert await h.backend_reads("app/db") == 1
    h.clock.advance(0.6)  # past the negative TTL (0.5 s)
    assert (await _latest(h)) is None
    assert await h.backend_reads("app/db") == 2
    await h.put("app/db", {"password": "one"})
    read = await _latest(h)
    assert read is not None
    assert read["data"] == {"password": "one"}


async def test_a_mount_tuned_cache_off_reads_the_backend_every_time(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    before = await h.backend_reads("app/db")
    await h.get("app/db")
    await h.call(Operation.UPDATE, "sys/mounts/secret/tune", {"options": {"cache": "off"}})
    await h.get("app/db")
    await h.get("app/db")
    assert await h.backend_reads("app/db") == before + 3
    # Back on: cached again.
    await h.call(Operation.UPDATE, "sys/mounts/secret/tune", {"options": {"cache": "on"}})
    await h.get("app/db")
    await h.get("app/db")
    assert await h.backend_reads("app/db") == before + 4


async def test_the_global_switch_turns_the_cache_off(tmp_path: Path, clock: FakeClock) -> None:
    async with harness("memory", tmp_path, clock, CacheSettings(enabled=False)) as off:
        await off.put("app/db", {"password": "one"})
        before = await off.backend_reads("app/db")
        for _ in range(3):
            await off.get("app/db")
        assert await off.backend_reads("app/db") == before + 3
        assert off.core.read_cache.store is None


# -- stale-if-error ----------------------------------------------------------------------


async def test_an_outage_serves_the_last_good_value_for_a_bounded_window(
    h: Harness, tmp_path: Path
) -> None:
    log = tmp_path / "audit.log"
    await h.core.audit_broker.enable("file", "file", {"file_path": str(log)}, persist=False)
    await h.put("app/db", {"password": "one"})
    await h.get("app/db")
    h.backend.failing.add(await h.mount_storage())
    # Fresh: a plain hit, no warning.
    fresh = await h.call(Operation.READ, "secret/data/app/db")
    assert fresh.warnings is None
    # Past the TTL, the backend down: the last good value, flagged.
    h.clock.advance(PAST_TTL)
    stale = await h.call(Operation.READ, "secret/data/app/db")
    assert stale.data is not None
    assert stale.data["data"] == {"password": "one"}
    assert stale.warnings == [STALE_WARNING]
    assert h.store.stale_served == 1
    # ... and audited as such: the response entry of that request carries the warning.
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    answered = [
        e for e in entries if e["type"] == "response" and e["request"]["id"] == stale.request_id
    ]
    assert [e["response"]["warnings"] for e in answered] == [[STALE_WARNING]]
    # Past the window (TTL + 30 s): the outage shows.
    h.clock.advance(30)
    with pytest.raises(BackendUnavailableError):
        await h.get("app/db")
    # The backend back: fresh values again, no warning.
    h.backend.failing.clear()
    back = await h.call(Operation.READ, "secret/data/app/db")
    assert back.warnings is None


async def test_an_outage_never_serves_a_value_a_write_replaced(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    await h.get("app/db")
    await h.put("app/db", {"password": "two"})
    h.backend.failing.add(await h.mount_storage())
    with pytest.raises(BackendUnavailableError):
        await h.get("app/db")


async def test_an_outage_does_not_serve_a_cached_404_past_its_ttl(h: Harness) -> None:
    assert (await _latest(h)) is None
    h.clock.advance(0.6)
    h.backend.failing.add(await h.mount_storage())
    with pytest.raises(BackendUnavailableError):
        await h.get("app/db")


# -- authorization and sealing -----------------------------------------------------------


async def test_a_denied_token_never_gets_a_cached_value(h: Harness) -> None:
    await h.call(
        Operation.UPDATE,
        "sys/policies/acl/reader",
        {"policy": 'path "secret/data/app/*" { capabilities = ["read"] }'},
    )
    created = await h.call(Operation.UPDATE, "auth/token/create", {"policies": ["reader"]})
    assert created.auth is not None
    token = created.auth["client_token"]
    await h.put("app/db", {"password": "one"})
    await h.put("ops/root", {"password": "root"})
    # The operator's reads fill the cache for both keys.
    await h.get("app/db")
    await h.get("ops/root")
    hits = h.store.hits
    with pytest.raises(PermissionDeniedError):
        await h.call(Operation.READ, "secret/data/ops/root", token=token)
    assert h.store.hits == hits  # refused before the cache was asked
    # What it may read, it reads from the cache.
    allowed = await h.call(Operation.READ, "secret/data/app/db", token=token)
    assert allowed.data is not None
    assert allowed.data["data"] == {"password": "one"}
    assert h.store.hits == hits + 1


def _sightings(value: str) -> list[str]:
    """Where `value` appears in clear in a string or bytes any live object refers to."""
    gc.collect()
    raw = value.encode()
    found = []
    for holder in gc.get_objects():
        for item in gc.get_referents(holder):
            if item is value or item is raw:
                continue
            if (isinstance(item, str) and value in item) or (
                isinstance(item, bytes | bytearray) and raw in item
            ):
                found.append(type(holder).__name__)
    return found


async def test_no_cached_value_is_in_clear_in_a_repr_a_log_or_the_heap(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = canary("cache")
    await h.put("app/db", {"password": secret})
    for _ in range(3):
        read = await h.get("app/db")
        assert read["data"]["password"] == secret
    h.clock.advance(PAST_TTL)  # a stale entry is sealed too
    del read
    assert len(h.store) == 1
    assert secret not in repr(h.core.read_cache)
    assert secret not in repr(h.store)
    assert secret not in caplog.text
    assert _sightings(secret) == []


# -- shares ------------------------------------------------------------------------------


async def test_one_tenant_filling_the_cache_cannot_evict_another_below_its_share(
    tmp_path: Path, clock: FakeClock, backend_kind: str
) -> None:
    settings = CacheSettings(max_entries=100, tenant_share=0.5)
    async with harness(backend_kind, tmp_path, clock, settings) as h:
        for name in ("big", "bigger"):
            await h.create_tenant(name)
        for number in range(10):
            await h.put(f"k{number}", {"n": "small"})
            await h.get(f"k{number}")
        for name in ("big", "bigger"):
            for number in range(60):
                await h.put(f"k{number}", {"n": name}, tenant=name)
                await h.get(f"k{number}", tenant=name)
        # Each flooding tenant is held to its share, and the store to its bound...
        assert h.store.tenant_entries("big") <= 50
        assert h.store.tenant_entries("bigger") <= 50
        assert len(h.store) <= 100
        # ...and the small tenant keeps every entry: its reads are still hits.
        assert h.store.tenant_entries("acme") == 10
        hits = h.store.hits
        for number in range(10):
            await h.get(f"k{number}")
        assert h.store.hits == hits + 10


# -- the cache-maintenance service -------------------------------------------------------


async def test_the_maintenance_service_sweeps_entries_past_their_last_use(h: Harness) -> None:
    await h.put("app/db", {"password": "one"})
    await h.get("app/db")
    h.clock.advance(PAST_TTL)  # past the TTL, inside the stale-if-error window
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            assert len(h.store) == 1  # kept: it may still answer during an outage
            h.clock.advance(30)
        else:
            raise asyncio.CancelledError  # stop the service after its second sweep

    with pytest.raises(asyncio.CancelledError):
        await run_maintenance(h.core.read_cache, sleep=sleep)
    assert len(h.store) == 0
    assert sleeps == [1.0, 1.0]


async def test_a_mount_enabled_with_force_no_cache_reads_the_backend_every_time(h: Harness) -> None:
    """Vault's `secrets enable -force-no-cache` (`config.force_no_cache`) keeps the mount's
    reads out of the cache from the start."""
    await h.call(Operation.DELETE, "sys/mounts/secret")
    kv2 = {"type": "kv", "options": {"version": "2"}, "config": {"force_no_cache": True}}
    await h.call(Operation.UPDATE, "sys/mounts/secret", kv2)
    await h.put("app/db", {"password": "one"})
    before = await h.backend_reads("app/db")
    for _ in range(3):
        await h.get("app/db")
    assert await h.backend_reads("app/db") == before + 3
