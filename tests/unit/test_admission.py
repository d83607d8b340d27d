"""The admission controller: who is charged, each bound exactly, the reserve, release."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenantvault._observe import RequestOutcome
from tenantvault.server import _admission
from tenantvault.server._admission import QUIET_SLOTS, Admission, Refused, Waiting

ACME = "a" * 32
BETA = "b" * 32


def _scope(
    token: str | None = None,
    *,
    path: bytes = b"/v1/secret/data/x",
    bearer: bool = False,
    namespace: str | None = None,
) -> dict[str, Any]:
    headers: list[tuple[bytes, bytes]] = [(b"host", b"tenantvault.test")]
    if namespace is not None:
        headers.append((b"x-vault-namespace", namespace.encode()))
    if token is not None:
        if bearer:
            headers.append((b"authorization", b"Bearer " + token.encode()))
        else:
            headers.append((b"x-vault-token", token.encode()))
    return {"type": "http", "raw_path": path, "headers": headers}


def _token(uid: str) -> str:
    return f"tvs.{'s' * 43}.{uid}"


def _served(admission: Admission, uid: str, tenant: str) -> None:
    """Tell the controller the Core served a request of this tenant."""
    admission.observe(
        RequestOutcome(
            request_id="r",
            operation="read",
            mount="secret",
            tenant_uid=uid,
            status=200,
            duration_seconds=0.001,
            denied=False,
            tenant=tenant,
        )
    )


def _fill(admission: Admission, scope: dict[str, Any], n: int) -> list[str]:
    slots = [admission.admit(scope) for _ in range(n)]
    assert all(isinstance(slot, str) and slot for slot in slots)
    return [slot for slot in slots if isinstance(slot, str)]


def test_a_known_tenant_gets_exactly_its_bound_and_a_release_frees_one() -> None:
    admission = Admission(per_tenant=3, overall=100)
    _served(admission, ACME, "acme")
    scope = _scope(_token(ACME))
    slots = _fill(admission, scope, 3)
    assert admission.admit(scope) == Refused("tenant", "acme")
    admission.release(slots.pop())
    assert isinstance(admission.admit(scope), str)
    assert admission.held(ACME) == 3
    assert admission.in_flight == 3


def test_one_tenant_at_its_bound_leaves_another_untouched() -> None:
    admission = Admission(per_tenant=2, overall=100)
    _served(admission, ACME, "acme")
    _served(admission, BETA, "beta")
    _fill(admission, _scope(_token(ACME)), 2)
    assert isinstance(admission.admit(_scope(_token(ACME))), Refused)
    assert _fill(admission, _scope(_token(BETA), bearer=True), 2) == [BETA, BETA]


def test_a_namespace_claim_charges_nothing_to_the_tenant_it_names() -> None:
    admission = Admission(per_tenant=2, overall=100)
    _served(admission, ACME, "acme")
    _served(admission, BETA, "beta")
    # acme's token naming beta's namespace: charged to acme, the token's own tenant.
    _fill(admission, _scope(_token(ACME), namespace="beta"), 2)
    assert admission.admit(_scope(_token(ACME), namespace="beta")) == Refused("tenant", "acme")
    # No token, or garbage, naming beta: the shared class, never beta's share.
    _fill(admission, _scope(None, namespace="beta"), 1)
    _fill(admission, _scope("tvs.garbage", namespace="beta"), 1)
    assert admission.admit(_scope(None, namespace="beta")) == Refused("shared", None)
    assert admission.held(BETA) == 0
    assert _fill(admission, _scope(_token(BETA)), 2) == [BETA, BETA]


@pytest.mark.parametrize(
    "token",
    [None, "root", "tvs.nodot", "tvs.secret.", f"tvs.secret.{'u' * 65}", _token("f" * 32)],
    ids=["none", "custom-id", "no-suffix", "empty-suffix", "long-suffix", "unknown-uid"],
)
def test_anything_but_a_known_tenants_token_shares_one_bound(token: str | None) -> None:
    admission = Admission(per_tenant=2, overall=100)
    _served(admission, ACME, "acme")
    _fill(admission, _scope(token), 2)
    assert admission.admit(_scope(token)) == Refused("shared", None)
    assert admission.held(None) == 2
    assert admission.held(ACME) == 0


def test_busy_tenants_stop_short_of_the_reserve_and_quiet_ones_may_use_it() -> None:
    # overall 64: a reserve of 8, so busy tenants (and the shared class) stop at 56.
    admission = Admission(per_tenant=32, overall=64)
    uids = [str(n) * 32 for n in range(4)]
    for n, uid in enumerate(uids):
        _served(admission, uid, f"t{n}")
    _fill(admission, _scope(_token(uids[0])), 32)
    _fill(admission, _scope(_token(uids[1])), 24)
    assert admission.in_flight == 56
    assert admission.admit(_scope(_token(uids[1]))) == Refused("server", "t1")
    assert admission.admit(_scope(None)) == Refused("server", None)
    # A quiet tenant takes the reserve, up to QUIET_SLOTS, then it is busy too.
    _fill(admission, _scope(_token(uids[2])), QUIET_SLOTS)
    assert admission.admit(_scope(_token(uids[2]))) == Refused("server", "t2")
    assert admission.in_flight == 64
    assert admission.admit(_scope(_token(uids[3]))) == Refused("server", "t3")


def test_health_probes_are_neither_bounded_nor_counted() -> None:
    admission = Admission(per_tenant=1, overall=1)
    _fill(admission, _scope(None), 1)
    for path in (b"/v1/sys/health", b"/v1/sys/health?standbyok=true", b"/v1/sys/seal-status"):
        assert admission.admit(_scope(None, path=path)) == ""
    assert admission.admit(_scope(None, path=b"/v1/sys/mounts")) == Refused("shared", None)
    assert admission.in_flight == 1


def test_turned_off_it_admits_everything_and_counts_nothing() -> None:
    admission = Admission(per_tenant=0, overall=0)
    assert not admission.on
    for _ in range(10_000):
        admission.release(admission.admit(_scope(None)))
    assert admission.admit(_scope(None)) == ""
    assert admission.in_flight == 0


@pytest.mark.parametrize(("per_tenant", "overall"), [(0, 3), (3, 0)])
def test_either_bound_alone(per_tenant: int, overall: int) -> None:
    admission = Admission(per_tenant=per_tenant, overall=overall)
    _served(admission, ACME, "acme")
    scope = _scope(_token(ACME))
    _fill(admission, scope, 3)
    refused = admission.admit(scope)
    assert isinstance(refused, Refused)
    assert refused.bound == ("server" if overall else "tenant")
    assert "in-flight request quota exceeded" in refused.error


def test_refusals_and_probes_release_nothing() -> None:
    admission = Admission(per_tenant=1, overall=10)
    slot = admission.admit(_scope(None))
    refused = admission.admit(_scope(None))
    admission.release(refused)
    admission.release(admission.admit(_scope(None, path=b"/v1/sys/health")))
    assert admission.in_flight == 1
    admission.release(slot)
    assert admission.in_flight == 0
    assert admission.held(None) == 0


def test_negative_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="0 \\(no bound\\) or more"):
        Admission(per_tenant=-1, overall=10)


def test_the_memory_of_tenants_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_admission, "MAX_KNOWN_TENANTS", 2)
    admission = Admission(per_tenant=1, overall=10)
    _served(admission, ACME, "acme")
    _served(admission, BETA, "beta")
    _served(admission, "c" * 32, "gamma")  # starts again: only gamma is known now
    assert admission.admit(_scope(_token(ACME))) == "/"
    assert admission.admit(_scope(_token("c" * 32))) == "c" * 32
    _served(admission, ACME, "acme")  # learned again from its next request
    assert admission.admit(_scope(_token(ACME))) == ACME


def test_the_repr_names_no_tenant() -> None:
    admission = Admission(per_tenant=2, overall=10)
    _served(admission, ACME, "acme")
    admission.admit(_scope(_token(ACME)))
    assert repr(admission) == "<Admission 1 in flight, 1 holders>"


# -- turns to run ------------------------------------------------------------------------


async def test_past_the_run_limit_requests_wait_and_lines_take_turns() -> None:
    admission = Admission(per_tenant=10, overall=100, running=1)
    _served(admission, ACME, "acme")
    _served(admission, BETA, "beta")
    first = admission.admit(_scope(_token(ACME)))
    assert first == ACME
    acme = [admission.admit(_scope(_token(ACME))) for _ in range(3)]
    beta = admission.admit(_scope(_token(BETA)))
    assert all(isinstance(waiting, Waiting) for waiting in [*acme, beta])
    assert admission.running == 1
    assert admission.in_flight == 5
    order: list[str] = []

    async def run(waiting: Any, name: str) -> None:
        slot = await admission.wait(waiting)
        order.append(name)
        admission.release(slot)

    tasks = [asyncio.create_task(run(w, f"acme{n}")) for n, w in enumerate(acme)]
    tasks.append(asyncio.create_task(run(beta, "beta")))
    admission.release(first)
    await asyncio.gather(*tasks)
    # acme queued first, so its line has the first turn; then beta's; then acme's again.
    assert order == ["acme0", "beta", "acme1", "acme2"]
    assert admission.running == 0
    assert admission.in_flight == 0


async def test_a_cancelled_waiter_leaves_its_line_and_a_cancelled_turn_is_handed_on() -> None:
    admission = Admission(per_tenant=10, overall=100, running=1)
    first = admission.admit(_scope(None))
    gone, granted, last = (admission.admit(_scope(None)) for _ in range(3))
    assert isinstance(gone, Waiting)
    assert isinstance(granted, Waiting)
    assert isinstance(last, Waiting)
    gone.future.cancel()  # its client went away while it waited
    admission.release(gone)
    assert admission.in_flight == 3
    admission.release(first)  # the turn skips the cancelled one
    assert granted.future.done()
    assert not last.future.done()
    # Its turn came, but its task was cancelled before it ran: the turn passes on.
    admission.release(granted)
    assert last.future.done()
    assert await admission.wait(last) == "/"
    admission.release("/")
    assert admission.running == 0
    assert admission.in_flight == 0


async def test_a_refusal_is_paused_but_never_more_than_max_paused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_admission, "MAX_PAUSED", 1)
    admission = Admission(per_tenant=1, overall=10, pause_seconds=3600)
    held = asyncio.create_task(admission.pause())
    await asyncio.sleep(0)
    assert admission.paused == 1
    await admission.pause()  # the second is answered at once
    assert not held.done()
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    assert admission.paused == 0
    await Admission(per_tenant=1, overall=1, pause_seconds=0).pause()
