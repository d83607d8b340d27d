"""Concurrent writers on one key, on every backend (K-1, K-2)."""

from __future__ import annotations

import asyncio

import tenantvault
from tenantvault import CheckAndSetError


async def test_100_concurrent_cas_writers_exactly_one_wins(acme: tenantvault.Tenant) -> None:
    """K-1: the same `cas` from 100 writers → one success, 99 CAS errors, one new version."""
    await acme.kv.put("contest", {"v": "start"})
    results = await asyncio.gather(
        *(acme.kv.put("contest", {"writer": n}, cas=1) for n in range(100)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, tenantvault.VersionInfo)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert winners[0].version == 2
    assert len(losers) == 99
    assert all(isinstance(r, CheckAndSetError) for r in losers)
    meta = await acme.kv.metadata("contest")
    assert meta.current_version == 2
    assert sorted(meta.versions) == [1, 2]
    winner = (await acme.kv.get("contest")).data["writer"]
    assert results[winner] == winners[0]


async def test_concurrent_blind_writes_make_contiguous_versions(acme: tenantvault.Tenant) -> None:
    """K-2: N writes without cas → N versions numbered 1..N, no gaps, no duplicates."""
    await acme.kv.write_metadata("blind", max_versions=100)
    results = await asyncio.gather(*(acme.kv.put("blind", {"n": n}) for n in range(50)))
    assert sorted(r.version for r in results) == list(range(1, 51))
    meta = await acme.kv.metadata("blind")
    assert meta.current_version == 50
    assert sorted(meta.versions) == list(range(1, 51))
    seen = {(await acme.kv.get("blind", version=v)).data["n"] for v in range(1, 51)}
    assert seen == set(range(50))


async def test_concurrent_creates_of_one_key_one_wins(acme: tenantvault.Tenant) -> None:
    results = await asyncio.gather(
        *(acme.kv.put("once", {"n": n}, cas=0) for n in range(100)), return_exceptions=True
    )
    assert sum(isinstance(r, tenantvault.VersionInfo) for r in results) == 1
    assert (await acme.kv.metadata("once")).current_version == 1


async def test_writes_racing_a_metadata_delete_never_resurrect_old_versions(
    acme: tenantvault.Tenant,
) -> None:
    """K-7: delete-vs-write. Whatever interleaving, versions stay contiguous from 1."""
    for _ in range(5):
        await acme.kv.put("race", {"v": "old"})
        await asyncio.gather(
            acme.kv.delete_metadata("race"),
            *(acme.kv.put("race", {"v": n}) for n in range(10)),
        )
        try:
            meta = await acme.kv.metadata("race")
        except tenantvault.NotFoundError:
            continue
        versions = sorted(meta.versions)
        assert versions == list(range(versions[0], meta.current_version + 1))
        await acme.kv.delete_metadata("race")
