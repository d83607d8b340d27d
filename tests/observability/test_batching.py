"""Requests are counted and scored in batches, off the request path: nothing read sees a
number short (a scrape, `sys/alerts` and the dashboard count what is buffered first), the
buffers are bounded, batching changes no counter, alert or number, and the server's flush
service counts and scores on its own (an alert reaches the webhook without anyone reading)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from tenantvault import Core
from tenantvault._config import ServerSettings
from tenantvault._observe import RequestOutcome
from tenantvault.backends import MemoryBackend
from tenantvault.observability import AnomalySettings, Observability
from tenantvault.observability._collector import tenant_registry
from tenantvault.observability._metrics import MAX_PENDING_EVENTS
from tenantvault.observability._observability import MAX_PENDING
from tenantvault.server import create_app
from tests.conftest import FakeClock, canary
from tests.server.conftest import BASE_URL, Vault
from tests.server.test_alerts import INTERVAL, _setup, _steady
from tests.server.test_metrics import Samples, parse, value

READS = {"operation": "read", "mount": "secret", "outcome": "success", "tenant": "acme"}


def _outcome(
    tenant: str | None = "acme",
    *,
    status: int = 200,
    operation: str = "read",
    mount: str = "secret",
    accessor: str = "",
    address: str | None = None,
    target: str = "",
    refused: bool = False,
    cross_tenant: bool = False,
) -> RequestOutcome:
    return RequestOutcome(
        request_id="r",
        operation="" if refused else operation,
        mount="" if refused else mount,
        tenant_uid="" if tenant is None or refused else f"uid-{tenant}",
        status=status,
        # Multiples of 2**-12: exact in binary, so sums do not depend on the order of adding.
        duration_seconds=(1 + status % 7) / 4096,
        denied=status == 403,
        refused=refused,
        tenant=None if refused else tenant,
        accessor=accessor,
        display_name=f"token-{accessor}" if accessor else "",
        client_address=address,
        target=target,
        cross_tenant=cross_tenant,
    )


def _server(observability: Observability) -> Samples:
    """The server view's own samples (process metrics differ between two objects)."""
    text = generate_latest(observability.registry).decode()
    return {key: v for key, v in parse(text).items() if key[0].startswith("tenantvault_")}


def test_a_scrape_counts_every_request_buffered_before_it() -> None:
    observability = Observability(clock=FakeClock())
    for _ in range(7):
        observability.observe(_outcome())
    # Buffered, not counted yet: observing a request is an append.
    assert observability.pending == 7
    assert observability.metrics.tenant_numbers("acme") is None
    assert value(_server(observability), "tenantvault_requests_total", **READS) == 7
    assert observability.pending == 0
    # The dashboard and a tenant's own view count what is buffered first, too.
    for _ in range(3):
        observability.observe(_outcome())
    assert observability.dashboard(tenant="acme")["totals"]["requests"] == 10
    assert observability.pending == 0


def test_the_request_buffer_is_bounded_and_loses_nothing() -> None:
    """Without a flush service (a Core used from Python), the buffer never grows past
    MAX_PENDING: the request that fills it counts it."""
    observability = Observability(clock=FakeClock())
    for _ in range(2 * MAX_PENDING + 5):
        observability.observe(_outcome())
        assert observability.pending < MAX_PENDING
    assert value(_server(observability), "tenantvault_requests_total", **READS) == (
        2 * MAX_PENDING + 5
    )


def test_pending_hook_counts_are_bounded_and_lose_nothing() -> None:
    observability = Observability(clock=FakeClock(), top_tenants=0)
    tenants = MAX_PENDING_EVENTS + 10
    for i in range(tenants):
        observability.hooks.count("lease", "created", tenant=f"t{i}")
        observability.hooks.count("lease", "created", tenant=f"t{i}")
        assert len(observability.metrics.pending_events) <= MAX_PENDING_EVENTS
    for _ in range(MAX_PENDING_EVENTS + 10):
        observability.hooks.upstream("get", 0.01, status=200)
        assert len(observability.metrics.pending_upstream) <= MAX_PENDING_EVENTS
    samples = _server(observability)
    lease = "tenantvault_lease_events_total"
    assert value(samples, lease, event="created", result="success", tenant="other") == 2 * tenants
    assert value(
        samples, "tenantvault_upstream_requests_total", method="GET", outcome="success"
    ) == (MAX_PENDING_EVENTS + 10)


# -- batching changes nothing -------------------------------------------------------------

# Easy to alert on, so that random workloads raise alerts of every kind.
TOUCHY = AnomalySettings(warmup=1, min_distinct=2, min_denials=2, z=1.0, min_std=0.5)

outcomes = st.builds(
    _outcome,
    st.sampled_from(["acme", "beta", None]),
    status=st.sampled_from([200, 200, 200, 403, 404, 500]),
    operation=st.sampled_from(["read", "read", "update"]),
    mount=st.sampled_from(["secret", "secret", "sys"]),
    accessor=st.sampled_from(["", "a1", "a2"]),
    address=st.sampled_from(["10.0.0.1", "10.0.0.1", "10.0.0.2", None]),
    target=st.sampled_from(["", "t1", "t1", "t2", "t3", "t4"]),
    refused=st.sampled_from([False, False, False, False, True]),
    cross_tenant=st.sampled_from([False, False, True]),
)
# (seconds the clock moves, the request; or a flush, a scrape, a hook event). The wall
# clock can step back (an NTP correction): a run of alike requests then changes minute.
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([0, 0, 0, 0, 1, 30, 61, -1, -61]), outcomes),
        st.sampled_from(["flush", "scrape", "hook"]),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_batches_count_and_alert_exactly_as_one_request_at_a_time(
    workload: list[tuple[int, RequestOutcome] | str],
) -> None:
    """The same requests counted one at a time (`observe` of the metrics and the detector)
    and buffered into batches cut anywhere give the same counters, tenant views, dashboard
    and alerts, numbers included."""
    clock = FakeClock()
    one = Observability(clock=clock, top_tenants=1, anomaly=TOUCHY)
    batched = Observability(clock=clock, top_tenants=1, anomaly=TOUCHY)
    for step in workload:
        if step == "flush":
            batched.flush()
            one.flush()  # folds the hook counts (it holds no request) at the same moment
        elif step == "scrape":
            assert _server(one) == _server(batched)
        elif step == "hook":
            for observability in (one, batched):
                observability.hooks.count("cache", "hit", tenant="beta")
        else:
            assert isinstance(step, tuple)
            seconds, outcome = step
            clock.advance(seconds)
            one.metrics.observe(outcome)
            one.anomalies.observe(outcome)
            batched.observe(outcome)
    assert _server(one) == _server(batched)
    for tenant in ("acme", "beta"):
        assert one.dashboard(tenant=tenant) == batched.dashboard(tenant=tenant)
        views = [
            generate_latest(tenant_registry(tenant, o.metrics.tenant_numbers(tenant)))
            for o in (one, batched)
        ]
        assert views[0] == views[1]
    assert one.dashboard(tenant=None) == batched.dashboard(tenant=None)
    alerts = [[alert.as_dict() for alert in o.alerts()] for o in (one, batched)]
    assert alerts[0] == alerts[1]


def test_a_repeated_request_after_the_clock_stepped_back_is_scored_in_its_interval() -> None:
    """Alike requests in one batch, the wall clock stepping back across an interval boundary
    between them: the batch scores each in its own interval, as one at a time does (the
    alert's numbers, which count the token's reads, say so)."""
    clock = FakeClock()
    one = Observability(clock=clock, anomaly=TOUCHY)
    batched = Observability(clock=clock, anomaly=TOUCHY)
    steps = [(0, "t1"), (61, "t1"), (61, "t1"), (0, "t1"), (-61, "t1"), (0, "t1")]
    steps += [(0, f"t{i}") for i in range(2, 6)]
    for seconds, target in steps:
        clock.advance(seconds)
        outcome = _outcome(accessor="a1", address="10.0.0.1", target=target)
        one.metrics.observe(outcome)
        one.anomalies.observe(outcome)
        batched.observe(outcome)
    alerts = [[alert.as_dict() for alert in o.alerts()] for o in (one, batched)]
    assert [alert["kind"] for alert in alerts[0]] == ["distinct_secrets"]
    assert alerts[0] == alerts[1]


def test_repeated_requests_still_count_their_reads() -> None:
    """The repeated-request shortcut still counts reads: the distinct-secrets alert that
    follows names the reads the token made, repeats included."""
    clock = FakeClock()
    observability = Observability(clock=clock, anomaly=AnomalySettings(warmup=1))
    for _ in range(2):
        clock.advance(INTERVAL)
        observability.observe(_outcome(accessor="a1", address="10.0.0.1", target="t0"))
    observability.flush()
    clock.advance(INTERVAL)
    for _ in range(5):
        observability.observe(_outcome(accessor="a1", address="10.0.0.1", target="t0"))
    for i in range(1, 10):
        observability.observe(_outcome(accessor="a1", address="10.0.0.1", target=f"t{i}"))
    alerts = [alert.as_dict() for alert in observability.alerts()]
    assert observability.pending == 0  # reading the alerts counted the buffer
    assert [alert["kind"] for alert in alerts] == ["distinct_secrets"]
    assert alerts[0]["numbers"]["observed"] == 10
    assert alerts[0]["numbers"]["reads"] == 14


# -- the server's flush service ------------------------------------------------------------


@pytest.fixture
def root_token() -> str:
    return canary("root-")


async def test_the_flush_service_scores_requests_and_alerts_reach_the_webhook(
    webhook: tuple[str, asyncio.Queue[dict[str, Any]]], root_token: str, clock: FakeClock
) -> None:
    """Nobody reads sys/alerts or sys/metrics here: the server's own service counts the
    buffered requests and the alert they raise is POSTed."""
    url, received = webhook

    async def factory() -> Core:
        core = Core(MemoryBackend(), clock=clock)
        await core.start()
        return core

    settings = ServerSettings(dev=True, dev_root_token=root_token, alert_webhook=url)
    async with create_app(settings, core_factory=factory) as app:
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            health = await vault.request("GET", "sys/health")
            assert "observability" in health.json()["services"]  # supervised, in sys/health
            admin, nobody = await _setup(vault, "acme", 30)
            await _steady(vault, clock, admin, nobody)
            clock.advance(INTERVAL)
            for i in range(30):
                await vault.request("GET", f"secret/data/app/s{i}", token=admin)
            alert = await asyncio.wait_for(received.get(), timeout=30)
    assert alert["kind"] == "distinct_secrets"
    assert alert["tenant"] == "acme"
    assert alert["numbers"]["observed"] == 10
