"""A KV v2 write starts from the metadata its existence check read, and is still exact.

The Core asks a write's route whether the key exists (create or update?) before it authorizes
and audits the request; the handler then starts from that read instead of reading the record
again. Another writer may have moved the key on in between (here: another instance over the
same storage): the write must then land after that writer's version, and a check-and-set must
be judged on the key as it is, never on the earlier read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import tenantvault
from tenantvault._clock import system_clock
from tenantvault._request import Operation
from tenantvault.backends import MemoryBackend
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Parameters, Route
from tenantvault.engines.kv import KVEngine
from tenantvault.testing import core_of


@pytest.fixture
async def tv() -> AsyncIterator[tenantvault.TenantVault]:
    async with tenantvault.open("memory://") as opened:
        await opened.create_tenant("acme")
        yield opened


async def _mount(tv: tenantvault.TenantVault) -> Mount:
    return await core_of(tv).mount_of("acme", "secret/")


def _call(route: Route, body: dict[str, Any]) -> Call:
    assert route.parameters is not None
    return Call(tenant="acme", data=Parameters(body, route.parameters), request_id="r")


async def _write(engine: KVEngine, mount: Mount, body: dict[str, Any]) -> int:
    """A whole write of `data/app` as the Core runs it: existence check, then handler."""
    route = engine.route(Operation.UPDATE, "data/app", mount)
    assert route.exists is not None
    await route.exists("acme")
    response = await route.handler(_call(route, body))
    return int((response.data or {})["version"])


async def _checked_then_overtaken(
    tv: tenantvault.TenantVault, *, writes_before: int, writes_between: int
) -> Route:
    """A write of `data/app` whose existence check ran, then another instance wrote."""
    mount = await _mount(tv)
    engine, other = core_of(tv).kv, KVEngine(clock=system_clock)
    for n in range(writes_before):
        await _write(engine, mount, {"data": {"n": f"before-{n}"}})
    route = engine.route(Operation.UPDATE, "data/app", mount)
    assert route.exists is not None
    await route.exists("acme")
    for n in range(writes_between):
        await _write(other, mount, {"data": {"n": f"between-{n}"}})
    return route


async def test_a_write_overtaken_after_its_check_lands_after_the_other_version(
    tv: tenantvault.TenantVault,
) -> None:
    route = await _checked_then_overtaken(tv, writes_before=1, writes_between=1)
    response = await route.handler(_call(route, {"data": {"n": "mine"}}))
    assert (response.data or {})["version"] == 3
    kv = tv.tenant("acme").kv
    assert (await kv.get("app", version=2)).data == {"n": "between-0"}
    assert (await kv.get("app")).data == {"n": "mine"}


async def test_check_and_set_is_judged_on_the_key_as_it_is_now(
    tv: tenantvault.TenantVault,
) -> None:
    """The check saw version 1; the key is at 2 when the handler runs: cas=2 is right."""
    route = await _checked_then_overtaken(tv, writes_before=1, writes_between=1)
    response = await route.handler(_call(route, {"data": {"n": "mine"}, "options": {"cas": 2}}))
    assert (response.data or {})["version"] == 3


async def test_check_and_set_zero_fails_once_another_writer_created_the_key(
    tv: tenantvault.TenantVault,
) -> None:
    """The check saw no key; another writer created it: cas=0 (create only) must fail."""
    route = await _checked_then_overtaken(tv, writes_before=0, writes_between=1)
    with pytest.raises(tenantvault.CheckAndSetError, match="did not match"):
        await route.handler(_call(route, {"data": {"n": "mine"}, "options": {"cas": 0}}))
    assert (await tv.tenant("acme").kv.get("app")).data == {"n": "between-0"}


async def test_a_checked_write_does_not_read_the_metadata_again(
    tv: tenantvault.TenantVault,
) -> None:
    """After the existence check: the mount's config, then the version's data and the
    metadata are the only backend calls (the metadata is not read a second time)."""
    mount = await _mount(tv)
    engine = core_of(tv).kv
    await _write(engine, mount, {"data": {"n": "first"}})
    backend = core_of(tv).backend
    assert isinstance(backend, MemoryBackend)
    route = engine.route(Operation.UPDATE, "data/app", mount)
    assert route.exists is not None
    await route.exists("acme")
    before = backend.faults.calls
    await route.handler(_call(route, {"data": {"n": "second"}}))
    assert backend.faults.calls - before == 3


async def test_checks_without_a_write_keep_a_bounded_number_of_hints(
    tv: tenantvault.TenantVault,
) -> None:
    """Existence checks of writes that never ran (refused by the ACL) leave bounded state."""
    mount = await _mount(tv)
    engine = core_of(tv).kv
    await _write(engine, mount, {"data": {"n": "first"}})
    for n in range(300):
        route = engine.route(Operation.UPDATE, f"data/app-{n}", mount)
        assert route.exists is not None
        await route.exists("acme")
    assert repr(engine._hints) == "MetaHints(entries=256)"
