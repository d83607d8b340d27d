"""Automatic rotation: the scheduler pass on a fake clock, and the supervised loop around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

import tenantvault
from tenantvault.backends import MemoryBackend
from tenantvault.engines.transit import TransitEngine, run_rotation
from tenantvault.testing import core_of
from tests.conftest import FakeClock

HOUR = 3600


@pytest.fixture
async def tv(clock: FakeClock) -> AsyncIterator[tenantvault.TenantVault]:
    async with tenantvault.open("memory://", clock=clock) as opened:
        for tenant in ("acme", "globex"):
            await opened.create_tenant(tenant)
        yield opened


async def test_only_keys_past_their_period_rotate(
    tv: tenantvault.TenantVault, clock: FakeClock
) -> None:
    acme, globex = tv.tenant("acme").transit, tv.tenant("globex").transit
    await acme.create_key("hourly", auto_rotate_period="1h")
    await acme.create_key("daily", auto_rotate_period="24h")
    await globex.create_key("hourly", auto_rotate_period="1h")
    await globex.create_key("never")
    engine = core_of(tv).transit
    clock.advance(HOUR)
    assert await engine.rotate_due_keys(clock()) == []  # due strictly after the period
    clock.advance(1)
    assert sorted(await engine.rotate_due_keys(clock())) == [
        ("acme", "hourly"),
        ("globex", "hourly"),
    ]
    clock.advance(23 * HOUR)
    rotated = sorted(await engine.rotate_due_keys(clock()))
    assert rotated == [("acme", "daily"), ("acme", "hourly"), ("globex", "hourly")]
    assert (await acme.read_key("hourly")).latest_version == 3
    assert (await globex.read_key("never")).latest_version == 1


async def test_the_period_counts_from_the_latest_version(
    tv: tenantvault.TenantVault, clock: FakeClock
) -> None:
    transit = tv.tenant("acme").transit
    await transit.create_key("k", auto_rotate_period="2h")
    clock.advance(HOUR)
    await transit.rotate_key("k")  # a manual rotation restarts the period
    clock.advance(HOUR + 1)
    assert await core_of(tv).transit.rotate_due_keys(clock()) == []
    clock.advance(HOUR)
    assert await core_of(tv).transit.rotate_due_keys(clock()) == [("acme", "k")]


async def test_rotation_keeps_decryption_above_min_decryption_version(
    tv: tenantvault.TenantVault, clock: FakeClock
) -> None:
    transit = tv.tenant("acme").transit
    await transit.create_key("k", auto_rotate_period="1h")
    ciphertexts = []
    for _ in range(4):
        ciphertexts.append(await transit.encrypt("k", b"payload"))
        clock.advance(HOUR + 1)
        await core_of(tv).transit.rotate_due_keys(clock())
    assert [c.split(":")[1] for c in ciphertexts] == ["v1", "v2", "v3", "v4"]
    for ciphertext in ciphertexts:
        assert await transit.decrypt("k", ciphertext) == b"payload"
    await transit.configure_key("k", min_decryption_version=3)
    with pytest.raises(tenantvault.DecryptionError, match="too old"):
        await transit.decrypt("k", ciphertexts[1])
    assert await transit.decrypt("k", ciphertexts[2]) == b"payload"


async def test_two_schedulers_rotate_a_key_once_per_period(
    tv: tenantvault.TenantVault, clock: FakeClock
) -> None:
    """Two instances over one store (or two racing passes) never rotate one key twice."""
    await tv.tenant("acme").transit.create_key("k", auto_rotate_period="1h")
    other = TransitEngine(clock=clock, mounts=core_of(tv).router.mounts_of_type)
    clock.advance(HOUR + 1)
    results = await asyncio.gather(
        core_of(tv).transit.rotate_due_keys(clock()), other.rotate_due_keys(clock())
    )
    assert sum(len(r) for r in results) == 1
    assert (await tv.tenant("acme").transit.read_key("k")).latest_version == 2


async def test_the_loop_survives_a_failing_pass_and_stops_when_cancelled(
    tv: tenantvault.TenantVault, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    transit = tv.tenant("acme").transit
    await transit.create_key("k", auto_rotate_period="1h")
    backend = core_of(tv).backend
    assert isinstance(backend, MemoryBackend)
    ticks: list[float] = []
    second_pass_done = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        ticks.append(seconds)
        clock.advance(HOUR + 1)
        if len(ticks) == 1:
            backend.faults.unavailable = True  # the next pass fails
        elif len(ticks) == 2:
            backend.faults.unavailable = False
        elif len(ticks) == 3:
            second_pass_done.set()
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="tenantvault.transit"):
        task = asyncio.create_task(run_rotation(core_of(tv), interval_seconds=30, sleep=fake_sleep))
        await asyncio.wait_for(second_pass_done.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ticks[:3] == [30, 30, 30]
    assert "rotation pass failed (BackendUnavailableError)" in caplog.text
    assert (await transit.read_key("k")).latest_version >= 2


async def test_a_deleted_tenant_does_not_stop_the_pass(
    tv: tenantvault.TenantVault, clock: FakeClock
) -> None:
    await tv.tenant("acme").transit.create_key("k", auto_rotate_period="1h")
    await tv.tenant("globex").transit.create_key("k", auto_rotate_period="1h")
    await tv.delete_tenant("acme")
    clock.advance(HOUR + 1)
    assert await core_of(tv).transit.rotate_due_keys(clock()) == [("globex", "k")]
