"""Automatic rotation: the scheduler pass on a fake clock, the tenants it visits (only those
holding auto-rotating keys), and the supervised loop around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import tenantvault
from tenantvault._core import Core
from tenantvault._request import Operation, Request
from tenantvault._tenant_sets import MOUNT, TenantSet
from tenantvault.backends import MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines.transit import TransitEngine, run_rotation
from tenantvault.engines.transit._rotation import KIND
from tenantvault.testing import core_of
from tests.conftest import FakeClock, backend_url
from tests.unit.test_token_partitions import RecordingBackend

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
    other = TransitEngine(clock=clock)
    other.attach(core_of(tv).backend, core_of(tv).router.mounts_in)
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
    assert await _members(tv) == ["globex"]  # forgotten with its tenant


# -- the tenants a pass visits -------------------------------------------------------------------


def _holders(tv: tenantvault.TenantVault) -> TenantSet:
    holders = core_of(tv).transit.rotation.holders
    assert holders is not None
    return holders


async def _members(tv: tenantvault.TenantVault) -> list[str]:
    return await _holders(tv).members()


async def _as_before_the_set(backend: Backend) -> None:
    """Remove the set's records, as in a store written before it existed."""
    for member in await backend.list(SYSTEM_TENANT, MOUNT, f"{KIND}/member/"):
        await backend.delete(SYSTEM_TENANT, MOUNT, f"{KIND}/member/{member}")
    await backend.delete(SYSTEM_TENANT, MOUNT, f"{KIND}/complete")


async def _send(
    tv: tenantvault.TenantVault,
    tenant: str,
    operation: Operation,
    path: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    request = Request(operation, path, data=data or {}, namespace=tenant)
    return (await core_of(tv).handle_as_operator(request)).data or {}


@pytest.fixture
async def stored(
    backend_kind: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tenantvault.TenantVault]:
    """Tenants acme, globex and initech on the memory and the embedded store."""
    async with tenantvault.open(backend_url(backend_kind, tmp_path), clock=clock) as opened:
        for tenant in ("acme", "globex", "initech"):
            await opened.create_tenant(tenant)
        yield opened


async def test_a_pass_visits_the_tenants_with_auto_rotating_keys_and_a_later_period_joins(
    stored: tenantvault.TenantVault, clock: FakeClock
) -> None:
    acme, globex = stored.tenant("acme").transit, stored.tenant("globex").transit
    await acme.create_key("hourly", auto_rotate_period="1h")
    await globex.create_key("plain")
    engine = core_of(stored).transit
    assert await engine.rotate_due_keys(clock()) == []  # the set's first use marks it complete
    assert await _members(stored) == ["acme"]
    # A period set later, by config, on a key of a tenant the set did not hold.
    await globex.configure_key("plain", auto_rotate_period="2h")
    assert await _members(stored) == ["acme", "globex"]
    clock.advance(HOUR + 1)
    assert await engine.rotate_due_keys(clock()) == [("acme", "hourly")]
    clock.advance(HOUR + 1)
    assert sorted(await engine.rotate_due_keys(clock())) == [
        ("acme", "hourly"),
        ("globex", "plain"),
    ]
    assert (await globex.read_key("plain")).latest_version == 2
    # Switched off again, the member stays: a member too many costs a listing, never a key.
    await globex.configure_key("plain", auto_rotate_period=0)
    clock.advance(3 * HOUR)
    assert await engine.rotate_due_keys(clock()) == [("acme", "hourly")]
    assert await _members(stored) == ["acme", "globex"]


async def test_a_store_from_before_the_set_rotates_its_due_keys_after_one_scan(
    stored: tenantvault.TenantVault, clock: FakeClock
) -> None:
    await stored.tenant("acme").mounts.enable("eu-keys", "transit")
    await stored.tenant("acme").transit_at("eu-keys").create_key("k", auto_rotate_period="1h")
    await stored.tenant("globex").transit.create_key("plain")
    await stored.root.mounts.enable("root-keys", "transit")
    await stored.root.transit_at("root-keys").create_key("root-key", auto_rotate_period="1h")
    await _as_before_the_set(core_of(stored).backend)
    clock.advance(HOUR + 1)
    rotated = await core_of(stored).transit.rotate_due_keys(clock())
    assert set(rotated) == {("acme", "k"), (SYSTEM_TENANT, "root-key")}
    assert await _members(stored) == ["acme"]  # the root is visited without being a member


async def test_every_key_writing_path_joins_the_set(
    stored: tenantvault.TenantVault, clock: FakeClock
) -> None:
    """Create, config and restore (plain and forced) each add the tenant before they store
    an auto-rotating key; shown by removing the member each time (as if it never joined)."""
    backend = core_of(stored).backend
    member = f"{KIND}/member/acme"

    async def joined() -> bool:
        present = await backend.read(SYSTEM_TENANT, MOUNT, member) is not None
        if present:
            await backend.delete(SYSTEM_TENANT, MOUNT, member)
        return present

    async def update(path: str, data: dict[str, Any]) -> None:
        await _send(stored, "acme", Operation.UPDATE, f"transit/{path}", data)

    await _members(stored)  # marked complete: from now on only writers add members
    await update("keys/k", {"exportable": True, "allow_plaintext_backup": True})
    await update("keys/k/config", {"deletion_allowed": True})
    assert not await joined()  # no period: no member
    await update("keys/p", {"auto_rotate_period": "1h"})
    assert await joined()
    await update("keys/k/config", {"auto_rotate_period": "1h"})
    assert await joined()
    blob = (await _send(stored, "acme", Operation.READ, "transit/backup/k"))["backup"]
    await _send(stored, "acme", Operation.DELETE, "transit/keys/k")
    await update("restore", {"backup": blob})
    assert await joined()
    await update("restore/k", {"backup": blob, "force": True})
    assert await joined()
    await _holders(stored).add("acme")
    clock.advance(HOUR + 1)
    assert sorted(await core_of(stored).transit.rotate_due_keys(clock())) == [
        ("acme", "k"),
        ("acme", "p"),
    ]


async def test_a_pass_reads_nothing_of_the_tenants_without_auto_rotating_keys(
    clock: FakeClock,
) -> None:
    """40 tenants with `transit/`, one auto-rotating key (in a second transit mount of one of
    them): a pass reads that tenant and the root only, also after the one-time scan of a
    store from before the set."""
    backend = RecordingBackend()
    core = Core(backend, clock=clock)
    await core.start()
    for index in range(40):
        await core.handle_as_operator(Request(Operation.UPDATE, f"sys/namespaces/t{index:02d}"))

    async def send(tenant: str, path: str, data: dict[str, Any]) -> None:
        await core.handle_as_operator(Request(Operation.UPDATE, path, data=data, namespace=tenant))

    await send("t05", "sys/mounts/eu-keys", {"type": "transit"})
    await send("t05", "eu-keys/keys/k", {"auto_rotate_period": "1h"})
    await send("t09", "transit/keys/plain", {})

    def touched() -> set[str]:
        return {tenant for tenant, _ in backend.calls if tenant != SYSTEM_TENANT}

    await core.transit.rotate_due_keys(clock())  # the set's first use: one scan, marked
    backend.calls.clear()
    clock.advance(HOUR + 1)
    assert await core.transit.rotate_due_keys(clock()) == [("t05", "k")]
    assert touched() == {"t05"}

    await _as_before_the_set(backend)
    backend.calls.clear()
    clock.advance(HOUR + 1)
    assert await core.transit.rotate_due_keys(clock()) == [("t05", "k")]
    assert len(touched()) == 40  # the one-time scan reads every tenant
    backend.calls.clear()
    clock.advance(HOUR + 1)
    assert await core.transit.rotate_due_keys(clock()) == [("t05", "k")]
    assert touched() == {"t05"}
