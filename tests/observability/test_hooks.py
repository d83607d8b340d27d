"""The counters API other modules call (`MetricsHooks`): events counted exactly, a tenant's
view holding only its own, queue depths read at each scrape, and the upstream client's
hook timing real calls to a real OpenBao with the circuit breaker's state."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from tenantvault._observe import RequestOutcome
from tenantvault.observability import Observability
from tenantvault.observability._collector import tenant_registry
from tenantvault.observability._events import EventCounters
from tenantvault.observability._metrics import MAX_PENDING_EVENTS
from tenantvault.upstream import UpstreamClient, UpstreamSettings
from tests._openbao import running_openbao
from tests.conftest import FakeClock
from tests.server.test_metrics import parse, value


def _request(tenant: str) -> RequestOutcome:
    return RequestOutcome(
        request_id="r",
        operation="read",
        mount="secret",
        tenant_uid=f"uid-{tenant}",
        status=200,
        duration_seconds=0.001,
        denied=False,
        tenant=tenant,
    )


def test_the_per_request_producer_callbacks_count_exactly_and_stay_bounded() -> None:
    """The read cache's and the audit broker's callbacks (which add to the pending counts
    directly) count every event once, and their pending counts stay bounded."""
    observability = Observability(clock=FakeClock(), top_tenants=1)
    counters = EventCounters(observability.hooks)
    observability.observe(_request("acme"))
    tenants = MAX_PENDING_EVENTS + 10
    for i in range(tenants):
        counters.cache("hit", "acme" if i % 2 else f"t{i}")
        counters.audit(1, 0)
        counters.audit(2, 1)
        assert len(observability.metrics.pending_events) <= MAX_PENDING_EVENTS + 1
    server = parse(generate_latest(observability.registry).decode())
    cache = "tenantvault_cache_events_total"
    assert value(server, cache, event="hit", result="success", tenant="acme") == tenants // 2
    assert value(server, cache, event="hit", result="success", tenant="other") == tenants // 2
    audit = "tenantvault_audit_events_total"
    assert value(server, audit, event="written", result="success", tenant="root") == 3 * tenants
    assert value(server, audit, event="written", result="failure", tenant="root") == tenants
    numbers = observability.metrics.tenant_numbers("acme")
    own = parse(generate_latest(tenant_registry("acme", numbers)).decode())
    assert value(own, cache, event="hit", result="success", tenant="acme") == tenants // 2


def test_hook_events_are_counted_exactly_and_scoped() -> None:
    observability = Observability(clock=FakeClock())
    for tenant in ("acme", "beta"):
        observability.observe(_request(tenant))
    hooks = observability.hooks
    for _ in range(3):
        hooks.count("lease", "created", tenant="acme")
    hooks.count("lease", "revoked", tenant="acme", failed=True)
    hooks.count("rotation", "rotated", tenant="beta")
    hooks.count("cache", "hit", n=5)
    hooks.count("cache", "eviction")
    hooks.queue("audit-file", lambda: 7)
    server = parse(generate_latest(observability.registry).decode())
    lease = "tenantvault_lease_events_total"
    assert value(server, lease, event="created", result="success", tenant="acme") == 3
    assert value(server, lease, event="revoked", result="failure", tenant="acme") == 1
    rotation = "tenantvault_rotation_events_total"
    assert value(server, rotation, event="rotated", result="success", tenant="beta") == 1
    cache = "tenantvault_cache_events_total"
    assert value(server, cache, event="hit", result="success", tenant="root") == 5
    assert value(server, cache, event="eviction", result="success", tenant="root") == 1
    assert value(server, "tenantvault_queue_depth", queue="audit-file") == 7
    numbers = observability.metrics.tenant_numbers("acme")
    own = parse(generate_latest(tenant_registry("acme", numbers)).decode())
    assert value(own, lease, event="created", result="success", tenant="acme") == 3
    assert not [key for key in own if dict(key[1]).get("tenant") == "beta"]
    assert not [key for key in own if key[0] == "tenantvault_queue_depth"]


def test_event_names_are_bounded() -> None:
    observability = Observability(clock=FakeClock())
    for i in range(100):
        observability.hooks.count("token", f"event-{i}")
    server = parse(generate_latest(observability.registry).decode())
    events = {
        dict(labels)["event"] for name, labels in server if name == "tenantvault_token_events_total"
    }
    assert len(events) == 33
    assert (
        value(
            server, "tenantvault_token_events_total", event="other", result="success", tenant="root"
        )
        == 68
    )


async def test_upstream_calls_and_circuit_state_from_a_real_openbao(tmp_path: Path) -> None:
    observability = Observability(clock=FakeClock())
    with running_openbao(tmp_path) as server:
        async with UpstreamClient(UpstreamSettings(server.addr)) as client:
            client.on_attempt = observability.hooks.upstream
            observability.hooks.circuit(lambda: client.breaker.state)
            for _ in range(3):
                await client.read("sys/mounts", token=server.root_token)
            await client.read("secret/data/missing", token=server.root_token)
            samples = parse(generate_latest(observability.registry).decode())
    calls = "tenantvault_upstream_requests_total"
    assert value(samples, calls, method="GET", outcome="success") == 3
    assert value(samples, calls, method="GET", outcome="invalid") == 1  # the 404
    assert value(samples, "tenantvault_upstream_duration_seconds_count", method="GET") == 4
    state = "tenantvault_upstream_circuit_state"
    assert value(samples, state, state="closed") == 1
    assert value(samples, state, state="open") == 0
