"""What a request reuses from the ones before it — a token's decoded record, a resolved kv v2
route — and what it never reuses: a revoked, expired or used-up token, a changed policy, a
changed mount table. Two Cores over one backend stand for two instances: what one changes,
the other applies on its very next request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tenantvault._core import Core
from tenantvault._exceptions import NotFoundError, PermissionDeniedError
from tenantvault._request import Operation, Request, Response
from tenantvault._router import MountTable, RouteMemo
from tenantvault.backends import open_backend
from tenantvault.backends._protocol import Backend
from tenantvault.engines._route import Route
from tenantvault.engines.kv import KVEngine
from tests.conftest import BACKENDS, FakeClock, backend_url, count_routes

READER = 'path "secret/data/app/*" { capabilities = ["read"] }'
OTHER = 'path "secret/data/other/*" { capabilities = ["read"] }'


@dataclass
class Pair:
    """Two instances (Cores) over one backend, with tenant `acme` and a secret to read."""

    one: Core
    two: Core
    clock: FakeClock

    async def operator(self, core: Core, operation: Operation, path: str, **data: Any) -> Response:
        return await core.handle_as_operator(
            Request(operation, path, data=data or None, namespace="acme")
        )

    async def token(self, **options: Any) -> str:
        """A token of `acme` with the `reader` policy (and `options`), made on instance two."""
        created = await self.operator(
            self.two, Operation.UPDATE, "auth/token/create", policies=["reader"], **options
        )
        assert created.auth is not None
        token: str = created.auth["client_token"]
        return token

    async def read(self, token: str, path: str = "secret/data/app/db") -> Response:
        """A KV read on instance one, as the holder of `token`."""
        return await self.one.handle(Request(Operation.READ, path, token=token, namespace="acme"))


@pytest.fixture(params=BACKENDS)
async def pair(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Pair]:
    backend: Backend = await open_backend(backend_url(str(request.param), tmp_path))
    one, two = Core(backend, clock=clock), Core(backend, clock=clock)
    try:
        await one.start()
        await two.start()
        opened = Pair(one, two, clock)
        await two.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
        await opened.operator(two, Operation.UPDATE, "sys/policies/acl/reader", policy=READER)
        await opened.operator(two, Operation.UPDATE, "secret/data/app/db", data={"password": "one"})
        yield opened
    finally:
        await one.aclose()
        await two.aclose()
        await backend.aclose()


async def _readable(pair: Pair, token: str) -> bool:
    try:
        response = await pair.read(token)
    except PermissionDeniedError:
        return False
    assert response.data is not None
    assert response.data["data"] == {"password": "one"}
    return True


# -- tokens: decoded once per revision, checked on every request --------------------------


async def test_a_token_revoked_elsewhere_is_refused_on_the_next_request(pair: Pair) -> None:
    token = await pair.token()
    assert await _readable(pair, token)
    assert await _readable(pair, token)  # its record decoded, the read served from cache
    await pair.operator(pair.two, Operation.UPDATE, "auth/token/revoke", token=token)
    assert not await _readable(pair, token)


async def test_a_token_expires_on_time_after_its_record_was_decoded(pair: Pair) -> None:
    token = await pair.token(ttl="60s")
    assert await _readable(pair, token)
    pair.clock.advance(59)
    assert await _readable(pair, token)
    pair.clock.advance(2)
    assert not await _readable(pair, token)


async def test_a_renewal_elsewhere_is_seen_on_the_next_request(pair: Pair) -> None:
    """The decoded record is replaced when the stored one moves on: the renewed expiry counts."""
    token = await pair.token(ttl="60s")
    assert await _readable(pair, token)
    pair.clock.advance(50)
    await pair.operator(
        pair.two, Operation.UPDATE, "auth/token/renew", token=token, increment="3600s"
    )
    pair.clock.advance(20)  # past the first expiry, well inside the renewed one
    assert await _readable(pair, token)


async def test_a_use_limited_token_counts_every_use(pair: Pair) -> None:
    token = await pair.token(num_uses=3)
    first = await pair.one.tokens.authenticate(token)
    assert first.record is not None
    assert first.record.num_uses == 2
    assert await _readable(pair, token)
    assert await _readable(pair, token)  # the last use
    assert not await _readable(pair, token)
    # What one request was handed is not changed by the uses that followed it.
    assert first.record.num_uses == 2


# -- policies: the ACL of the revisions read on this request -------------------------------


async def test_a_policy_changed_elsewhere_applies_on_the_next_request(pair: Pair) -> None:
    token = await pair.token()
    assert await _readable(pair, token)
    assert await _readable(pair, token)
    await pair.operator(pair.two, Operation.UPDATE, "sys/policies/acl/reader", policy=OTHER)
    assert not await _readable(pair, token)
    await pair.operator(pair.two, Operation.UPDATE, "sys/policies/acl/reader", policy=READER)
    assert await _readable(pair, token)
    await pair.operator(pair.two, Operation.DELETE, "sys/policies/acl/reader")
    assert not await _readable(pair, token)


async def test_a_memoized_route_is_still_authorized_for_every_caller(pair: Pair) -> None:
    """Callers share the route (and the cached value) but never the decision."""
    allowed = await pair.token()
    created = await pair.operator(
        pair.two, Operation.UPDATE, "auth/token/create", policies=["default"]
    )
    assert created.auth is not None
    stranger = created.auth["client_token"]
    assert await _readable(pair, allowed)
    assert await _readable(pair, allowed)
    assert not await _readable(pair, stranger)


# -- routes: resolved once per mount table revision ----------------------------------------


async def test_a_kv_route_is_resolved_once_per_table_revision(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved = count_routes(monkeypatch, KVEngine)
    token = await pair.token()
    for _ in range(3):
        assert await _readable(pair, token)
    assert resolved == ["data/app/db"]
    # A newer table (the mount tuned, here on the other instance) resolves it again.
    await pair.operator(pair.two, Operation.UPDATE, "sys/mounts/secret/tune", description="tuned")
    assert await _readable(pair, token)
    assert await _readable(pair, token)
    assert resolved == ["data/app/db", "data/app/db"]


async def test_a_mount_disabled_elsewhere_is_gone_on_the_next_request(pair: Pair) -> None:
    token = await pair.token()
    assert await _readable(pair, token)
    await pair.operator(pair.two, Operation.DELETE, "sys/mounts/secret")
    # No such mount: `secret/` now reads as a namespace below `acme`, foreign to the token.
    with pytest.raises(PermissionDeniedError):
        await pair.read(token)
    # Enabled again: a new, empty mount, not the memoized route of the old one.
    await pair.operator(
        pair.two, Operation.UPDATE, "sys/mounts/secret", type="kv", options={"version": "2"}
    )
    with pytest.raises(NotFoundError):
        await pair.read(token)


async def test_a_deleted_tenant_leaves_no_route_behind(pair: Pair) -> None:
    token = await pair.token()
    assert await _readable(pair, token)
    assert len(pair.one._routes) == 1
    await pair.one.handle_as_operator(Request(Operation.DELETE, "sys/namespaces/acme"))
    assert len(pair.one._routes) == 0


def test_the_route_memo_keeps_the_newest_table_of_each_tenant_and_is_bounded() -> None:
    memo = RouteMemo(size=3)
    seven = MountTable({}, 7, owner=("acme", "uid-1"))
    eight = MountTable({}, 8, owner=("acme", "uid-1"))

    async def handler(_call: Any) -> Response:
        return Response()

    route = Route("secret/data/x", "read", handler)
    memo.put(seven, Operation.READ, "a", route)
    assert memo.get(seven, Operation.READ, "a") is route
    # Another incarnation, or a newer table, finds nothing; the newer table drops the older
    # one's routes, and an older one never replaces the newer one's.
    assert memo.get(MountTable({}, 7, owner=("acme", "uid-2")), Operation.READ, "a") is None
    assert memo.get(eight, Operation.READ, "a") is None
    assert len(memo) == 0
    memo.put(eight, Operation.READ, "a", route)
    memo.put(seven, Operation.READ, "b", route)
    assert memo.get(seven, Operation.READ, "b") is None
    assert memo.get(eight, Operation.READ, "a") is route
    # Bounded: full, it starts again.
    for path in ("b", "c", "d", "e"):
        memo.put(eight, Operation.READ, path, route)
    assert len(memo) <= 3
    assert memo.get(eight, Operation.READ, "e") is route
    memo.forget_tenant("acme")
    assert len(memo) == 0
