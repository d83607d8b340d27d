"""The record read cache of gateway mode: its staleness bound, its invalidation, its bounds.

Two `UpstreamBackend`s on one upstream root stand for two tenantvault instances; each has
its own fake monotonic clock, so "within the TTL" and "past the TTL" are exact, not timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import pytest

from tenantvault._exceptions import ClosedError, ConflictError
from tenantvault.backends._protocol import Record, RevisionPeek
from tenantvault.crypto import random_key
from tenantvault.upstream._backend import UpstreamBackend, UpstreamRecordsLocation
from tenantvault.upstream._cache import RECORD_CACHE_SECONDS, RecordCache
from tenantvault.upstream._client import UpstreamClient, UpstreamSettings
from tests._openbao import OpenBaoDev, unique_root


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Instance:
    """One backend with its own client, clock and a count of its upstream GETs."""

    backend: UpstreamBackend
    clock: Clock
    gets: list[str] = field(default_factory=list)


async def _instance(server: OpenBaoDev, root: str, master_key: bytes) -> Instance:
    clock = Clock()
    client = UpstreamClient(UpstreamSettings(server.addr))
    instance = Instance(
        await UpstreamBackend.open(
            client,
            master_key=master_key,
            token=lambda: server.root_token,
            location=UpstreamRecordsLocation(root=f"{root}/_records"),
            clock=clock,
        ),
        clock,
    )

    def count(method: str, seconds: float, *, status: int | None) -> None:
        if method == "GET":
            instance.gets.append(method)

    client.on_attempt = count
    return instance


@pytest.fixture
async def pair(openbao_dev: OpenBaoDev) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances on one fresh root, tenant `acme` created."""
    root, key = unique_root("c"), random_key()
    one = await _instance(openbao_dev, root, key)
    two = await _instance(openbao_dev, root, key)
    try:
        await one.backend.create_tenant("acme")
        yield one, two
    finally:
        await one.backend.aclose()
        await two.backend.aclose()


async def _record(backend: UpstreamBackend, key: str) -> Record:
    record = await backend.read("acme", "auth", key)
    assert record is not None
    return record


async def _value(instance: Instance, key: str = "token/t") -> bytes | None:
    record = await instance.backend.read("acme", "auth", key)
    return None if record is None else record.value


async def test_a_change_through_another_instance_is_seen_within_the_ttl(
    pair: tuple[Instance, Instance],
) -> None:
    one, two = pair
    await one.backend.write("acme", "auth", "token/t", b"v1", expected_revision=0)
    assert await _value(two) == b"v1"
    revision = (await _record(one.backend, "token/t")).revision
    await one.backend.write("acme", "auth", "token/t", b"v2", expected_revision=revision)
    two.clock.advance(RECORD_CACHE_SECONDS * 0.9)
    assert await _value(two) == b"v1"  # cached: the bound is what the cache may lag
    two.clock.advance(RECORD_CACHE_SECONDS * 0.1)
    assert await _value(two) == b"v2"
    # A revocation (a delete) too: refused by the other instance once the TTL is over.
    await one.backend.delete("acme", "auth", "token/t")
    two.clock.advance(RECORD_CACHE_SECONDS)
    assert await _value(two) is None


async def test_an_absent_record_created_elsewhere_is_seen_within_the_ttl(
    pair: tuple[Instance, Instance],
) -> None:
    one, two = pair
    assert await _value(two) is None
    await one.backend.write("acme", "auth", "token/t", b"new", expected_revision=0)
    two.clock.advance(RECORD_CACHE_SECONDS)
    assert await _value(two) == b"new"


async def test_the_writing_instance_sees_its_own_writes_and_deletes_at_once(
    pair: tuple[Instance, Instance],
) -> None:
    one, two = pair
    assert await _value(one) is None  # cached as absent
    first = await one.backend.write("acme", "auth", "token/t", b"v1", expected_revision=0)
    assert await _value(one) == b"v1"
    assert await _value(two) == b"v1"  # now cached on the other instance too
    await one.backend.write("acme", "auth", "token/t", b"v2", expected_revision=first)
    one.gets.clear()
    assert await _value(one) == b"v2"
    assert await one.backend.delete("acme", "auth", "token/t")
    one.gets.clear()
    assert await _value(one) is None  # revoked here: refused here at once
    # ... from what this instance stored, not by reading upstream again.
    assert one.gets == []


async def test_reads_within_the_ttl_cost_one_upstream_read(
    pair: tuple[Instance, Instance],
) -> None:
    one, two = pair
    await one.backend.write("acme", "auth", "token/t", b"v1", expected_revision=0)
    two.gets.clear()
    values = await asyncio.gather(*(_value(two) for _ in range(50)))
    for _ in range(50):
        values.append(await _value(two))
    assert values == [b"v1"] * 100
    # Single flight, then hits: one read of the tenant's record, one of the token's.
    assert len(two.gets) == 2
    two.clock.advance(RECORD_CACHE_SECONDS)
    assert await asyncio.gather(*(_value(two) for _ in range(50))) == [b"v1"] * 50
    assert len(two.gets) == 4


async def test_a_check_and_set_on_a_stale_copy_is_refused_and_then_reads_upstream(
    pair: tuple[Instance, Instance],
) -> None:
    one, two = pair
    await one.backend.write("acme", "auth", "token/t", b"uses=2", expected_revision=0)
    stale = await _record(two.backend, "token/t")
    current = await _record(one.backend, "token/t")
    await one.backend.write(
        "acme", "auth", "token/t", b"uses=1", expected_revision=current.revision
    )
    with pytest.raises(ConflictError):
        await two.backend.write(
            "acme", "auth", "token/t", b"uses=1", expected_revision=stale.revision
        )
    # No clock advance: the conflict itself made the next read go upstream.
    fresh = await _record(two.backend, "token/t")
    assert fresh.value == b"uses=1"
    assert fresh.revision != stale.revision
    with pytest.raises(ConflictError):
        await two.backend.delete("acme", "auth", "token/t", expected_revision=stale.revision)
    assert await two.backend.delete("acme", "auth", "token/t", expected_revision=fresh.revision)


async def test_a_ttl_of_zero_reads_upstream_every_time(openbao_dev: OpenBaoDev) -> None:
    root, key = unique_root("c"), random_key()
    writer = await _instance(openbao_dev, root, key)
    reader = await UpstreamBackend.open(
        UpstreamClient(UpstreamSettings(openbao_dev.addr)),
        master_key=key,
        token=lambda: openbao_dev.root_token,
        location=UpstreamRecordsLocation(root=f"{root}/_records"),
        record_cache_seconds=0,
    )
    try:
        await writer.backend.create_tenant("acme")
        await writer.backend.write("acme", "auth", "k", b"v1", expected_revision=0)
        first = await _record(reader, "k")
        await writer.backend.write("acme", "auth", "k", b"v2", expected_revision=first.revision)
        assert (await _record(reader, "k")).value == b"v2"
    finally:
        await writer.backend.aclose()
        await reader.aclose()


async def test_the_peeked_revision_is_what_a_read_would_answer_from_the_cache(
    pair: tuple[Instance, Instance],
) -> None:
    one, two = pair
    peek = one.backend.committed_revision
    assert isinstance(one.backend, RevisionPeek)
    assert peek("acme", "auth", "token/t") is None  # never read here: unknown
    assert peek("nobody", "auth", "token/t") is None  # an unknown tenant: the read says so
    assert await _value(one) is None
    assert peek("acme", "auth", "token/t") == 0  # cached as absent
    first = await one.backend.write("acme", "auth", "token/t", b"v1", expected_revision=0)
    assert peek("acme", "auth", "token/t") == first
    second = await one.backend.write("acme", "auth", "token/t", b"v2", expected_revision=first)
    assert peek("acme", "auth", "token/t") == second != first
    assert await one.backend.delete("acme", "auth", "token/t")
    assert peek("acme", "auth", "token/t") == 0
    # A change through another instance: the peek lags exactly as a read would, no longer.
    third = await two.backend.write("acme", "auth", "token/t", b"v3", expected_revision=0)
    one.clock.advance(RECORD_CACHE_SECONDS * 0.9)
    assert peek("acme", "auth", "token/t") == 0
    assert await _value(one) is None
    one.clock.advance(RECORD_CACHE_SECONDS * 0.1)
    assert peek("acme", "auth", "token/t") is None  # past the TTL: unknown, so read
    assert (await _record(one.backend, "token/t")).revision == third
    assert peek("acme", "auth", "token/t") == third
    await one.backend.aclose()
    with pytest.raises(ClosedError):
        peek("acme", "auth", "token/t")


async def test_a_peek_that_misses_is_not_counted_as_a_miss_before_the_read() -> None:
    cache = _cache(Clock())
    assert cache.peek("k") == (False, None)
    assert (cache.hits, cache.misses) == (0, 0)
    assert await cache.flight("k", partial(_read_as, b"v")) == b"v"
    assert cache.peek("k") == (True, b"v")
    assert (cache.hits, cache.misses) == (1, 1)


# -- the cache itself ------------------------------------------------------------------------


def _cache(clock: Clock, **bounds: int) -> RecordCache[bytes]:
    return RecordCache(size_of=len, clock=clock, **bounds)


async def _read_as(value: bytes) -> bytes:
    return value


async def test_the_cache_is_bounded_by_entries() -> None:
    cache = _cache(Clock(), max_entries=3)
    for number in range(5):
        await cache.flight(f"k{number}", partial(_read_as, b"x%d" % number))
    assert len(cache) == 3
    assert cache.evictions == 2
    assert cache.lookup("k0") == (False, None)  # least recently used went first
    assert cache.lookup("k4") == (True, b"x4")


async def test_the_cache_is_bounded_by_bytes_and_keeps_no_oversized_value() -> None:
    cache = _cache(Clock(), max_bytes=8 * 1024)
    for number in range(20):
        await cache.flight(f"k{number}", lambda: _read_as(b"v" * 600))
    assert cache.size_bytes <= 8 * 1024
    assert 0 < len(cache) < 20
    await cache.flight("big", lambda: _read_as(b"v" * 2048))  # more than an eighth
    assert cache.lookup("big") == (False, None)
    assert cache.size_bytes <= 8 * 1024


async def test_a_read_that_started_before_a_change_never_puts_the_old_value_back() -> None:
    cache = _cache(Clock())
    release = asyncio.Event()

    async def slow_old_read() -> bytes:
        await release.wait()
        return b"old"

    reader = asyncio.create_task(cache.flight("k", slow_old_read))
    await asyncio.sleep(0)
    cache.forget("k")  # this instance starts a write...
    cache.store("k", b"new")  # ...and the upstream acknowledged it
    release.set()
    assert await reader == b"old"  # the concurrent reader may see the old value
    assert cache.lookup("k") == (True, b"new")  # but the cache keeps the new one


async def test_a_read_after_a_forget_does_not_join_the_older_flight() -> None:
    cache = _cache(Clock())
    release = asyncio.Event()

    async def slow_old_read() -> bytes:
        await release.wait()
        return b"old"

    early = asyncio.create_task(cache.flight("k", slow_old_read))
    await asyncio.sleep(0)
    cache.forget("k")
    late = asyncio.create_task(cache.flight("k", lambda: _read_as(b"after")))
    await asyncio.sleep(0)
    release.set()
    assert (await early, await late) == (b"old", b"after")
    assert cache.lookup("k") == (True, b"after")


async def test_an_evicted_change_still_turns_away_older_reads() -> None:
    cache = _cache(Clock(), max_entries=1)
    release = asyncio.Event()

    async def slow_old_read() -> bytes:
        await release.wait()
        return b"old"

    reader = asyncio.create_task(cache.flight("k", slow_old_read))
    await asyncio.sleep(0)
    cache.store("k", b"new")
    cache.store("other", b"x")  # evicts k's entry, and with it k's stamp
    release.set()
    await reader
    assert cache.lookup("k") == (False, None)


def test_a_ttl_beyond_the_documented_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="TTL"):
        RecordCache(size_of=len, clock=Clock(), ttl_seconds=RECORD_CACHE_SECONDS + 0.5)


def test_the_repr_shows_counts_only() -> None:
    cache = _cache(Clock())
    cache.store("records/i/auth/token/abc", b"sealed")
    assert "abc" not in repr(cache)
    assert "sealed" not in repr(cache)
